//! Client-side rate limits: one governor token bucket per account for IAM (IAM's quota is account-wide)
//! and one per account and region for CloudTrail LookupEvents (2 requests/s per region and account). Every
//! call waits on its bucket first, so we stay under the quotas instead of bouncing off them; the SDK's
//! adaptive retry limiter is only the second line of defence.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Jitter, Quota, RateLimiter};

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
    pub fn new(rate: u32, burst: u32) -> Bucket {
        let rate = NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Bucket(Arc::new(RateLimiter::direct(
            Quota::per_second(rate).allow_burst(burst),
        )))
    }

    /// Wait for a token. The small jitter spreads the wake-ups of calls that queued together.
    pub async fn wait(&self) {
        self.0
            .until_ready_with_jitter(Jitter::up_to(Duration::from_millis(5)))
            .await;
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
