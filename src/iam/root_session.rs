//! The root user of a member account read in a root session: sts:AssumeRoot with the
//! IAMAuditRootUserCredentials task policy (centralized root access), where the audit role is missing or
//! refused (`--root-audit auto`) or in every member account (`assume-root`). The root user's own calls,
//! made without a user name, are the ones the task policy allows: GetLoginProfile, ListAccessKeys and
//! GetAccessKeyLastUsed, ListMFADevices, ListSigningCertificates and GetAccountSummary. Its row, its keys'
//! rows (with their ids and last use, which the credential report lacks) and its findings are judged as
//! any root user's, marked `assume_root`.

use crate::record::{Mfa, Password, Source};
use crate::risk::{KeyFacts, UserFacts};
use crate::session::{utc, Session};
use crate::sink::Sink;

use super::calls::{account_summary, last_used, login_profile, strongest_mfa};
use super::root::{password_of, send_root};
use super::rows::IamOutcome;

/// The root user's access keys, each with its last use; `None` when the listing failed (recorded).
async fn keys(session: &Session) -> Option<Vec<(Option<String>, KeyFacts)>> {
    let listed = session
        .iam()
        .call("iam:ListAccessKeys", |c, o| {
            c.list_access_keys().customize().config_override(o).send()
        })
        .await
        .ok()?;
    let mut keys = Vec::new();
    for k in listed.access_key_metadata() {
        let Some(id) = k.access_key_id().filter(|id| !id.is_empty()) else {
            continue;
        };
        keys.push((
            Some(id.to_string()),
            KeyFacts {
                active: k.status() == Some(&aws_sdk_iam::types::StatusType::Active),
                created: k.create_date().and_then(utc),
                last_used: last_used(session, id).await,
            },
        ));
    }
    Some(keys)
}

/// The root user's MFA devices (its strongest, and how many); unknown when the listing failed.
async fn mfa(session: &Session) -> (Mfa, Option<usize>) {
    let r = session
        .iam()
        .call("iam:ListMFADevices", |c, o| {
            c.list_mfa_devices().customize().config_override(o).send()
        })
        .await;
    match r {
        Ok(out) => {
            let devices = out.mfa_devices();
            (
                strongest_mfa(devices.iter().map(|d| d.serial_number())),
                Some(devices.len()),
            )
        }
        Err(_) => (Mfa::Unknown, None),
    }
}

/// The root user's signing certificates (X.509, for the SOAP and SimpleDB APIs of old): how many are
/// active; `None` when the listing failed.
async fn certificates(session: &Session) -> Option<usize> {
    session
        .iam()
        .call("iam:ListSigningCertificates", |c, o| {
            c.list_signing_certificates()
                .customize()
                .config_override(o)
                .send()
        })
        .await
        .ok()
        .map(|out| {
            out.certificates()
                .iter()
                .filter(|c| c.status() == &aws_sdk_iam::types::StatusType::Active)
                .count()
        })
}

/// Read and send the root user's rows; the accounts report's cells of how it went.
pub async fn inventory(session: &Session, sink: &Sink) -> IamOutcome {
    let ((password, password_set), keys, (mfa, devices), certificates, summary) = tokio::join!(
        login_profile(session, None),
        keys(session),
        mfa(session),
        certificates(session),
        account_summary(session),
    );
    let summary_says = |k: aws_sdk_iam::types::SummaryKeyType| {
        summary.as_ref().ok().and_then(|m| m.get(&k).copied())
    };
    use aws_sdk_iam::types::SummaryKeyType as K;
    // The devices listed are the root user's own; the summary says whether MFA is on when they are not.
    let mfa_active = match devices {
        Some(n) => Some(n > 0),
        None => summary_says(K::AccountMfaEnabled).map(|n| n > 0),
    };
    let password = match password {
        Password::Unknown => password_of(&summary),
        known => known,
    };
    let facts = UserFacts {
        root: true,
        created: None,
        password,
        // No call the task policy allows tells the password's last use.
        password_last_used: None,
        password_set,
        mfa_active,
        mfa,
        // Listed keys carry their own rows; a failed listing leaves the summary's count.
        active_keys_without_ids: match &keys {
            Some(_) => Some(0),
            None => summary_says(K::AccountAccessKeysPresent).map(|n| n.max(0) as u32),
        },
        centralized_root: session.centralized_root(),
        org_root_access_off: false,
    };
    let keys = keys.unwrap_or_default();
    let mut note = "read through sts:AssumeRoot (IAMAuditRootUserCredentials); the password's last use is not among what that session may read".to_string();
    match certificates {
        Some(0) => {}
        Some(n) => note.push_str(&format!("; {n} active signing certificate(s)")),
        None => {
            note.push_str("; signing certificates unknown (iam:ListSigningCertificates failed)")
        }
    }
    let (root_access_keys, root_mfa) = send_root(
        session,
        sink,
        None,
        facts,
        keys,
        devices,
        Source::AssumeRoot,
        note,
    )
    .await;
    IamOutcome {
        strategy: Some(Source::AssumeRoot),
        credential_report_time: None,
        root_access_keys,
        root_mfa,
    }
}
