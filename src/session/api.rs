//! `Api::call`: the one way an account's AWS request goes out. It waits for the account's bucket, then
//! for the run's in-flight cap, lets the SDK build and send the request (with its adaptive retries), adds
//! our own rounds for throttles and transient faults, renews expired credentials, and tallies the outcome
//! in the account's part.

use std::sync::atomic::Ordering;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::retry::{is_expired_token, retry_step, Failure};

use super::{Paced, Part, Session};
use crate::limits::optional::{self, Ask, Outcome};

/// Extra rounds of SDK attempts for a throttled or transiently failing call.
const OUTER_ROUNDS: usize = 5;

/// One service of one account, as the parts call it.
pub struct Api<'s, C, O> {
    pub(super) session: &'s Session,
    pub(super) part: Part,
    pub(super) paced: &'s Paced<C, O>,
}

impl<C, O> Clone for Api<'_, C, O> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<C, O> Copy for Api<'_, C, O> {}

impl<'s, C, O: Clone> Api<'s, C, O> {
    /// One AWS call, counted in the part's tally; a failure is also recorded as the account's problem.
    /// `f` gets the shared client and this account's config override, which it must apply:
    /// `|c, o| c.list_users().customize().config_override(o).send()`. (Without it the call has no
    /// credentials and fails.)
    ///
    /// The call waits for a token of its bucket before `f` builds the request (see `limits`), and the
    /// SDK's adaptive retries run inside `f`. A call still throttled or failing transiently after all of
    /// them gets up to `OUTER_ROUNDS` more rounds after a backoff: an auditor would rather wait than
    /// report a row as lost. After an `ExpiredToken` (the session ended under us) the role is assumed
    /// again and the call resent.
    pub async fn call<T, E, F, Fut>(&self, action: &str, f: F) -> Result<T, Failure>
    where
        F: Fn(&'s C, O) -> Fut,
        Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let r = self.try_call(action, f).await;
        match &r {
            Ok(_) => {
                self.session.tallies[self.part as usize]
                    .ok
                    .fetch_add(1, Ordering::Relaxed);
            }
            Err(failure) => self.session.fail(self.part, action, failure),
        }
        r
    }

    /// `call` about one IAM user, where `NoSuchEntity` means the user was deleted during the audit: a
    /// normal race, recorded as a `Deleted` note (not a failure), and `Ok(None)`.
    pub async fn call_unless_deleted<T, E, F, Fut>(
        &self,
        action: &str,
        user: &str,
        f: F,
    ) -> Result<Option<T>, Failure>
    where
        F: Fn(&'s C, O) -> Fut,
        Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match self.try_call(action, f).await {
            Ok(v) => {
                self.session.tallies[self.part as usize]
                    .ok
                    .fetch_add(1, Ordering::Relaxed);
                Ok(Some(v))
            }
            Err(failure) if failure.code == "NoSuchEntity" => {
                self.session.problem(
                    action,
                    &Failure::new(
                        "Deleted",
                        format!("user {user} was deleted during the audit (a note, not a failure)"),
                    ),
                );
                Ok(None)
            }
            Err(failure) => {
                self.session.fail(self.part, action, &failure);
                Err(failure)
            }
        }
    }

    /// `try_call` for an optional action (`optional`): not made when optional actions are off, or when
    /// this account refused it before, or the run learned its role is refused it (a `NotAsked` failure,
    /// for the caller's note); its answer teaches both. The outcome is the caller's to record.
    pub async fn optional<T, E, F, Fut>(&self, action: &'static str, f: F) -> Result<T, Failure>
    where
        F: Fn(&'s C, O) -> Fut,
        Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let s = self.session;
        if !s.settings.keys.optional_actions {
            return Err(Failure::new(
                optional::OFF,
                "not asked: optional_actions = false",
            ));
        }
        let who = s.account.id.as_str();
        let here = match s.learned.ask(action, who).await {
            Ask::Skip { .. } => {
                return Err(Failure::new(
                    optional::REFUSED_HERE,
                    "refused in this account before",
                ))
            }
            Ask::Go(p) => p,
        };
        // Allowed in this account already: the run has nothing to add.
        let across = match here {
            None => None,
            Some(_) => {
                let role = s.role_used();
                match s
                    .run_learned
                    .ask(&optional::run_key(&role, action), who)
                    .await
                {
                    Ask::Skip { refused, by } => {
                        optional::settle(here, Outcome::Refused);
                        let accounts = match refused {
                            1 => format!("account {by}"),
                            n => format!("{n} accounts (the last {by})"),
                        };
                        return Err(Failure::new(
                            optional::NOT_ASKED,
                            format!(
                                "not asked: {accounts} refused it to the role {role} in this run"
                            ),
                        ));
                    }
                    Ask::Go(p) => p,
                }
            }
        };
        let r = self.try_call(action, f).await;
        let outcome = Outcome::of(&r);
        optional::settle(across, outcome);
        optional::settle(here, outcome);
        r
    }

    /// `call` for an optional action: the outcome is the caller's to record (a failure as a failure of the
    /// part, or as a note when the audit goes on without it); it does not count in the part's status.
    pub async fn try_call<T, E, F, Fut>(&self, action: &str, f: F) -> Result<T, Failure>
    where
        F: Fn(&'s C, O) -> Fut,
        Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let s = &self.session.settings;
        let f = &f;
        let tally = &self.session.tallies[self.part as usize];
        {
            // A call per account action, thousands a run: allocate the name only the first time.
            let mut under_way = tally.under_way.lock().expect("under way");
            match under_way.get_mut(action) {
                Some(n) => *n += 1,
                None => {
                    under_way.insert(action.to_string(), 1);
                }
            }
        }
        let r = retry_step(s.initial_backoff(), s.max_backoff(), OUTER_ROUNDS, || {
            self.send_fresh(f)
        })
        .await;
        if let Some(n) = tally.under_way.lock().expect("under way").get_mut(action) {
            *n = n.saturating_sub(1);
        }
        r
    }

    async fn send_fresh<T, E, F, Fut>(&self, f: &F) -> Result<T, Failure>
    where
        F: Fn(&'s C, O) -> Fut,
        Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut renewed = 0;
        loop {
            self.paced.bucket.wait().await;
            let admitted = self.paced.gate.admit().await;
            // Boxed, so that the SDK's operation future (several KB) is allocated only now that the call
            // goes out, not reserved in every waiting call's state.
            let failure = match Box::pin(f(&self.paced.client, self.paced.over.clone())).await {
                Ok(v) => return Ok(v),
                Err(e) => Failure::from_sdk(&e),
            };
            drop(admitted);
            if !is_expired_token(&failure) || renewed == 2 {
                return Err(failure);
            }
            tracing::debug!(account = %self.session.account.id, "session expired; assuming the role again");
            self.session.credentials.invalidate().await;
            renewed += 1;
        }
    }
}
