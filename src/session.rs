//! One member account's session, below the parts of its audit (`iam`, `cloudtrail`): the account's
//! assumed-role credentials (assumed through the run's one STS client, cached and renewed before they
//! expire), its paced IAM and CloudTrail clients (each with its own token bucket and retry partition), the
//! `call` every AWS request of the account goes through (pacing, retries, ExpiredToken refresh), and the
//! tally of what succeeded and what failed, which becomes the account's row in the accounts report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_smithy_runtime::client::identity::IdentityCache;
use aws_smithy_runtime::client::retries::{RetryPartition, TokenBucket};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::aws::Aws;
use crate::config::Settings;
use crate::limits::{Bucket, InFlight, PacedHttpClient};
use crate::org::Account;
use crate::report::PartStatus;
use crate::retry::{is_expired_token, retry_step, Failure, FailureError};
use crate::stats::CallStats;

/// A timestamp of an AWS answer as UTC.
pub fn utc(t: &aws_smithy_types::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// At most this many distinct errors are spelled out in an account's `error` cell.
const MAX_ERRORS_SHOWN: usize = 5;

/// Extra rounds of SDK attempts for a throttled or transiently failing call.
const OUTER_ROUNDS: usize = 5;

/// Credentials of one member account: AssumeRole through the run's shared STS client, cached here and
/// renewed before they expire (or at once after an `ExpiredToken`), shared by the account's clients.
#[derive(Debug)]
pub struct AccountCredentials {
    sts: aws_sdk_sts::Client,
    /// The roles to try, in order.
    role_arns: Vec<String>,
    /// Which way in worked: `Some(i)` the i-th role, `Some(usize::MAX)` the caller's own credentials.
    chosen: std::sync::atomic::AtomicUsize,
    /// The caller's credentials, for the management account when no role can be assumed there.
    caller: Option<SharedCredentialsProvider>,
    session_name: String,
    external_id: Option<String>,
    duration: Duration,
    cached: tokio::sync::Mutex<Option<(Credentials, SystemTime)>>,
    stats: Arc<CallStats>,
}

impl AccountCredentials {
    /// Current credentials, assuming the role if there are none or they are about to expire.
    pub async fn get(&self) -> Result<Credentials, Failure> {
        let mut slot = self.cached.lock().await;
        if let Some((creds, obtained)) = slot.as_ref() {
            if fresh(creds, *obtained, SystemTime::now()) {
                return Ok(creds.clone());
            }
        }
        let creds = match self.chosen.load(Ordering::Relaxed) {
            CALLER => self.caller_credentials().await?,
            NOT_CHOSEN => self.assume(&self.role_arns[0]).await?,
            i => self.assume(&self.role_arns[i]).await?,
        };
        *slot = Some((creds.clone(), SystemTime::now()));
        Ok(creds)
    }

    /// Find the way in: each role in order (a denied one is passed over), then, where allowed, the
    /// caller's own credentials. `Err` with every role's failure when none works.
    pub async fn choose(&self) -> Result<(), Failure> {
        let (min, max) = (Duration::from_millis(500), Duration::from_secs(20));
        // (code, "message (sts:AssumeRole arn)") of each role refused.
        let mut refused: Vec<(String, String)> = Vec::new();
        for (i, arn) in self.role_arns.iter().enumerate() {
            match retry_step(min, max, 4, || self.assume(arn)).await {
                Ok(creds) => {
                    self.chosen.store(i, Ordering::Relaxed);
                    *self.cached.lock().await = Some((creds, SystemTime::now()));
                    return Ok(());
                }
                Err(f) if crate::retry::is_denied(&f) => {
                    refused.push((f.code, format!("{} (sts:AssumeRole {arn})", f.message)));
                }
                Err(f) => {
                    return Err(Failure::new(
                        f.code,
                        format!("{} (sts:AssumeRole {arn})", f.message),
                    ))
                }
            }
        }
        if self.caller.is_some() {
            let creds = self.caller_credentials().await?;
            self.chosen.store(CALLER, Ordering::Relaxed);
            *self.cached.lock().await = Some((creds, SystemTime::now()));
            return Ok(());
        }
        let code = refused
            .first()
            .map_or("AccessDenied".to_string(), |(c, _)| c.clone());
        let message = refused
            .into_iter()
            .map(|(_, m)| m)
            .collect::<Vec<_>>()
            .join(" | ");
        Err(Failure::new(code, message))
    }

    /// The role used (its name), `caller`, or empty before one was chosen.
    pub fn used(&self) -> String {
        match self.chosen.load(Ordering::Relaxed) {
            CALLER => "caller".to_string(),
            NOT_CHOSEN => String::new(),
            i => self.role_arns[i]
                .split_once(":role/")
                .map(|(_, name)| name.to_string())
                .unwrap_or_default(),
        }
    }

    async fn caller_credentials(&self) -> Result<Credentials, Failure> {
        let Some(provider) = &self.caller else {
            return Err(Failure::new("CredentialsError", "no caller credentials"));
        };
        provider
            .provide_credentials()
            .await
            .map_err(|e| Failure::new("CredentialsError", crate::aws::error_chain(&e)))
    }

    /// Forget the cached credentials (the service said they expired).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    async fn assume(&self, role_arn: &str) -> Result<Credentials, Failure> {
        self.stats.assume_role.fetch_add(1, Ordering::Relaxed);
        // Boxed: the SDK's future is several KB, and every account waiting to start would reserve it.
        let out = Box::pin(
            self.sts
                .assume_role()
                .role_arn(role_arn)
                .role_session_name(&self.session_name)
                .set_external_id(self.external_id.clone())
                .duration_seconds(self.duration.as_secs() as i32)
                .send(),
        )
        .await
        .map_err(|e| Failure::from_sdk(&e))?;
        let Some(c) = out.credentials() else {
            return Err(Failure::new(
                "MalformedResponse",
                "AssumeRole answered without Credentials",
            ));
        };
        let expiry = SystemTime::try_from(*c.expiration()).ok();
        Ok(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            expiry,
            "iam-audit-assume-role",
        ))
    }
}

/// `AccountCredentials::chosen` before a choice, and for the caller's own credentials.
const NOT_CHOSEN: usize = usize::MAX - 1;
const CALLER: usize = usize::MAX;

/// Refresh a fifth of the lifetime (at most five minutes) before expiry, so no call is signed with
/// credentials that die in flight.
fn fresh(creds: &Credentials, obtained: SystemTime, now: SystemTime) -> bool {
    let Some(expiry) = creds.expiry() else {
        return true;
    };
    let lifetime = expiry.duration_since(obtained).unwrap_or_default();
    let margin = (lifetime / 5).min(Duration::from_secs(300));
    now + margin < expiry
}

/// Adapter so the SDK clients resolve identities through the account's cache.
#[derive(Debug, Clone)]
struct SharedAccountCredentials(Arc<AccountCredentials>);

impl ProvideCredentials for SharedAccountCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.0.get().await.map_err(|f| {
                aws_credential_types::provider::error::CredentialsError::provider_error(
                    FailureError(f),
                )
            })
        })
    }
}

/// A retry partition owned by one account's client: its own retry token bucket and adaptive rate limiter,
/// so a throttled account slows only itself (design §4). A custom partition, not `RetryPartition::new`:
/// named partitions live for the whole process in the SDK's static maps (aws-smithy-runtime
/// `retries/strategy/standard.rs`), which would grow with every account audited. Throttling retries cost
/// no retry quota: our buckets already pace the calls, and an auditor would rather wait than lose a row;
/// 5xx and timeouts still draw on the quota, which stops retry storms in an outage.
fn own_partition(name: String) -> RetryPartition {
    RetryPartition::custom(name)
        .token_bucket(TokenBucket::builder().throttling_retry_cost(0).build())
        .build()
}

/// The parts of an account's audit, each with its own tally and status column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Iam,
    CloudTrail,
}

/// The calls of one part that succeeded and failed.
#[derive(Debug, Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    /// The part's calls under way, by action, for a budget that runs out during them. A call cut short
    /// (its future dropped) stays counted: it was under way.
    under_way: Mutex<std::collections::BTreeMap<String, usize>>,
    /// The part has run to its end.
    finished: std::sync::atomic::AtomicBool,
}

/// The status of a part from whether it read anything and whether anything failed.
fn part_status(succeeded_calls: u64, failed_calls: u64) -> PartStatus {
    match (succeeded_calls, failed_calls) {
        (_, 0) => PartStatus::Ok,
        (0, _) => PartStatus::Failed,
        _ => PartStatus::Partial,
    }
}

#[derive(Default)]
struct Problems {
    /// Distinct `action Code: message` lines, in the order first seen.
    distinct: Vec<(String, String, String)>,
    total: u64,
}

/// A shared client, this account's override of its config (credentials, paced HTTP client, retry
/// partition), and the bucket its calls wait on.
struct Paced<C, O> {
    client: C,
    over: O,
    bucket: Bucket,
    /// The run's in-flight cap, which admits a call before it is built.
    gate: InFlight,
}

/// The IAM API as the parts call it: the shared client and the account's config override, which every
/// call applies with `.customize().config_override(o)`.
pub type IamApi<'s> = Api<'s, aws_sdk_iam::Client, aws_sdk_iam::config::Builder>;
/// The CloudTrail API of one region, the same way.
pub type CloudTrailApi<'s> =
    Api<'s, aws_sdk_cloudtrail::Client, aws_sdk_cloudtrail::config::Builder>;

/// One account's session.
pub struct Session {
    account: Account,
    settings: Arc<Settings>,
    credentials: Arc<AccountCredentials>,
    iam: Paced<aws_sdk_iam::Client, aws_sdk_iam::config::Builder>,
    /// One CloudTrail API per configured region.
    cloudtrail: Vec<(
        String,
        Paced<aws_sdk_cloudtrail::Client, aws_sdk_cloudtrail::config::Builder>,
    )>,
    tallies: [Tally; 2],
    problems: Mutex<Problems>,
    /// The organization manages this member account's root credentials (RootCredentialsManagement).
    centralized_root: bool,
    partition: &'static str,
}

impl Session {
    /// The session of one account: nothing is called yet.
    pub fn new(aws: &Aws, settings: Arc<Settings>, account: Account) -> Session {
        // The account's own partition (from its ARN), else the run's (from its region).
        let partition: &'static str = match account.partition.as_str() {
            "aws" => "aws",
            "aws-cn" => "aws-cn",
            "aws-us-gov" => "aws-us-gov",
            "aws-iso" => "aws-iso",
            "aws-iso-b" => "aws-iso-b",
            _ => aws.partition(),
        };
        let role_arns = settings.role_arns(&account.id, partition);
        let account_is_management = account.management;
        let credentials = Arc::new(AccountCredentials {
            sts: aws.sts().clone(),
            role_arns,
            chosen: std::sync::atomic::AtomicUsize::new(NOT_CHOSEN),
            caller: (account_is_management && settings.management_as_caller)
                .then(|| aws.caller_credentials())
                .flatten(),
            session_name: settings.session_name.clone(),
            external_id: settings.external_id.clone(),
            duration: settings.session_duration,
            cached: tokio::sync::Mutex::new(None),
            stats: aws.stats().clone(),
        });
        let provider =
            SharedCredentialsProvider::new(SharedAccountCredentials(credentials.clone()));
        let iam_bucket = Bucket::new(settings.iam_rate, settings.iam_burst);
        let iam = Paced {
            client: aws.iam().clone(),
            over: aws_sdk_iam::config::Builder::default()
                .credentials_provider(provider.clone())
                .identity_cache(IdentityCache::no_cache())
                .http_client(PacedHttpClient::shared(
                    aws.http().clone(),
                    Some(iam_bucket.clone()),
                    aws.in_flight().clone(),
                ))
                .retry_partition(own_partition(format!("iam-{}", account.id))),
            bucket: iam_bucket,
            gate: aws.in_flight().clone(),
        };
        let cloudtrail = aws
            .cloudtrail()
            .iter()
            .map(|(region, client)| {
                let bucket = Bucket::new(settings.cloudtrail_rate, settings.cloudtrail_burst);
                let over = aws_sdk_cloudtrail::config::Builder::default()
                    .credentials_provider(provider.clone())
                    .identity_cache(IdentityCache::no_cache())
                    .http_client(PacedHttpClient::shared(
                        aws.http().clone(),
                        Some(bucket.clone()),
                        aws.in_flight().clone(),
                    ))
                    .retry_partition(own_partition(format!("cloudtrail-{}-{region}", account.id)));
                (
                    region.clone(),
                    Paced {
                        client: client.clone(),
                        over,
                        bucket,
                        gate: aws.in_flight().clone(),
                    },
                )
            })
            .collect();
        Session {
            account,
            settings,
            credentials,
            iam,
            cloudtrail,
            tallies: Default::default(),
            problems: Mutex::new(Problems::default()),
            centralized_root: aws.root_credentials_managed() && !account_is_management,
            partition,
        }
    }

    /// Whether the organization manages this account's root credentials centrally: then root MFA is not
    /// a finding. Never the management account's.
    pub fn centralized_root(&self) -> bool {
        self.centralized_root
    }

    /// The AWS partition of the run (`aws`, `aws-cn`, `aws-us-gov`).
    pub fn partition(&self) -> &'static str {
        self.partition
    }

    pub fn account(&self) -> &Account {
        &self.account
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Assume the role, retrying throttles and transient faults but not denials.
    pub async fn assume(&self) -> Result<(), Failure> {
        self.credentials.choose().await
    }

    /// The role the account was audited with (its name), `caller` for the caller's own credentials, or
    /// empty when none worked.
    pub fn role_used(&self) -> String {
        self.credentials.used()
    }

    /// The account's IAM API, its calls counted in the IAM part.
    pub fn iam(&self) -> IamApi<'_> {
        Api {
            session: self,
            part: Part::Iam,
            paced: &self.iam,
        }
    }

    /// The account's CloudTrail API in each configured region.
    pub fn cloudtrail(&self) -> impl Iterator<Item = (&str, CloudTrailApi<'_>)> + '_ {
        self.cloudtrail.iter().map(move |(region, paced)| {
            (
                region.as_str(),
                Api {
                    session: self,
                    part: Part::CloudTrail,
                    paced,
                },
            )
        })
    }

    /// Record a failure of a part that is not a failed call (a malformed answer, a stuck listing).
    pub fn fail(&self, part: Part, action: &str, f: &Failure) {
        self.tallies[part as usize]
            .failed
            .fetch_add(1, Ordering::Relaxed);
        self.problem(action, f);
    }

    /// The part has run to its end.
    pub fn mark_finished(&self, part: Part) {
        self.tallies[part as usize]
            .finished
            .store(true, Ordering::Relaxed);
    }

    pub fn finished(&self, part: Part) -> bool {
        self.tallies[part as usize].finished.load(Ordering::Relaxed)
    }

    /// The actions of the part's calls under way, `, `-joined (empty when none is).
    pub fn actions_under_way(&self, part: Part) -> String {
        self.tallies[part as usize]
            .under_way
            .lock()
            .expect("under way")
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(a, _)| a.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Record a problem of the account that belongs to no part (the run was interrupted).
    pub fn problem(&self, action: &str, f: &Failure) {
        let mut p = self.problems.lock().expect("problems lock");
        p.total += 1;
        if !p
            .distinct
            .iter()
            .any(|(a, c, _)| a == action && *c == f.code)
        {
            p.distinct
                .push((action.to_string(), f.code.clone(), f.message.clone()));
        }
        tracing::debug!(account = %self.account.id, action, error = %f, "call failed");
    }

    /// How far a part got: from whether it read anything and whether anything failed.
    pub fn status(&self, part: Part) -> PartStatus {
        let t = &self.tallies[part as usize];
        part_status(
            t.ok.load(Ordering::Relaxed),
            t.failed.load(Ordering::Relaxed),
        )
    }

    /// `Code: message (action)` of each distinct failure, ` | `-joined, for the accounts report.
    pub fn error_cell(&self) -> String {
        let p = self.problems.lock().expect("problems lock");
        let mut parts: Vec<String> = p
            .distinct
            .iter()
            .take(MAX_ERRORS_SHOWN)
            .map(|(action, code, message)| {
                let f = Failure::new(code.clone(), message);
                let base = if message.is_empty() {
                    format!("{code} ({action})")
                } else {
                    format!("{code}: {message} ({action})")
                };
                match crate::retry::fix(action, &f) {
                    Some(fix) => format!("{base}; {fix}"),
                    None => base,
                }
            })
            .collect();
        let shown: u64 = p.distinct.len().min(MAX_ERRORS_SHOWN) as u64;
        if p.total > shown {
            parts.push(format!("{} failed calls in all", p.total));
        }
        parts.join(" | ")
    }
}

/// One service of one account, as the parts call it.
pub struct Api<'s, C, O> {
    session: &'s Session,
    part: Part,
    paced: &'s Paced<C, O>,
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

    /// `call`, where `NoSuchEntity` means `what` (a user, a key) was deleted during the audit: a normal
    /// race, recorded as a `Deleted` note (not a failure), and `Ok(None)`.
    pub async fn call_unless_deleted<T, E, F, Fut>(
        &self,
        action: &str,
        what: &str,
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
                        format!("{what} was deleted during the audit (a note, not a failure)"),
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
        let r = retry_step(s.initial_backoff, s.max_backoff, OUTER_ROUNDS, || {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_status_from_counts() {
        assert_eq!(part_status(3, 0), PartStatus::Ok);
        assert_eq!(part_status(0, 0), PartStatus::Ok);
        assert_eq!(part_status(0, 1), PartStatus::Failed);
        assert_eq!(part_status(2, 1), PartStatus::Partial);
    }

    #[test]
    fn credentials_refresh_before_expiry() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let c = Credentials::new(
            "AKID",
            "secret",
            Some("token".into()),
            Some(t0 + Duration::from_secs(3600)),
            "test",
        );
        assert!(fresh(&c, t0, t0 + Duration::from_secs(3000)));
        // Within five minutes of expiry: refresh.
        assert!(!fresh(&c, t0, t0 + Duration::from_secs(3301)));
        // A 60-second session is refreshed in its last 12 seconds.
        let short = Credentials::new(
            "AKID",
            "secret",
            None,
            Some(t0 + Duration::from_secs(60)),
            "test",
        );
        assert!(fresh(&short, t0, t0 + Duration::from_secs(47)));
        assert!(!fresh(&short, t0, t0 + Duration::from_secs(49)));
    }
}
