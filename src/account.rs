//! One member account's audit: open its session (assume the role), then run the IAM inventory (`iam`) and
//! the CloudTrail lookups (`cloudtrail`) side by side through it, within the account's budget. Rows go to
//! the writer as they are read; what this returns is the account's closing `AccountRow` (status, counts,
//! errors), which the pool sends last so the writer can flush the account as a whole. A failure here is
//! data in that row, never an `Err`.

use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::aws::Aws;
use crate::config::Settings;
use crate::exceptions::Exceptions;
use crate::iam::IamOutcome;
use crate::ledger::KeyLedger;
use crate::org::Account;
use crate::record::{AccountRow, AuditStatus, PartStatus, Record};
use crate::retry::Failure;
use crate::session::{Part, Session};
use crate::sink::Sink;

/// Audit one ACTIVE account: its rows go to `sink` as they are read; returns its closing row (the pool
/// sends it after them).
pub async fn audit(
    aws: &Aws,
    settings: Arc<Settings>,
    account: Account,
    exceptions: Option<Arc<Exceptions>>,
    sink: &Sink,
    cancel: CancellationToken,
) -> AccountRow {
    let started = Instant::now();
    let root_too = RootAlone {
        aws,
        settings: settings.clone(),
        account: account.clone(),
        exceptions: exceptions.clone(),
    };
    let session = Session::new(aws, settings, account).with_exceptions(exceptions);
    let assumed = tokio::select! {
        r = session.assume() => r,
        _ = cancel.cancelled() => Err(Failure::new("Cancelled", "interrupted before the role was assumed")),
    };
    if let Err(f) = assumed {
        let mut row = session
            .account()
            .unaudited(AuditStatus::Skipped, f.to_string());
        if f.code != "Cancelled" && root_too.wanted(false) {
            root_too.read(sink, &mut row).await;
        }
        row.duration_s = started.elapsed().as_secs_f64();
        return row;
    }

    let work = async {
        tokio::join!(
            async {
                let outcome = crate::iam::inventory(&session, sink).await;
                session.mark_finished(Part::Iam);
                outcome
            },
            async {
                crate::cloudtrail::lookup(&session, sink).await;
                session.mark_finished(Part::CloudTrail);
            },
        )
        .0
    };
    let budget = session.settings().account_budget();
    let (iam, cancelled) = tokio::select! {
        iam = work => (iam, false),
        _ = cancel.cancelled() => (IamOutcome::default(), true),
        _ = tokio::time::sleep(budget) => {
            // Each part still running is cut short during its latest call.
            for part in [Part::Iam, Part::CloudTrail] {
                if !session.finished(part) {
                    session.fail(
                        part,
                        &session.actions_under_way(part),
                        &Failure::new(
                            "Timeout",
                            format!(
                                "the account's budget of {} s ran out (--account-budget-secs)",
                                budget.as_secs()
                            ),
                        ),
                    );
                }
            }
            (IamOutcome::default(), false)
        }
    };
    let (iam_status, cloudtrail_status) = if cancelled {
        session.failure(
            "iam-audit",
            &Failure::new(
                "Cancelled",
                "the run was interrupted and its grace period ended before the account was finished",
            ),
        );
        (PartStatus::Partial, PartStatus::Partial)
    } else {
        (session.status(Part::Iam), session.status(Part::CloudTrail))
    };
    let audit_status = if iam_status == PartStatus::Ok && cloudtrail_status == PartStatus::Ok {
        AuditStatus::Audited
    } else {
        AuditStatus::Partial
    };
    // The key history: every key the window's key events name, once both parts are over.
    if let Some(ledger) = sink.published_ledger() {
        let keys_read = iam_status == PartStatus::Ok;
        let rows = ledger.history(
            &session.account().id,
            &session.account().name,
            session.settings().thresholds.short_lived_days,
            |id| {
                if sink.sent_key(id) {
                    Some(true)
                } else {
                    keys_read.then_some(false)
                }
            },
        );
        for row in rows {
            if !sink.send(Record::KeyHistory(row)).await {
                break;
            }
        }
    }
    let (users, keys, events) = sink.counts();
    let account = session.account();
    let mut row = AccountRow {
        account_id: account.id.clone(),
        account_name: account.name.clone(),
        account_status: account.status.to_string(),
        audit_status,
        iam_status,
        cloudtrail_status,
        users,
        keys,
        events,
        error: session.error_cell(),
        duration_s: started.elapsed().as_secs_f64(),
        strategy: iam.strategy,
        credential_report_time: iam.credential_report_time,
        root_access_keys: iam.root_access_keys,
        root_mfa: iam.root_mfa,
        flag_counts: sink.flag_counts(),
        events_other_sources: sink.other_sources(),
        role_used: session.role_used(),
        ou_path: account.ou_path().to_string(),
        new_findings: None,
        resolved_findings: None,
        credentials: sink.credentials(),
        ssh_keys_listed: match session.settings().keys.ssh_keys.as_str() {
            "all" => "all users",
            "console" => "console users",
            _ => "none (--ssh-keys)",
        }
        .to_string(),
        note: String::new(),
    };
    if !cancelled && root_too.wanted(true) {
        root_too.read(sink, &mut row).await;
        row.duration_s = started.elapsed().as_secs_f64();
    }
    row
}

/// An account's root user read alone, in a root session (sts:AssumeRoot): where its role could not be
/// used (`root_audit` `auto` or `assume-root`), or beside the role's audit (`assume-root`).
struct RootAlone<'a> {
    aws: &'a Aws,
    settings: Arc<Settings>,
    account: Account,
    exceptions: Option<Arc<Exceptions>>,
}

impl RootAlone<'_> {
    /// Whether to read it: a member account (the management account's root user has no root session),
    /// under `auto` where the organization manages root credentials and the role failed, under
    /// `assume-root` always.
    fn wanted(&self, role_worked: bool) -> bool {
        let mode = self.settings.keys.root_audit.as_str();
        !self.account.management
            && self.account.is_active()
            && match mode {
                "assume-root" => true,
                "auto" => !role_worked && self.aws.root_credentials_managed(),
                _ => false,
            }
    }

    /// Read the root user and say in `row` what was read and how (or why it was not).
    async fn read(&self, sink: &Sink, row: &mut AccountRow) {
        let session = Session::root(self.aws, self.settings.clone(), self.account.clone())
            .with_exceptions(self.exceptions.clone());
        let mut say = |what: String| {
            if row.error.is_empty() {
                row.error = what;
            } else {
                row.error = format!("{} | {what}", row.error);
            }
        };
        if let Err(f) = session.assume().await {
            say(format!("root user not read: {f}"));
            return;
        }
        // No CloudTrail part ran without the role: the root keys' creators are unknown.
        if sink.published_ledger().is_none() {
            let s = session.settings();
            sink.publish_ledger(KeyLedger::unread(s.start, s.end));
        }
        let outcome = crate::iam::root_session::inventory(&session, sink).await;
        session.mark_finished(Part::Iam);
        say(format!(
            "root user read through sts:AssumeRoot (IAMAuditRootUserCredentials){}",
            match session.error_cell() {
                e if e.is_empty() => String::new(),
                e => format!(": {e}"),
            }
        ));
        if row.audit_status == AuditStatus::Skipped {
            // The root user alone of the account's IAM.
            row.iam_status = PartStatus::Partial;
            row.strategy = outcome.strategy;
        }
        // The root user's rows are counted with the account's.
        (row.users, row.keys, row.events) = sink.counts();
        row.flag_counts = sink.flag_counts();
        row.root_access_keys = outcome.root_access_keys;
        row.root_mfa = outcome.root_mfa;
    }
}
