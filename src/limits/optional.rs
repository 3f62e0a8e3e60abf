//! The optional actions (the credential report, the root user's summary and virtual MFA devices, the
//! users' other credentials), learned as the run goes: each AccessDenied is an entry in the audited
//! account's CloudTrail, and CIS 4.1's alarm on unauthorized calls counts them. So a refusal is learned
//! at two levels, each a `Learner`:
//!
//! - in one account (`Session`): the first refusal stops the asking there (the users' calls wait for the
//!   first one's answer instead of racing past it);
//! - across the run (`Aws`), per role name: once an account refused an action to a role (and none allowed
//!   it), the action is not asked again with that role. The run's summary names it once, with the action
//!   to grant; each account that went without it has a note naming the account that refused it. One
//!   refusal decides because one role name is one policy (a StackSet deploys the same everywhere), and
//!   because the five optional IAM actions refused twice each, plus the management account's two
//!   optional reads, would already be twelve refused calls where the budget is ten. A role deployed
//!   unevenly (an old stack instance, an SCP on one OU) shows as that account named in every note.
//!
//! While an action's answer is unknown, one call of it is in flight at a time (a probe) and the others
//! wait for its answer, at most `PROBE_WAIT` (then they go ahead as probes themselves: a slow account
//! cannot hold the others). Once one call succeeds the action is allowed and never waits again; a
//! success after a learned refusal allows it again. A throttle, timeout or 5xx decides nothing.
//!
//! `optional_actions = false` asks none of them: the audit with the README's six-action policy then makes
//! no refused call at all.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

use crate::retry::{classify, is_denied, Failure, Retry};

/// The code of an optional action not asked because the run learned it is refused (a note names it).
pub const NOT_ASKED: &str = "NotAsked";
/// The code of an optional action not asked because `optional_actions = false` (no note: it was asked
/// for).
pub const OFF: &str = "OptionalActionsOff";
/// The code of an optional action not asked because this account refused it already (noted then).
pub const REFUSED_HERE: &str = "RefusedBefore";

/// Accounts that must refuse an action to one role before the run stops asking it.
pub const RUN_REFUSALS: u32 = 1;

/// Longest a call waits for the answer of the probe of its action.
const PROBE_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Unknown {
        probing: u32,
        refused: u32,
    },
    Allowed,
    Refused {
        refused: u32,
        skipped: u64,
        /// Index into `Learner::who` of the account that refused it last.
        by: usize,
    },
}

/// What was learned of each action (a key: the action, or the role and the action).
pub struct Learner {
    states: Mutex<HashMap<String, State>>,
    /// The accounts that refused something (named in the notes of the accounts not asked).
    who: Mutex<Vec<String>>,
    changed: Notify,
    stop_after: u32,
}

/// Whether to make the call.
pub enum Ask<'a> {
    /// Call: the answer settles the probe, if this call is one.
    Go(Option<Probe<'a>>),
    /// Do not: refused this many times before, last by this account.
    Skip { refused: u32, by: String },
}

/// How a call answered, for the learners.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    Allowed,
    Refused,
    /// A throttle, a timeout, a 5xx: says nothing of the permission.
    Unsettled,
}

impl Outcome {
    pub fn of<T>(r: &Result<T, Failure>) -> Outcome {
        match r {
            Ok(_) => Outcome::Allowed,
            Err(f) if is_denied(f) => Outcome::Refused,
            Err(f) if classify(f) != Retry::Permanent || f.code == "Timeout" => Outcome::Unsettled,
            // Any other answer (NoSuchEntity, ReportInProgress, a validation error) came from behind
            // the authorization.
            Err(_) => Outcome::Allowed,
        }
    }
}

/// One call of an action whose answer is unknown; dropped unsettled (its call cancelled), it lets the
/// next waiter probe.
pub struct Probe<'a> {
    learner: &'a Learner,
    key: String,
    who: &'a str,
    settled: bool,
}

impl Learner {
    /// `stop_after` refusals (and no success) stop the asking.
    pub fn new(stop_after: u32) -> Learner {
        Learner {
            states: Mutex::new(HashMap::new()),
            who: Mutex::new(Vec::new()),
            changed: Notify::new(),
            stop_after: stop_after.max(1),
        }
    }

    /// Whether account `who` calls `key` now: at once when allowed, never when refused, else as the
    /// probe or after it.
    pub async fn ask<'a>(&'a self, key: &str, who: &'a str) -> Ask<'a> {
        let deadline = tokio::time::Instant::now() + PROBE_WAIT;
        loop {
            let notified = {
                let mut states = self.states.lock().expect("learner lock");
                if !states.contains_key(key) {
                    states.insert(
                        key.to_string(),
                        State::Unknown {
                            probing: 0,
                            refused: 0,
                        },
                    );
                }
                let state = states.get_mut(key).expect("inserted");
                match state {
                    State::Allowed => return Ask::Go(None),
                    State::Refused {
                        refused,
                        skipped,
                        by,
                    } => {
                        *skipped += 1;
                        let by = self.who.lock().expect("learner lock")[*by].clone();
                        return Ask::Skip {
                            refused: *refused,
                            by,
                        };
                    }
                    State::Unknown { probing, .. }
                        if *probing == 0 || tokio::time::Instant::now() >= deadline =>
                    {
                        *probing += 1;
                        return Ask::Go(Some(Probe {
                            learner: self,
                            key: key.to_string(),
                            who,
                            settled: false,
                        }));
                    }
                    // Registered before the lock is released: the probe's settling wakes it.
                    State::Unknown { .. } => self.changed.notified(),
                }
            };
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    /// Learn from a probe's answer, given by account `who`.
    fn settle(&self, key: &str, outcome: Outcome, who: &str) {
        let mut states = self.states.lock().expect("learner lock");
        let Some(state) = states.get_mut(key) else {
            return;
        };
        let by = || {
            let mut names = self.who.lock().expect("learner lock");
            match names.iter().position(|n| n == who) {
                Some(i) => i,
                None => {
                    names.push(who.to_string());
                    names.len() - 1
                }
            }
        };
        *state = match (*state, outcome) {
            (State::Unknown { probing, refused }, o) => {
                let probing = probing.saturating_sub(1);
                match o {
                    Outcome::Allowed => State::Allowed,
                    Outcome::Refused if refused + 1 >= self.stop_after => State::Refused {
                        refused: refused + 1,
                        skipped: 0,
                        by: by(),
                    },
                    Outcome::Refused => State::Unknown {
                        probing,
                        refused: refused + 1,
                    },
                    Outcome::Unsettled => State::Unknown { probing, refused },
                }
            }
            // A probe that waited too long and went ahead: its answer still counts.
            (
                State::Refused {
                    refused, skipped, ..
                },
                Outcome::Refused,
            ) => State::Refused {
                refused: refused + 1,
                skipped,
                by: by(),
            },
            (State::Refused { .. }, Outcome::Allowed) => State::Allowed,
            (s, _) => s,
        };
        drop(states);
        self.changed.notify_waiters();
    }

    /// The keys refused and not asked since: (key, refusals, times not asked), sorted by key.
    pub fn refused(&self) -> Vec<(String, u32, u64)> {
        let states = self.states.lock().expect("learner lock");
        let mut out: Vec<(String, u32, u64)> = states
            .iter()
            .filter_map(|(k, s)| match s {
                State::Refused {
                    refused, skipped, ..
                } => Some((k.clone(), *refused, *skipped)),
                _ => None,
            })
            .collect();
        out.sort();
        out
    }
}

impl Probe<'_> {
    pub fn settle(mut self, outcome: Outcome) {
        self.settled = true;
        self.learner.settle(&self.key, outcome, self.who);
    }
}

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.learner.settle(&self.key, Outcome::Unsettled, self.who);
        }
    }
}

/// Settle a call's answer: its probe's, if it was one.
pub fn settle(probe: Option<Probe<'_>>, outcome: Outcome) {
    if let Some(p) = probe {
        p.settle(outcome);
    }
}

/// The run-wide key of an action asked with a role.
pub fn run_key(role: &str, action: &str) -> String {
    format!("{role} {action}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    fn denied() -> Failure {
        Failure::new("AccessDenied", "not authorized to perform iam:X")
    }

    /// Forty callers at once, the action refused everywhere: two calls go out, in turn, and every other
    /// caller is told not to ask.
    #[tokio::test]
    async fn concurrent_callers_wait_for_the_probe_and_stop_after_two_refusals() {
        let learner = Arc::new(Learner::new(2));
        let calls = Arc::new(AtomicU32::new(0));
        let tasks: Vec<_> = (0..40)
            .map(|n| {
                let (learner, calls) = (learner.clone(), calls.clone());
                tokio::spawn(async move {
                    let who = format!("{n:012}");
                    let skipped = match learner.ask("IAMAuditRole iam:X", &who).await {
                        Ask::Go(probe) => {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            settle(probe, Outcome::of::<()>(&Err(denied())));
                            false
                        }
                        Ask::Skip { refused, by } => {
                            assert_eq!(refused, 2);
                            assert_eq!(by.len(), 12);
                            true
                        }
                    };
                    skipped
                })
            })
            .collect();
        let mut skipped = 0;
        for t in tasks {
            skipped += u32::from(t.await.unwrap());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(skipped, 38);
        assert_eq!(
            learner.refused(),
            vec![("IAMAuditRole iam:X".to_string(), 2, 38)]
        );
    }

    /// One success allows the action for good; a throttle or a cancelled probe decides nothing.
    #[tokio::test]
    async fn a_success_allows_and_a_throttle_or_a_cancelled_probe_decides_nothing() {
        let learner = Learner::new(2);
        let Ask::Go(Some(p)) = learner.ask("k", "111111111111").await else {
            panic!("the first call probes")
        };
        p.settle(Outcome::of::<()>(&Err(Failure::new(
            "Throttling",
            "slow down",
        ))));
        let Ask::Go(Some(p)) = learner.ask("k", "111111111111").await else {
            panic!("still unknown")
        };
        drop(p);
        let Ask::Go(Some(p)) = learner.ask("k", "111111111111").await else {
            panic!("still unknown")
        };
        p.settle(Outcome::of::<()>(&Err(denied())));
        let Ask::Go(Some(p)) = learner.ask("k", "111111111111").await else {
            panic!("one refusal is not two")
        };
        p.settle(Outcome::of::<()>(&Err(Failure::new(
            "NoSuchEntity",
            "the user is gone",
        ))));
        assert!(matches!(
            learner.ask("k", "111111111111").await,
            Ask::Go(None)
        ));
        assert!(learner.refused().is_empty());
    }

    /// A probe that never answers holds the others `PROBE_WAIT` at most.
    #[tokio::test(start_paused = true)]
    async fn a_stuck_probe_holds_the_others_five_seconds_at_most() {
        let learner = Learner::new(2);
        let Ask::Go(Some(_stuck)) = learner.ask("k", "111111111111").await else {
            panic!()
        };
        let t = tokio::time::Instant::now();
        assert!(matches!(
            learner.ask("k", "111111111111").await,
            Ask::Go(Some(_))
        ));
        assert_eq!(t.elapsed(), PROBE_WAIT);
    }
}
