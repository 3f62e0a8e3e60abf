//! The fan-out over the organization's accounts: at most `concurrency` accounts audited at once, each in
//! its own task. The pool owns the run's stopping rules: after a signal (`Shutdown::stop_starting`) accounts
//! not yet started are closed as `skipped`, and running ones go on until they finish or the grace period
//! ends (`Shutdown::abort`, then `partial`); once the writer has died (its channel is closed) no account is
//! started, because nothing it read could be written. Every account gets exactly one closing row, whatever happens
//! to its task: a panic is reported as an internal error, never as a missing account.

use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How a run is stopped early (SIGINT, SIGTERM): first no account is started, then, when the grace period
/// ends or a second signal comes, the running ones are closed as `partial`.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    pub stop_starting: CancellationToken,
    pub abort: CancellationToken,
}

impl Shutdown {
    /// Stop at once: no new account, and running ones closed now.
    pub fn now(&self) {
        self.stop_starting.cancel();
        self.abort.cancel();
    }
}

use crate::account::{self, unaudited_row};
use crate::aws::Aws;
use crate::config::Settings;
use crate::org::Account;
use crate::progress::Live;
use crate::report::{AccountRow, AuditStatus, Record};

/// Audit every account (non-ACTIVE ones are only reported) and hand each closing row to `finished` as it
/// comes, in completion order.
pub async fn run(
    aws: &Aws,
    settings: Arc<Settings>,
    accounts: Vec<Account>,
    tx: mpsc::Sender<Record>,
    shutdown: Shutdown,
    live: Arc<Live>,
    mut finished: impl FnMut(&AccountRow),
) {
    let (active, inactive): (Vec<Account>, Vec<Account>) =
        accounts.into_iter().partition(Account::is_active);
    // Accounts that are not ACTIVE are reported, never audited.
    for a in &inactive {
        let row = unaudited_row(a, AuditStatus::NotActive, String::new());
        finished(&row);
        if tx.send(Record::Account(row)).await.is_err() {
            break;
        }
    }
    let mut results = futures::stream::iter(active)
        .map(|a| {
            let (aws, settings, tx, shutdown, live) = (
                aws.clone(),
                settings.clone(),
                tx.clone(),
                shutdown.clone(),
                live.clone(),
            );
            let account = a.clone();
            let tx_lost = tx.clone();
            let handle = tokio::spawn(async move {
                let unstarted = if tx.is_closed() {
                    Some("WriterFailed: the reports could not be written; no more accounts are started")
                } else if shutdown.stop_starting.is_cancelled() {
                    Some("Cancelled: the run was interrupted before the account was started")
                } else {
                    None
                };
                if let Some(reason) = unstarted {
                    let row = unaudited_row(&a, AuditStatus::Skipped, reason.into());
                    let _ = tx.send(Record::Account(row.clone())).await;
                    return row;
                }
                account::audit(&aws, settings, a, tx, shutdown.abort, &live).await
            });
            async move {
                match handle.await {
                    Ok(row) => row,
                    Err(e) => {
                        // A bug must not make an account vanish: report it with what went wrong.
                        tracing::error!(account = %account.id, "the account's audit task failed: {e}");
                        let row = unaudited_row(
                            &account,
                            AuditStatus::Partial,
                            format!("InternalError: the audit task failed: {e}"),
                        );
                        let _ = tx_lost.send(Record::Account(row.clone())).await;
                        row
                    }
                }
            }
        })
        .buffer_unordered(settings.concurrency);
    while let Some(row) = results.next().await {
        finished(&row);
    }
}
