//! One member account's session, below the parts of its audit (`iam`, `cloudtrail`): the account's
//! assumed-role credentials (assumed through the run's one STS client, cached and renewed before they
//! expire), its paced IAM and CloudTrail clients (each with its own token bucket and retry partition), the
//! `call` every AWS request of the account goes through (pacing, retries, ExpiredToken refresh), and the
//! tally of what succeeded and what failed, which becomes the account's row in the accounts report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_smithy_runtime::client::identity::IdentityCache;
use aws_smithy_runtime::client::retries::{RetryPartition, TokenBucket};

mod api;
mod credentials;

pub use api::Api;
pub use credentials::{AccountCredentials, CallerFallback};

use crate::aws::{Aws, RootAccess};
use crate::config::Settings;
use crate::exceptions::Exceptions;
use crate::limits::optional::Learner;
use crate::limits::{Bucket, InFlight, PacedHttpClient, ReadyEstimate};
use crate::org::Account;
use crate::record::PartStatus;
use crate::retry::Failure;

/// A timestamp of an AWS answer as UTC.
pub fn utc(t: &aws_smithy_types::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// At most this many distinct errors are spelled out in an account's `error` cell.
const MAX_ERRORS_SHOWN: usize = 5;

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

/// What went wrong in an account: failures (what made a part `partial` or `failed`, or the account not
/// finished) and notes (an optional action refused, a user deleted during the audit: the audit went on).
#[derive(Default)]
struct Problems {
    /// Distinct failures as (action, code, message), in the order first seen.
    failures: Vec<(String, String, String)>,
    /// Distinct notes, the same way.
    notes: Vec<(String, String, String)>,
    failed_calls: u64,
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
    /// The management account of an organization without centralized root access.
    org_root_access_off: bool,
    partition: &'static str,
    /// The run's estimate of how long credential reports take.
    report_ready: Arc<ReadyEstimate>,
    /// The optional actions refused in this account, and across the run (`optional`).
    learned: Learner,
    run_learned: Arc<Learner>,
    /// The run's exceptions: break-glass users are judged, and the rows name the rules accepting them.
    exceptions: Option<Arc<Exceptions>>,
}

/// The account's own partition (from its ARN), else the run's (from its region).
fn partition_of(aws: &Aws, account: &Account) -> &'static str {
    match account.partition {
        "" => aws.partition(),
        known => known,
    }
}

impl Session {
    /// The session of one account: nothing is called yet.
    pub fn new(aws: &Aws, settings: Arc<Settings>, account: Account) -> Session {
        let partition = partition_of(aws, &account);
        let role_arns = settings.role_arns(&account.id, partition);
        let caller = (account.management && settings.keys.management_as_caller)
            .then(|| aws.caller_credentials())
            .flatten()
            .map(|provider| CallerFallback {
                provider,
                account: account.id.clone(),
                aws: aws.clone(),
            });
        let credentials = AccountCredentials::new(aws, role_arns, caller, &settings);
        Session::with_credentials(aws, settings, account, credentials, partition)
    }

    /// The session of one member account's root user through sts:AssumeRoot (centralized root access):
    /// its calls are scoped by the IAMAuditRootUserCredentials task policy. Nothing is called yet.
    pub fn root(aws: &Aws, settings: Arc<Settings>, account: Account) -> Session {
        let partition = partition_of(aws, &account);
        let credentials = AccountCredentials::root(aws, &account.id, &settings);
        Session::with_credentials(aws, settings, account, credentials, partition)
    }

    fn with_credentials(
        aws: &Aws,
        settings: Arc<Settings>,
        account: Account,
        credentials: Arc<AccountCredentials>,
        partition: &'static str,
    ) -> Session {
        // Root MFA is not a finding where the organization manages root credentials; never in the
        // management account.
        let centralized_root = aws.root_credentials_managed() && !account.management;
        let org_root_access_off = account.management && aws.root_access() == RootAccess::Off;
        let provider = credentials.provider();
        let iam_bucket = Bucket::new(settings.keys.iam_rate, settings.keys.iam_burst);
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
                let bucket = Bucket::new(
                    settings.keys.cloudtrail_rate,
                    settings.keys.cloudtrail_burst,
                );
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
            centralized_root,
            org_root_access_off,
            partition,
            report_ready: aws.report_ready().clone(),
            learned: Learner::new(1),
            run_learned: aws.optional().clone(),
            exceptions: None,
        }
    }

    /// Whether this (role) session leaves the root user to a root session of its own (`root_audit =
    /// "assume-root"`, a member account).
    pub fn root_read_apart(&self) -> bool {
        self.settings.keys.root_audit == "assume-root" && !self.account.management
    }

    /// The session with the run's exceptions (docs/exceptions.md).
    pub fn with_exceptions(mut self, exceptions: Option<Arc<Exceptions>>) -> Session {
        self.exceptions = exceptions;
        self
    }

    /// The run's exceptions, if it has any.
    pub fn exceptions(&self) -> Option<&Exceptions> {
        self.exceptions.as_deref()
    }

    /// How long credential reports take in this run, learned from every account's answers.
    pub fn report_ready(&self) -> &ReadyEstimate {
        &self.report_ready
    }

    /// Whether the organization manages this account's root credentials centrally: then root MFA is not
    /// a finding. Never the management account's.
    /// Whether this is the management account of an organization known not to manage its members' root
    /// credentials centrally (CIS v7.0 2.1.1).
    pub fn org_root_access_off(&self) -> bool {
        self.org_root_access_off
    }

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
    /// The account's credentials (for the calls made without an SDK client: the Security Hub probe).
    pub fn credentials(&self) -> &Arc<AccountCredentials> {
        &self.credentials
    }

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
        self.failure(action, f);
    }

    /// Record what left the account unfinished outside its parts' calls (the run was interrupted): it
    /// leads the account's `error` cell, as a failed call does.
    pub fn failure(&self, action: &str, f: &Failure) {
        let mut p = self.problems.lock().expect("problems lock");
        p.failed_calls += 1;
        Problems::add(&mut p.failures, action, f);
        tracing::debug!(account = %self.account.id, action, error = %f, "call failed");
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

    /// Record a note of the account: something the audit went on without (an optional action refused),
    /// or a normal race (a user deleted during the audit). It follows the failures in the `error` cell.
    pub fn problem(&self, action: &str, f: &Failure) {
        let mut p = self.problems.lock().expect("problems lock");
        Problems::add(&mut p.notes, action, f);
        tracing::debug!(account = %self.account.id, action, note = %f, "noted");
    }

    /// How far a part got: from whether it read anything and whether anything failed.
    pub fn status(&self, part: Part) -> PartStatus {
        let t = &self.tallies[part as usize];
        part_status(
            t.ok.load(Ordering::Relaxed),
            t.failed.load(Ordering::Relaxed),
        )
    }

    /// The accounts report's `error` cell: first what made the account partial (each distinct failure as
    /// `Code: message (action)`, at most `MAX_ERRORS_SHOWN`, and how many failed calls in all), then the
    /// notes (the optional actions the audit went on without, with their fix), ` | `-joined. A failure
    /// is never pushed out of the cell by notes.
    pub fn error_cell(&self) -> String {
        let p = self.problems.lock().expect("problems lock");
        let entry = |(action, code, message): &(String, String, String)| {
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
        };
        let mut parts: Vec<String> = p
            .failures
            .iter()
            .take(MAX_ERRORS_SHOWN)
            .map(entry)
            .collect();
        let shown = p.failures.len().min(MAX_ERRORS_SHOWN) as u64;
        if p.failed_calls > shown {
            parts.push(format!("{} failed calls in all", p.failed_calls));
        }
        parts.extend(p.notes.iter().take(MAX_ERRORS_SHOWN).map(entry));
        if p.notes.len() > MAX_ERRORS_SHOWN {
            parts.push(format!("{} notes in all", p.notes.len()));
        }
        parts.join(" | ")
    }
}

impl Problems {
    /// Add (action, code, message) unless the same action already failed with the same code.
    fn add(list: &mut Vec<(String, String, String)>, action: &str, f: &Failure) {
        if !list.iter().any(|(a, c, _)| a == action && *c == f.code) {
            list.push((action.to_string(), f.code.clone(), f.message.clone()));
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
}
