//! When to ask for the result of a job the server runs on its own: the credential report, which IAM
//! generates after GenerateCredentialReport and hands out through GetCredentialReport, answering
//! `ReportInProgress` until it is ready. Asking too early costs a call and a wait; asking too late costs
//! only the wait. The run learns, from every account's answers, how long reports take, and asks once that
//! long after starting one.
//!
//! Two bounds are kept. The *floor* is the longest wait seen to be too short in the last `FLOOR_MEMORY`
//! (a "not ready" after it); the estimate stays `MARGIN` above it. A report ready at its first ask after a
//! wait `w` lets the estimate come down to 2% under `w`, never under the floor's margin; a report that
//! took asking again, after `t`, caps it at `t`. Every bound comes from a wait that was actually made, so
//! hundreds of accounts answering in the same second move the estimate once, not hundreds of times (a
//! per-answer decay would collapse it, and every account would then ask several times). Once the
//! estimate has found the floor it stays there until the floor is forgotten, then probes lower again:
//! a few early asks every `FLOOR_MEMORY`, and about `MARGIN` of waiting too long.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How far above the longest wait known too short the estimate stays, in thousandths.
const MARGIN_PER_MILLE: u64 = 1030;
/// A first-ask success lets the estimate come down this far under the wait that worked, in thousandths.
const PROBE_PER_MILLE: u64 = 980;
/// How long a wait known too short is remembered (jobs may get faster as the run goes on).
const FLOOR_MEMORY: Duration = Duration::from_secs(30);
/// The estimate stays within these bounds.
const MIN_MS: u64 = 50;
const MAX_MS: u64 = 300_000;

/// The run's estimate of how long a server-side job takes, shared by every account.
#[derive(Debug)]
pub struct ReadyEstimate {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    ms: u64,
    /// The longest wait seen too short, and when.
    floor: Option<(u64, Instant)>,
}

impl State {
    fn floor_ms(&mut self, now: Instant) -> u64 {
        match self.floor {
            Some((ms, at)) if now.duration_since(at) < FLOOR_MEMORY => ms,
            _ => {
                self.floor = None;
                0
            }
        }
    }
}

impl ReadyEstimate {
    /// Start from `guess`, before any account has measured.
    pub fn new(guess: Duration) -> ReadyEstimate {
        ReadyEstimate {
            state: Mutex::new(State {
                ms: clamp(guess.as_millis() as u64),
                floor: None,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("not poisoned")
    }

    /// How long to wait after starting a job before the first ask.
    pub fn wait(&self) -> Duration {
        Duration::from_millis(self.state().ms)
    }

    /// After an early ask, when to ask again: a twentieth of the estimate, doubling with each further
    /// early ask (`asks` so far), so that a job far slower than the estimate is not asked every moment.
    pub fn again(&self, asks: u32) -> Duration {
        let base = (self.state().ms / 20).max(MIN_MS);
        Duration::from_millis(base.saturating_mul(1 << asks.min(10)).min(MAX_MS))
    }

    /// The job was not done `waited` after it started.
    pub fn not_ready_after(&self, waited: Duration) {
        self.not_ready_at(waited, Instant::now());
    }

    /// The job was done at the first ask, `waited` after it started.
    pub fn ready_at_first_ask(&self, waited: Duration) {
        self.ready_first_at(waited, Instant::now());
    }

    /// The job was done when asked again, `waited` after it started: no more than that is needed.
    pub fn ready_after(&self, waited: Duration) {
        let mut s = self.state();
        let floor = s.floor_ms(Instant::now());
        let enough = (waited.as_millis() as u64).max(above(floor));
        s.ms = clamp(s.ms.min(enough));
    }

    fn not_ready_at(&self, waited: Duration, now: Instant) {
        let w = waited.as_millis() as u64;
        let mut s = self.state();
        let floor = s.floor_ms(now);
        if w >= floor {
            s.floor = Some((w, now));
        }
        s.ms = clamp(s.ms.max(above(w)));
    }

    fn ready_first_at(&self, waited: Duration, now: Instant) {
        let w = waited.as_millis() as u64;
        let mut s = self.state();
        let floor = s.floor_ms(now);
        let lower = (w * PROBE_PER_MILLE / 1000).max(above(floor));
        s.ms = clamp(s.ms.min(lower));
    }
}

/// The margin above a wait known too short.
fn above(ms: u64) -> u64 {
    ms * MARGIN_PER_MILLE / 1000
}

fn clamp(ms: u64) -> u64 {
    ms.clamp(MIN_MS, MAX_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Waves of `accounts` at once, each waiting the estimate: those whose job takes longer ask again.
    /// Returns the asks of all, and the estimate after.
    fn waves(
        e: &ReadyEstimate,
        needed: impl Fn(usize) -> u64,
        accounts: usize,
        waves: usize,
        wave_time: Duration,
    ) -> (usize, u64) {
        let mut now = Instant::now();
        let mut asks = 0;
        for _ in 0..waves {
            let w = e.wait().as_millis() as u64;
            for a in 0..accounts {
                asks += 1;
                if w >= needed(a) {
                    e.ready_first_at(ms(w), now);
                } else {
                    e.not_ready_at(ms(w), now);
                    asks += 1;
                    let again = w + e.again(0).as_millis() as u64;
                    e.ready_after(ms(again));
                }
            }
            now += wave_time;
        }
        (asks, e.state().ms)
    }

    // Story: 500 accounts at once, reports taking 1,880-1,899 ms, a first guess of 2 s: a wave of
    // first-ask successes moves the wait once (not 500 times, which would collapse it), the wait comes
    // down to just above what reports take and stays there, and few accounts ask twice.
    #[test]
    fn the_wait_settles_just_above_what_reports_take() {
        let e = ReadyEstimate::new(ms(2000));
        let needed = |a: usize| 1880 + (a as u64 * 7919) % 20;
        let (asks, _) = waves(&e, needed, 500, 1, Duration::from_secs(2));
        assert_eq!((asks, e.wait()), (500, ms(1960)), "one wave lowers it once");
        let (asks, w) = waves(&e, needed, 500, 40, Duration::from_millis(2500));
        assert!((1899..=1960).contains(&w), "{w}");
        // 40 waves of 500 accounts: at most one ask in ten is a second one.
        assert!(asks <= 22_000, "{asks} asks for 20,000 accounts");
    }

    // Story: a wave of accounts all asking too early raises the wait once, just past the wait that
    // failed.
    #[test]
    fn many_early_asks_at_once_raise_the_wait_once() {
        let e = ReadyEstimate::new(ms(1000));
        for _ in 0..100 {
            e.not_ready_after(ms(1000));
        }
        assert_eq!(e.wait(), ms(1030));
    }

    // Story: reports far slower than the guess: the asks after an early one double, and the estimate
    // follows the waits that failed, so that after a few accounts the wait is about what reports take.
    #[test]
    fn a_slow_job_is_asked_less_and_less_often() {
        let e = ReadyEstimate::new(ms(2000));
        assert_eq!(e.again(0), ms(100));
        assert_eq!(e.again(3), ms(800));
        let needed = 10_000u64;
        let mut first = Vec::new();
        for _ in 0..4 {
            let mut waited = e.wait().as_millis() as u64;
            let mut asks = 1;
            while waited < needed {
                e.not_ready_after(ms(waited));
                waited += e.again(asks - 1).as_millis() as u64;
                asks += 1;
            }
            e.ready_after(ms(waited));
            assert!(asks <= 8, "{asks} asks");
            first.push(asks);
        }
        // The first account asks several times; by the fourth the first ask is nearly enough.
        assert!(first[0] >= 4 && first[3] <= 2, "{first:?}");
        let w = e.wait().as_millis() as u64;
        assert!((9_000..=11_000).contains(&w), "{w}");
    }
}
