//! The IAM inventory of one account, by the configured strategy (design §2, `--strategy`):
//!
//! - `api` (`api`): per-user calls; 3 + keys calls per user.
//! - `credential_report` (`report`, parsed in `report_csv`): the account's credential report, plus
//!   ListAccessKeys for users with keys. About one call per user.
//! - `auto`: the report where the role may generate it, `api` where it may not (said in the accounts
//!   report).
//!
//! Either way ListVirtualMFADevices and GetAccountSummary, once per account (`calls`), tell the root user's
//! state and MFA types (`root`), and `credentials` reads the users' other long-term credentials
//! (service-specific credentials once per account; signing certificates and SSH keys per user), and
//! `quarantine` which users AWS quarantined (once per account with users, after the account summary).
//! Every call goes through the account's session, paced by its IAM bucket; each user's rows are built and
//! judged in `rows` and sent as soon as they are complete.
//!
//! `root_session` reads a member account's root user alone, in a root session (sts:AssumeRoot).
//!
//! Inside, the arrows go one way: this file → `api`, `report`, `root_session` → `root` → `rows` → `calls`;
//! `credentials` → `quarantine` → `calls`.

mod api;
mod calls;
mod credentials;
mod quarantine;
mod report;
mod report_csv;
mod root;
pub mod root_session;
mod rows;

pub use calls::{mfa_type, strongest_mfa};
pub use rows::IamOutcome;

use crate::config::Strategy;
use crate::record::Source;
use crate::retry::is_denied;
use crate::session::{Part, Session};
use crate::sink::Sink;

use calls::{account_summary, list_virtual_mfa, note};
use credentials::Others;

/// Run the IAM inventory of one account; rows go to the writer as they are built.
pub async fn inventory(session: &Session, sink: &Sink) -> IamOutcome {
    let strategy = session.settings().strategy;
    let report = async {
        if strategy == Strategy::Api {
            None
        } else {
            Some(report::fetch(session).await)
        }
    };
    // The summary says whether the account has users to look for in the quarantine policies.
    let summary = async {
        let summary = account_summary(session).await;
        let quarantined = quarantine::read(session, &summary).await;
        (summary, quarantined)
    };
    let (report, virtual_mfa, (summary, quarantined), service) = tokio::join!(
        report,
        list_virtual_mfa(session),
        summary,
        Others::read_service(session)
    );
    let others = Others::new(service, quarantined);
    match report {
        Some(Ok(report)) => {
            return report::inventory(session, sink, report, &summary, &virtual_mfa, &others).await
        }
        Some(Err(f)) if strategy == Strategy::Auto => {
            let why = if is_denied(&f.failure)
                || f.failure.code == crate::limits::optional::NOT_ASKED
            {
                "the role may not read the credential report; audited with per-user calls (--strategy api)"
            } else {
                "the credential report could not be read; audited with per-user calls (--strategy api)"
            };
            note(session, f.action(), &f.failure, why);
        }
        Some(Err(f)) => {
            session.fail(Part::Iam, f.action(), &f.failure);
            return IamOutcome {
                strategy: Some(Source::CredentialReport),
                credential_report_time: None,
                root_access_keys: "unknown".into(),
                root_mfa: "unknown".into(),
            };
        }
        None => {}
    }
    api::inventory(session, sink, &summary, &virtual_mfa, &others).await
}
