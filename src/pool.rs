//! The fan-out over the organization's accounts: at most `concurrency` accounts audited at once, each in
//! its own task, the next started the moment one ends. The pool owns the run's stopping rules and the
//! accounts' closing rows: after a signal (`Shutdown::stop_starting`) accounts not yet started are closed
//! as `skipped`, and running ones go on until they finish or the grace period ends (`Shutdown::abort`,
//! then `partial`); once the writer has died (its channel is closed) no account is started, because
//! nothing it read could be written. Every account gets exactly one closing row, whatever happens to its
//! task: a panic is reported as an internal error with the counts of what was sent, never as a missing
//! account. What auditing one account means is the caller's (`run` passes `account::audit`).

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::observe::{Observer, UserCounts};
use crate::org::Account;
use crate::record::{AccountRow, AuditStatus, Record};
use crate::sink::Sink;
use crate::stats::CallStats;

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

/// Audit every account `accounts` yields, as it comes, with `audit` (non-ACTIVE ones are only reported),
/// send each account's closing row to the writer after its other rows, and tell the observer as each
/// closes, in completion order. `audit(account, sink, abort)` sends the account's rows through `sink` and
/// returns its closing row. A slot is taken from the stream the moment one frees: no account waits for
/// a wave of others.
pub async fn run<S, A, Fut>(
    accounts: S,
    concurrency: usize,
    tx: mpsc::Sender<Record>,
    shutdown: Shutdown,
    observer: Arc<dyn Observer>,
    stats: Arc<CallStats>,
    audit: A,
) where
    S: futures::Stream<Item = Account>,
    A: Fn(Account, Arc<Sink>, CancellationToken) -> Fut,
    Fut: Future<Output = AccountRow> + Send + 'static,
{
    let results = accounts
        .map(|a| {
            let unstarted = if !a.is_active() {
                // Reported, never audited.
                Some((AuditStatus::NotActive, ""))
            } else if tx.is_closed() {
                Some((
                    AuditStatus::Skipped,
                    "WriterFailed: the reports could not be written; no more accounts are started",
                ))
            } else if shutdown.stop_starting.is_cancelled() {
                Some((
                    AuditStatus::Skipped,
                    "Cancelled: the run was interrupted before the account was started",
                ))
            } else {
                None
            };
            let started = match unstarted {
                Some(why) => Err(why),
                None => {
                    let users = Arc::new(UserCounts::default());
                    observer.account_started(&a.id, &a.name, &users);
                    let sink = Arc::new(Sink::watched(tx.clone(), users));
                    let task =
                        tokio::spawn(audit(a.clone(), sink.clone(), shutdown.abort.clone()));
                    Ok((sink, task))
                }
            };
            async move {
                let (sink, task) = match started {
                    Ok(started) => started,
                    Err((status, reason)) => return a.unaudited(status, reason.into()),
                };
                match task.await {
                    Ok(row) => row,
                    Err(e) => {
                        // A bug must not make an account vanish, nor hide what it wrote.
                        tracing::error!(account = %a.id, "the account's audit task failed: {e}");
                        let (users, keys, events) = sink.counts();
                        AccountRow {
                            users,
                            keys,
                            events,
                            flag_counts: sink.flag_counts(),
                            events_other_sources: sink.other_sources(),
                            ..a.unaudited(
                                AuditStatus::Partial,
                                format!("InternalError: the audit task failed: {e}; the rows counted here were written"),
                            )
                        }
                    }
                }
            }
        })
        .buffer_unordered(concurrency);
    let mut results = std::pin::pin!(results);
    while let Some(row) = results.next().await {
        observer.account_finished(&row, stats.snapshot());
        // Once the writer is gone the send fails; the rows are still counted for the summary.
        let _ = tx.send(Record::Account(row)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{EventRow, PartStatus};

    fn account(n: u8) -> Account {
        Account {
            id: format!("{n:012}"),
            name: format!("acct-{n}"),
            status: "ACTIVE".into(),
            ..Account::default()
        }
    }

    fn event(account: &str) -> Record {
        Record::Event(EventRow {
            event_time: None,
            event_name: "CreateUser".into(),
            username: "admin".into(),
            account_id: account.into(),
            account_name: String::new(),
            resources: String::new(),
            region: "us-east-1".into(),
            event_id: "e".into(),
            access_key_id: String::new(),
            source_ip_address: String::new(),
            event_source: "iam.amazonaws.com".into(),
        })
    }

    // Story: an account whose task panics after sending two rows still gets its closing row, partial,
    // naming the failure and counting the two rows that were written; the other account is whole.
    #[tokio::test]
    async fn a_panicking_account_is_closed_with_what_it_wrote() {
        let (tx, mut rx) = mpsc::channel(64);
        let audit = |a: Account, sink: Arc<Sink>, _abort: CancellationToken| async move {
            sink.send(event(&a.id)).await;
            sink.send(event(&a.id)).await;
            if a.id.ends_with('2') {
                panic!("a bug");
            }
            AccountRow {
                events: sink.counts().2,
                iam_status: PartStatus::Ok,
                cloudtrail_status: PartStatus::Ok,
                ..a.unaudited(AuditStatus::Audited, String::new())
            }
        };
        run(
            futures::stream::iter(vec![account(1), account(2)]),
            2,
            tx,
            Shutdown::default(),
            Arc::new(crate::observe::Silent),
            Arc::default(),
            audit,
        )
        .await;
        let mut closing = Vec::new();
        while let Some(r) = rx.recv().await {
            if let Record::Account(a) = r {
                closing.push(a);
            }
        }
        closing.sort_by(|a, b| a.account_id.cmp(&b.account_id));
        assert_eq!(closing.len(), 2);
        assert_eq!(closing[0].audit_status, AuditStatus::Audited);
        let broken = &closing[1];
        assert_eq!(
            (broken.audit_status, broken.events),
            (AuditStatus::Partial, 2)
        );
        assert!(
            broken
                .error
                .starts_with("InternalError: the audit task failed: task")
                && broken.error.contains("panicked"),
            "{}",
            broken.error
        );
    }
}
