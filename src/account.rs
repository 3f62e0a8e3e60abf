//! One member account's audit: assume the role, then run the IAM inventory (`iam`) and the CloudTrail
//! lookups (`cloudtrail`) side by side, each under the account's own token buckets. Rows go straight to
//! the writer as they are read; the account's closing `AccountRow` (status, counts, errors) goes last, so
//! the writer can flush the account as a whole. A failure here is data in that row, never an `Err`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use backon::{ExponentialBuilder, Retryable};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clients::{AccountCredentials, Aws};
use crate::config::Settings;
use crate::org::Account;
use crate::report::{AccountRow, AuditStatus, PartStatus, Record};
use crate::retry::{classify, is_expired_token, Failure, Retry};

/// At most this many distinct errors are spelled out in an account's `error` cell.
const MAX_ERRORS_SHOWN: usize = 5;

/// Everything the IAM and CloudTrail parts of one account share.
pub struct AccountCtx {
    pub settings: Arc<Settings>,
    pub account: Account,
    pub credentials: Arc<AccountCredentials>,
    pub tx: mpsc::Sender<Record>,
    pub users: AtomicU64,
    pub keys: AtomicU64,
    pub events: AtomicU64,
    problems: Mutex<Problems>,
}

#[derive(Default)]
struct Problems {
    /// Distinct `action Code: message` lines, in the order first seen.
    distinct: Vec<(String, String, String)>,
    total: u64,
}

impl AccountCtx {
    /// Record a failed call. Distinct (action, code) pairs are kept; repeats are only counted.
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

    fn error_cell(&self) -> String {
        let p = self.problems.lock().expect("problems lock");
        let mut parts: Vec<String> = p
            .distinct
            .iter()
            .take(MAX_ERRORS_SHOWN)
            .map(|(action, code, message)| {
                if message.is_empty() {
                    format!("{code} ({action})")
                } else {
                    format!("{code}: {message} ({action})")
                }
            })
            .collect();
        let shown: u64 = p.distinct.len().min(MAX_ERRORS_SHOWN) as u64;
        if p.total > shown {
            parts.push(format!("{} failed calls in all", p.total));
        }
        parts.join(" | ")
    }

    /// Send a row to the writer. `false` when the writer is gone (it failed; the run is ending).
    pub async fn send(&self, record: Record) -> bool {
        self.tx.send(record).await.is_ok()
    }

    /// One AWS call of this account: send (every attempt waits on the account's bucket inside its HTTP
    /// client, see `limits`; the SDK's adaptive retries run inside `f`). After an `ExpiredToken`, refresh
    /// the credentials and call again. A call still throttled or failing transiently after all the SDK's
    /// attempts gets up to `OUTER_ROUNDS` more rounds after a backoff: an auditor would rather wait than
    /// report a row as lost.
    pub async fn call<T, E, F, Fut>(&self, mut f: F) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut refreshed = 0;
        let mut rounds = 0;
        let mut backoff = self.settings.initial_backoff;
        loop {
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let failure = Failure::from_sdk(&e);
                    if is_expired_token(&failure) && refreshed < 2 {
                        refreshed += 1;
                        tracing::debug!(account = %self.account.id, "session expired; assuming the role again");
                        self.credentials.invalidate().await;
                        continue;
                    }
                    if classify(&failure) != Retry::Permanent && rounds < OUTER_ROUNDS {
                        rounds += 1;
                        let jitter = rand_fraction();
                        let wait = backoff.mul_f64(0.5 + jitter);
                        tracing::debug!(account = %self.account.id, error = %failure, ?wait, "retrying after the SDK's attempts");
                        tokio::time::sleep(wait).await;
                        backoff = (backoff * 2).min(self.settings.max_backoff);
                        continue;
                    }
                    return Err(failure);
                }
            }
        }
    }
}

/// Extra rounds of SDK attempts for a throttled or transiently failing call.
const OUTER_ROUNDS: u32 = 5;

/// A fraction in [0, 1) for jitter, without a RNG dependency in the library.
fn rand_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// The status of a part from whether it read anything and whether anything failed.
pub fn part_status(succeeded_calls: u64, failed_calls: u64) -> PartStatus {
    match (succeeded_calls, failed_calls) {
        (_, 0) => PartStatus::Ok,
        (0, _) => PartStatus::Failed,
        _ => PartStatus::Partial,
    }
}

/// The account's closing row when it could not be audited at all.
pub fn skipped_row(account: &Account, status: AuditStatus, error: String) -> AccountRow {
    AccountRow {
        account_id: account.id.clone(),
        account_name: account.name.clone(),
        account_status: account.status.clone(),
        audit_status: status,
        iam_status: PartStatus::NotRun,
        cloudtrail_status: PartStatus::NotRun,
        users: 0,
        keys: 0,
        events: 0,
        error,
        duration_s: 0.0,
    }
}

/// Assume the role, retrying throttles and transient faults (backon) but not denials.
async fn assume(credentials: &AccountCredentials) -> Result<(), Failure> {
    (|| async { credentials.get().await.map(|_| ()) })
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(std::time::Duration::from_millis(500))
                .with_max_delay(std::time::Duration::from_secs(20))
                .with_max_times(4)
                .with_jitter(),
        )
        .when(|f: &Failure| classify(f) != Retry::Permanent)
        .await
}

/// Audit one ACTIVE account and send its rows, then its closing row. Returns the closing row too.
pub async fn audit_account(
    aws: &Aws,
    settings: Arc<Settings>,
    account: Account,
    tx: mpsc::Sender<Record>,
    cancel: CancellationToken,
) -> AccountRow {
    let started = Instant::now();
    let clients = aws.account(&settings, &account.id).await;
    let role_arn = settings.role_arn(&account.id, aws.partition());
    let assumed = tokio::select! {
        r = assume(&clients.credentials) => r,
        _ = cancel.cancelled() => Err(Failure::new("Cancelled", "interrupted before the role was assumed")),
    };
    if let Err(f) = assumed {
        let row = AccountRow {
            duration_s: started.elapsed().as_secs_f64(),
            ..skipped_row(
                &account,
                AuditStatus::Skipped,
                format!("{f} (sts:AssumeRole {role_arn})"),
            )
        };
        let _ = tx.send(Record::Account(row.clone())).await;
        return row;
    }

    let ctx = Arc::new(AccountCtx {
        settings: settings.clone(),
        account: account.clone(),
        credentials: clients.credentials.clone(),
        tx: tx.clone(),
        users: AtomicU64::new(0),
        keys: AtomicU64::new(0),
        events: AtomicU64::new(0),
        problems: Mutex::new(Problems::default()),
    });
    let work = async {
        tokio::join!(
            crate::iam::inventory(&ctx, &clients.iam),
            crate::cloudtrail::lookup(&ctx, &clients.cloudtrail),
        )
    };
    let (iam_status, cloudtrail_status, cancelled) = tokio::select! {
        (i, c) = work => (i, c, false),
        _ = cancel.cancelled() => (PartStatus::Partial, PartStatus::Partial, true),
    };
    if cancelled {
        ctx.problem(
            "iam-audit",
            &Failure::new(
                "Cancelled",
                "interrupted by the user before the account was finished",
            ),
        );
    }
    let audit_status = if iam_status == PartStatus::Ok && cloudtrail_status == PartStatus::Ok {
        AuditStatus::Audited
    } else {
        AuditStatus::Partial
    };
    let row = AccountRow {
        account_id: account.id.clone(),
        account_name: account.name.clone(),
        account_status: account.status.clone(),
        audit_status,
        iam_status,
        cloudtrail_status,
        users: ctx.users.load(Ordering::Relaxed),
        keys: ctx.keys.load(Ordering::Relaxed),
        events: ctx.events.load(Ordering::Relaxed),
        error: ctx.error_cell(),
        duration_s: started.elapsed().as_secs_f64(),
    };
    let _ = tx.send(Record::Account(row.clone())).await;
    row
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
