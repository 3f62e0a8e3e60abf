//! Client-side rate limits: here one governor token bucket per account for IAM (IAM's quota is
//! account-wide) and one per account and region for CloudTrail LookupEvents (2 requests/s per region and
//! account); in `in_flight` the cap on the HTTP requests in flight across the run and the paced HTTP
//! client; in `ready` when to ask for a report the server is generating; in `optional` which optional
//! actions the run learned are refused, so that they are not asked again.
//!
//! Where the waiting happens decides what an account costs. A call waits for its first token in
//! `session::Api::call`, *before* the SDK builds the request: a waiting call then holds a few bytes instead
//! of a whole SDK operation (config bag, runtime components, serialized request, ~10 KB), which was most of
//! the memory of an account in flight. Retries of that call, made inside the SDK, wait here in the
//! account's HTTP client (`PacedHttpClient`), marked as retries by the `MarkRetries` interceptor. Had
//! retries not waited, a retry after a throttle would take the next call's slot at the server, which would
//! then be throttled in turn: at a client paced exactly at the quota that cascade never ends. The SDK's
//! adaptive retry limiter is the second line of defence.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, MonotonicClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

mod in_flight;
pub mod optional;
mod ready;

pub use in_flight::{Admission, Cap, InFlight, MarkRetries, PacedHttpClient, Slot};
pub use ready::ReadyEstimate;

/// Spacing of calls relative to the configured rate (see `Bucket::new`).
pub const HEADROOM: f64 = 1.05;

type Limiter =
    RateLimiter<NotKeyed, InMemoryState, MonotonicClock, NoOpMiddleware<std::time::Instant>>;

struct BucketInner {
    limiter: Limiter,
    /// Waits end on the shared `TICK` grid (see `on_tick`): only when the burst is above 1, so that a
    /// token granted while the waiter sleeps past it stays in the bucket and no rate is lost.
    on_grid: bool,
    clock: MonotonicClock,
    /// Waiters take turns, first come first served. Without it every waiter would sleep until the same
    /// next token, all would wake, one would win and the rest sleep again: a thundering herd of wake-ups
    /// per token, which at hundreds of accounts in flight is most of the CPU the auditor spends waiting.
    turn: tokio::sync::Mutex<()>,
}

/// A token bucket shared by every call of one account (and region) to one service.
#[derive(Clone)]
pub struct Bucket(Arc<BucketInner>);

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
        let quota = quota(rate, burst);
        // The monotonic clock (std's Instant), not governor's default quanta clock: quanta calibrates
        // itself with CPUID for every limiter built, a VM exit each on virtual machines.
        let clock = MonotonicClock;
        Bucket(Arc::new(BucketInner {
            limiter: RateLimiter::direct_with_clock(quota, clock.clone()),
            on_grid: true,
            clock,
            turn: tokio::sync::Mutex::new(()),
        }))
    }

    /// Wait for a token, on tokio's timer (governor's own waiting runs a global timer thread, whose
    /// futex wake-ups cost more CPU than the calls they paced).
    pub async fn wait(&self) {
        let inner = &*self.0;
        // Without waiting when nobody is queued; otherwise behind those who are.
        let _turn = match inner.turn.try_lock() {
            Ok(turn) => turn,
            Err(_) => inner.turn.lock().await,
        };
        loop {
            match inner.limiter.check() {
                Ok(()) => return,
                Err(not_until) => {
                    let wait = not_until.wait_time_from(inner.clock.now());
                    let mut deadline = tokio::time::Instant::now() + wait;
                    if inner.on_grid {
                        deadline = on_tick(deadline);
                    }
                    tokio::time::sleep_until(deadline).await;
                }
            }
        }
    }
}

/// The quota of a bucket: one token every `HEADROOM / rate` seconds, at most `burst` at once.
fn quota(rate: u32, burst: u32) -> Quota {
    let rate = rate.max(1);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    let period = Duration::from_secs_f64(HEADROOM / f64::from(rate));
    Quota::with_period(period)
        .expect("a positive period")
        .allow_burst(burst)
}

/// Waits end on a shared grid of this step, so the calls of many accounts due within the same few
/// milliseconds go out on one wake-up of the runtime instead of one each: a paced run of 64 accounts
/// otherwise wakes ~700 times a second to send one request each time, and a wake-up costs more CPU than
/// the call it sends. A token is only ever taken later than it was granted, never earlier, so no quota is
/// exceeded.
const TICK: Duration = Duration::from_millis(20);

fn on_tick(deadline: tokio::time::Instant) -> tokio::time::Instant {
    static ORIGIN: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    let origin = *ORIGIN.get_or_init(tokio::time::Instant::now);
    let since = deadline.saturating_duration_since(origin);
    let ticks = since.as_nanos().div_ceil(TICK.as_nanos());
    origin + TICK * ticks as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    // Story: a bucket grants its burst at once, then one token per period (the rate less the headroom),
    // judged on a clock the test moves, so a slow machine cannot change the answer.
    #[test]
    fn burst_then_one_token_per_period() {
        use governor::clock::FakeRelativeClock;
        let clock = FakeRelativeClock::default();
        let b = RateLimiter::direct_with_clock(quota(50, 2), clock.clone());
        assert!(b.check().is_ok() && b.check().is_ok(), "the burst");
        assert!(b.check().is_err());
        // At 50/s with 5% headroom a token comes every 21 ms.
        clock.advance(Duration::from_millis(20));
        assert!(b.check().is_err());
        clock.advance(Duration::from_millis(1));
        assert!(b.check().is_ok());
        assert!(b.check().is_err());
    }

    // Story: waiters are served one at a time, in the order they came, each after the previous token.
    #[tokio::test]
    async fn waiters_take_turns_at_the_rate() {
        let b = Bucket::new(20, 1);
        b.wait().await;
        let start = std::time::Instant::now();
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..5)
            .map(|i| {
                let (b, order) = (b.clone(), order.clone());
                tokio::spawn(async move {
                    b.wait().await;
                    order.lock().unwrap().push(i);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
        // 5 more tokens at 20/s less the headroom: at least 5 × 52 ms (a slow machine only adds to it).
        assert!(start.elapsed() >= Duration::from_millis(260));
    }
}
