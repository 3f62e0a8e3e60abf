//! One member account's audit: assume the role, then run the IAM inventory (`iam`) and the CloudTrail
//! lookups (`cloudtrail`) side by side, each under the account's own token buckets. Rows go straight to
//! the writer as they are read; the account's closing `AccountRow` (status, counts, errors) goes last, so
//! the writer can flush the account as a whole. A failure here is data in that row, never an `Err`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clients::{AccountCredentials, Aws};
use crate::config::Settings;
use crate::org::Account;
use crate::report::{AccountRow, AuditStatus, PartStatus, Record};
use crate::retry::{is_expired_token, retry_step, Failure};

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

    /// One AWS call of this account. Every attempt waits on the account's bucket inside its HTTP client
    /// (see `limits`) and the SDK's adaptive retries run inside `f`. A call still throttled or failing
    /// transiently after all of them gets up to `OUTER_ROUNDS` more rounds after a backoff: an auditor
    /// would rather wait than report a row as lost.
    pub async fn call<T, E, F, Fut>(&self, f: F) -> Result<T, Failure>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let s = &self.settings;
        let f = &f;
        retry_step(s.initial_backoff, s.max_backoff, OUTER_ROUNDS, || {
            self.call_fresh(f)
        })
        .await
    }

    /// Send `f`; after an `ExpiredToken` (the session ended under us), assume the role again and resend.
    async fn call_fresh<T, E, F, Fut>(&self, f: &F) -> Result<T, Failure>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        for _ in 0..2 {
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let failure = Failure::from_sdk(&e);
                    if !is_expired_token(&failure) {
                        return Err(failure);
                    }
                    tracing::debug!(account = %self.account.id, "session expired; assuming the role again");
                    self.credentials.invalidate().await;
                }
            }
        }
        f().await.map_err(|e| Failure::from_sdk(&e))
    }
}

/// Extra rounds of SDK attempts for a throttled or transiently failing call.
const OUTER_ROUNDS: usize = 5;

/// The calls of one part of an account's audit (IAM, or CloudTrail) that succeeded and failed; the
/// failures are also recorded as the account's problems.
#[derive(Default)]
pub struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
}

impl Tally {
    pub fn ok(&self) {
        self.ok.fetch_add(1, Ordering::Relaxed);
    }

    pub fn fail(&self, ctx: &AccountCtx, action: &str, f: &Failure) {
        ctx.problem(action, f);
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Count a call's result and pass it on.
    pub fn record<T>(
        &self,
        ctx: &AccountCtx,
        action: &str,
        r: Result<T, Failure>,
    ) -> Result<T, Failure> {
        match &r {
            Ok(_) => self.ok(),
            Err(f) => self.fail(ctx, action, f),
        }
        r
    }

    pub fn status(&self) -> PartStatus {
        part_status(
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// The status of a part from whether it read anything and whether anything failed.
fn part_status(succeeded_calls: u64, failed_calls: u64) -> PartStatus {
    match (succeeded_calls, failed_calls) {
        (_, 0) => PartStatus::Ok,
        (0, _) => PartStatus::Failed,
        _ => PartStatus::Partial,
    }
}

/// The account's closing row when it could not be audited at all.
pub fn unaudited_row(account: &Account, status: AuditStatus, error: String) -> AccountRow {
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

/// Assume the role, retrying throttles and transient faults but not denials.
async fn assume(credentials: &AccountCredentials) -> Result<(), Failure> {
    let (min, max) = (Duration::from_millis(500), Duration::from_secs(20));
    retry_step(min, max, 4, || async {
        credentials.get().await.map(|_| ())
    })
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
            ..unaudited_row(
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
