//! The cap on the HTTP requests in flight across the run, and the paced HTTP client every account's calls
//! go out through (its retries wait for the account's token here; every request holds a slot of the cap
//! while it is on the wire).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::shared::IntoShared;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;

use super::Bucket;
use crate::stats::CallStats;

/// A cap on the HTTP requests in flight across the whole run. It bounds the connection pool: each open
/// connection holds tens of KB of buffers, and an idle one stays in the pool for the rest of the run.
///
/// By default the cap follows Little's law: a quota-bound run needs at most `rate × latency` requests in
/// flight, where `rate` is the most the buckets can grant (concurrency × the per-account rates) and
/// `latency` is the network's. The cap is twice that plus slack, so it never binds a quota-bound run
/// however far from the region the run is. The latency is the smallest seen lately (a windowed minimum,
/// as BBR estimates round-trip time): requests queued behind the first calls of hundreds of accounts take
/// longer, and an average would let that queue open hundreds of connections. A `max_in_flight` setting
/// fixes the cap instead.
#[derive(Debug, Clone)]
pub struct InFlight(Arc<InFlightInner>);

#[derive(Debug)]
struct InFlightInner {
    /// Requests on the wire (HTTP exchanges).
    busy: AtomicUsize,
    freed: tokio::sync::Notify,
    /// Calls admitted: built by the SDK and not yet answered (see `admit`).
    admitted: AtomicUsize,
    admit_freed: tokio::sync::Notify,
    cap: Cap,
    latency: MinWindow,
    stats: Arc<CallStats>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cap {
    /// At most this many, whatever the latency.
    Fixed(usize),
    /// `2 × rate × latency + SLACK`, at most `ceiling`; `rate` in requests per second.
    Adaptive { rate: f64, ceiling: usize },
}

/// Requests in flight always allowed, before any latency is known and on the fastest network.
const SLACK: usize = 64;

/// How long a minimum latency is remembered: two windows of this length.
const LATENCY_WINDOW: Duration = Duration::from_secs(5);

/// The smallest latency of the current and the previous window, in microseconds.
#[derive(Debug)]
struct MinWindow {
    origin: std::time::Instant,
    /// Start of the current window, milliseconds after `origin`.
    window_start_ms: AtomicU64,
    current: AtomicU64,
    previous: AtomicU64,
}

impl MinWindow {
    fn new() -> MinWindow {
        MinWindow {
            origin: std::time::Instant::now(),
            window_start_ms: AtomicU64::new(0),
            current: AtomicU64::new(u64::MAX),
            previous: AtomicU64::new(u64::MAX),
        }
    }

    fn observe_at(&self, sample: Duration, now: std::time::Instant) {
        let sample = sample.as_micros().min(u128::from(u64::MAX - 1)) as u64;
        let now_ms = now.duration_since(self.origin).as_millis() as u64;
        let start = self.window_start_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(start) >= LATENCY_WINDOW.as_millis() as u64
            && self
                .window_start_ms
                .compare_exchange(start, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let last = self.current.swap(sample, Ordering::Relaxed);
            self.previous.store(last, Ordering::Relaxed);
        } else {
            self.current.fetch_min(sample, Ordering::Relaxed);
        }
    }

    /// `None` before the first answer.
    fn get(&self) -> Option<Duration> {
        let us = self
            .current
            .load(Ordering::Relaxed)
            .min(self.previous.load(Ordering::Relaxed));
        (us != u64::MAX).then(|| Duration::from_micros(us))
    }
}

impl InFlight {
    pub fn new(cap: Cap, stats: Arc<CallStats>) -> InFlight {
        InFlight(Arc::new(InFlightInner {
            busy: AtomicUsize::new(0),
            freed: tokio::sync::Notify::new(),
            admitted: AtomicUsize::new(0),
            admit_freed: tokio::sync::Notify::new(),
            cap,
            latency: MinWindow::new(),
            stats,
        }))
    }

    /// The cap now.
    pub fn cap(&self) -> usize {
        match self.0.cap {
            Cap::Fixed(n) => n.max(1),
            Cap::Adaptive { rate, ceiling } => {
                let latency = self.0.latency.get().unwrap_or_default().as_secs_f64();
                ((2.0 * rate * latency).ceil() as usize + SLACK).min(ceiling.max(SLACK))
            }
        }
    }

    /// Wait for a slot; the slot is given back when the guard is dropped.
    pub async fn acquire(&self) -> Slot {
        if !take(&self.0.busy, self.cap()) {
            self.0.stats.in_flight_waits.fetch_add(1, Ordering::Relaxed);
            wait_for(&self.0.freed, || take(&self.0.busy, self.cap())).await;
        }
        Slot {
            owner: self.clone(),
            started: std::time::Instant::now(),
        }
    }

    /// Wait until a call may be built: at most `cap()` calls at once are between their bucket's token
    /// and their answer. Without this gate the first second of a run builds every account's burst at
    /// once (500 accounts × 10 IAM calls, ~10 KB of SDK state each) and they queue for slots as built
    /// operations; with it they wait as a few hundred bytes of un-built call. A quota-bound run never
    /// waits here, for the same reason it never waits for a slot.
    pub async fn admit(&self) -> Admission {
        if !take(&self.0.admitted, self.cap()) {
            wait_for(&self.0.admit_freed, || take(&self.0.admitted, self.cap())).await;
        }
        Admission(self.clone())
    }
}

/// Take one of `cap` units of `busy`, if one is free.
fn take(busy: &AtomicUsize, cap: usize) -> bool {
    busy.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
        (n < cap).then_some(n + 1)
    })
    .is_ok()
}

/// Wait on `freed` until `try_take` succeeds.
async fn wait_for(freed: &tokio::sync::Notify, try_take: impl Fn() -> bool) {
    loop {
        let notified = freed.notified();
        tokio::pin!(notified);
        // Registered before the re-check, so a unit freed in between is not missed.
        notified.as_mut().enable();
        if try_take() {
            return;
        }
        notified.await;
    }
}

/// One call admitted by `InFlight::admit`.
pub struct Admission(InFlight);

impl Drop for Admission {
    fn drop(&mut self) {
        let inner = &(self.0).0;
        inner.admitted.fetch_sub(1, Ordering::AcqRel);
        inner.admit_freed.notify_one();
    }
}

/// One request in flight.
pub struct Slot {
    owner: InFlight,
    started: std::time::Instant,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let inner = &self.owner.0;
        let now = std::time::Instant::now();
        inner.latency.observe_at(now - self.started, now);
        inner.busy.fetch_sub(1, Ordering::AcqRel);
        inner.freed.notify_one();
    }
}

/// Marks the request of a retry attempt (the SDK's second and later attempts), so that
/// `PacedHttpClient` makes it wait for a token. First attempts were paced before they were built.
#[derive(Debug, Clone, Copy)]
pub struct MarkRetries;

#[derive(Debug, Clone, Copy)]
struct RetryAttempt;

impl Intercept for MarkRetries {
    fn name(&self) -> &'static str {
        "iam_audit::MarkRetries"
    }

    fn modify_before_transmit(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts()) > 1 {
            ctx.request_mut().add_extension(RetryAttempt);
        }
        Ok(())
    }
}

/// The shared HTTP client of the run, with one account's bucket in front of it for retries (when the
/// client has one), and the run's in-flight cap.
#[derive(Debug, Clone)]
pub struct PacedHttpClient {
    inner: SharedHttpClient,
    bucket: Option<Bucket>,
    in_flight: InFlight,
}

impl PacedHttpClient {
    pub fn shared(
        inner: SharedHttpClient,
        bucket: Option<Bucket>,
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
    bucket: Option<Bucket>,
    in_flight: InFlight,
}

impl HttpConnector for PacedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let bucket = self
            .bucket
            .clone()
            .filter(|_| request.extension::<RetryAttempt>().is_some());
        let (inner, in_flight) = (self.inner.clone(), self.in_flight.clone());
        HttpConnectorFuture::new(async move {
            // The token first: a call waiting for its account's quota holds no connection slot.
            if let Some(bucket) = bucket {
                bucket.wait().await;
            }
            let _slot = in_flight.acquire().await;
            let mut response = inner.call(request).await?;
            // Read the body while the slot is held: the connection goes back to the pool only once its
            // body is read, and a slot freed earlier would let the next request open a new connection
            // in the meantime (hundreds over a run). The answers are small.
            let body = aws_smithy_types::byte_stream::ByteStream::new(response.take_body())
                .collect()
                .await
                .map_err(|e| ConnectorError::io(e.into()))?;
            *response.body_mut() = SdkBody::from(body.into_bytes());
            // The connection goes back to the pool from hyper's own tasks, a turn or two after its body
            // is read; freeing the slot before then lets the next request open another connection.
            // Giving them their turns first keeps the connections about the cap.
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_in_flight_cap_follows_the_network_latency() {
        let stats = Arc::new(CallStats::default());
        // 64 accounts × 12 requests/s.
        let f = InFlight::new(
            Cap::Adaptive {
                rate: 768.0,
                ceiling: 4096,
            },
            stats.clone(),
        );
        assert_eq!(f.cap(), SLACK, "nothing observed yet");
        let t0 = f.0.latency.origin;
        let ms = Duration::from_millis;
        f.0.latency.observe_at(ms(150), t0 + ms(10));
        assert_eq!(f.cap(), 231 + SLACK, "2 × 768/s × 150 ms");
        // Answers slowed by a queue do not raise it: the smallest latency of the window counts.
        f.0.latency.observe_at(ms(900), t0 + ms(20));
        assert_eq!(f.cap(), 231 + SLACK);
        // Two windows later only the slower network is remembered.
        f.0.latency.observe_at(ms(300), t0 + ms(5100));
        f.0.latency.observe_at(ms(300), t0 + ms(10200));
        assert_eq!(f.cap(), 461 + SLACK);
        f.0.latency
            .observe_at(Duration::from_secs(10), t0 + ms(15300));
        f.0.latency
            .observe_at(Duration::from_secs(10), t0 + ms(20400));
        assert_eq!(f.cap(), 4096, "at most the ceiling");
        let fixed = InFlight::new(Cap::Fixed(7), stats);
        assert_eq!(fixed.cap(), 7);
    }

    // Story: at the cap, a request waits for one to finish, and the wait is counted.
    #[tokio::test]
    async fn a_full_cap_makes_requests_wait() {
        let stats = Arc::new(CallStats::default());
        let f = InFlight::new(Cap::Fixed(1), stats.clone());
        let first = f.acquire().await;
        let waiting = tokio::spawn({
            let f = f.clone();
            async move {
                let _slot = f.acquire().await;
            }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(first);
        waiting.await.unwrap();
        assert_eq!(stats.in_flight_waits.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn calls_past_the_cap_wait_to_be_built_and_slots_are_separate() {
        let stats = Arc::new(CallStats::default());
        let f = InFlight::new(Cap::Fixed(1), stats.clone());
        let first = f.admit().await;
        let waiting = tokio::spawn({
            let f = f.clone();
            async move {
                let _admitted = f.admit().await;
            }
        });
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "a second call waits while one is admitted"
        );
        // An admitted call's HTTP exchange (or a retry, or STS) still gets its slot.
        drop(f.acquire().await);
        drop(first);
        waiting.await.unwrap();
        assert_eq!(stats.in_flight_waits.load(Ordering::Relaxed), 0);
    }
}
