//! Client-side rate limits: one governor token bucket per account for IAM (IAM's quota is account-wide)
//! and one per account and region for CloudTrail LookupEvents (2 requests/s per region and account).
//!
//! The bucket sits in the account's HTTP client (`PacedHttpClient`), so every attempt waits on it —
//! the SDK's retries included. Had only first attempts waited, a retry after a throttle would take the
//! next call's slot at the server, which would then be throttled in turn: at a client paced exactly at the
//! quota that cascade never ends. The SDK's adaptive retry limiter is the second line of defence.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::shared::IntoShared;
use governor::{DefaultDirectRateLimiter, Jitter, Quota, RateLimiter};

/// Spacing of calls relative to the configured rate (see `Bucket::new`).
pub const HEADROOM: f64 = 1.05;

/// A token bucket shared by every call of one account (and region) to one service.
#[derive(Clone)]
pub struct Bucket(Arc<DefaultDirectRateLimiter>);

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bucket")
    }
}

impl Bucket {
    /// `rate` calls per second, at most `burst` at once. Both are validated > 0 by the config.
    ///
    /// Calls are spaced `HEADROOM` wider than the rate: a request leaves when its token is granted but is
    /// counted by AWS when it arrives, and arrivals are not evenly spaced (a new TLS connection, a slow
    /// hop). Pacing exactly at the quota turns that jitter into throttles; 5% of slack absorbs it.
    pub fn new(rate: u32, burst: u32) -> Bucket {
        let rate = rate.max(1);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let period = Duration::from_secs_f64(HEADROOM / f64::from(rate));
        let quota = Quota::with_period(period)
            .expect("a positive period")
            .allow_burst(burst);
        Bucket(Arc::new(RateLimiter::direct(quota)))
    }

    /// Wait for a token. The small jitter spreads the wake-ups of calls that queued together.
    pub async fn wait(&self) {
        self.0
            .until_ready_with_jitter(Jitter::up_to(Duration::from_millis(5)))
            .await;
    }
}

/// A cap on the HTTP requests in flight across the whole run. Each open connection costs ~50 KB of hyper
/// buffers, and without quotas (or with generous ones) 64 accounts × 8 users × 4 calls would open
/// thousands of them; the cap bounds the connection pool, hence memory, without slowing a quota-bound run.
#[derive(Debug, Clone)]
pub struct InFlight(Arc<tokio::sync::Semaphore>);

impl InFlight {
    pub fn new(max: usize) -> InFlight {
        InFlight(Arc::new(tokio::sync::Semaphore::new(max.max(1))))
    }
}

/// The shared HTTP client of the run, with one account's bucket in front of it.
#[derive(Debug, Clone)]
pub struct PacedHttpClient {
    inner: SharedHttpClient,
    bucket: Bucket,
    in_flight: InFlight,
}

impl PacedHttpClient {
    pub fn shared(
        inner: SharedHttpClient,
        bucket: Bucket,
        in_flight: InFlight,
    ) -> SharedHttpClient {
        PacedHttpClient {
            inner,
            bucket,
            in_flight,
        }
        .into_shared()
    }
}

impl HttpClient for PacedHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        // The inner client caches its connector (and so its connection pool) per settings.
        PacedConnector {
            inner: self.inner.http_connector(settings, components),
            bucket: self.bucket.clone(),
            in_flight: self.in_flight.clone(),
        }
        .into_shared()
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

#[derive(Debug)]
struct PacedConnector {
    inner: SharedHttpConnector,
    bucket: Bucket,
    in_flight: InFlight,
}

impl HttpConnector for PacedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (inner, bucket, in_flight) = (
            self.inner.clone(),
            self.bucket.clone(),
            self.in_flight.0.clone(),
        );
        HttpConnectorFuture::new(async move {
            // The token first: a call waiting for its account's quota holds no connection slot.
            bucket.wait().await;
            let _slot = in_flight.acquire_owned().await;
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn burst_then_rate() {
        let b = Bucket::new(50, 2);
        let t = std::time::Instant::now();
        for _ in 0..6 {
            b.wait().await;
        }
        // 2 at once, then 4 more at 50/s: at least 4 × 20 ms.
        assert!(
            t.elapsed() >= Duration::from_millis(75),
            "{:?}",
            t.elapsed()
        );
    }
}
