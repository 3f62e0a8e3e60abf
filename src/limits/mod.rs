//! Client-side rate limits: one governor token bucket per account for IAM (IAM's quota is account-wide) and
//! one per account and region for CloudTrail LookupEvents (2 requests/s per region and account), a cap
//! on the HTTP requests in flight across the run, and (`ready`) when to ask for a report the server is
//! generating.
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
use governor::clock::{Clock, MonotonicClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::stats::CallStats;

mod ready;

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
