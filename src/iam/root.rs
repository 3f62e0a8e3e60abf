//! The root user's row, under either strategy: from the credential report's `<root_account>` row, or
//! from GetAccountSummary (keys present, MFA enabled) and the virtual MFA devices when the report is not
//! read or has no root row. Also the accounts report's two root cells.

use crate::record::{Mfa, Password, Source, ROOT_USER};
use crate::risk::{KeyFacts, UserFacts};
use crate::session::Session;
use crate::sink::Sink;

use super::calls::{Summary, VirtualMfa, ROOT_OWNER};
use super::report_csv::Row;
use super::rows::{send_user, Audited};

/// The strongest MFA of a user whose report says `mfa_active`, from the virtual devices: a user with
/// none of them has a hardware or FIDO device.
fn mfa_from_virtual(active: bool, virtual_devices: Option<usize>) -> Mfa {
    match (active, virtual_devices) {
        (false, _) => Mfa::None,
        (true, Some(0)) => Mfa::Hardware,
        (true, Some(_)) => Mfa::Virtual,
        (true, None) => Mfa::Unknown,
    }
}

pub(crate) const CENTRALIZED_NOTE: &str = "root credentials are managed by the organization (RootCredentialsManagement): root MFA is a finding only while the root user has a password or an access key";

/// Whether the root user has a password, from GetAccountSummary's `AccountPasswordPresent`.
pub(crate) fn password_of(summary: &Summary) -> Password {
    use aws_sdk_iam::types::SummaryKeyType as K;
    match summary
        .as_ref()
        .ok()
        .and_then(|m| m.get(&K::AccountPasswordPresent).copied())
    {
        Some(0) => Password::NotConfigured,
        Some(_) => Password::Configured,
        None => Password::Unknown,
    }
}

/// `root_access_keys` and `root_mfa` of the accounts report from a root row's facts.
pub(crate) fn root_cells(
    facts: &UserFacts,
    keys: &[(Option<String>, KeyFacts)],
) -> (String, String) {
    let access = if keys.is_empty() {
        match facts.active_keys_without_ids {
            Some(0) => "0".to_string(),
            Some(_) => "present".to_string(),
            None => "unknown".to_string(),
        }
    } else {
        keys.iter().filter(|(_, k)| k.active).count().to_string()
    };
    let mfa = match facts.mfa_active {
        None => "unknown".to_string(),
        Some(_) => facts.mfa.as_str().to_string(),
    };
    (access, mfa)
}

/// The root user from GetAccountSummary (keys present, MFA enabled) and the virtual MFA list: under `api`,
/// and under the report when it has no root row.
pub(crate) async fn from_summary(
    session: &Session,
    sink: &Sink,
    summary: &Summary,
    virtual_mfa: &VirtualMfa,
    source: Source,
) -> (String, String) {
    if session.root_read_apart() {
        return (String::new(), String::new());
    }
    let centralized = session.centralized_root();
    let (facts, note_text) = match summary {
        Ok(map) => {
            use aws_sdk_iam::types::SummaryKeyType as K;
            let get = |k: K| map.get(&k).copied();
            let mfa_active = get(K::AccountMfaEnabled).map(|n| n > 0);
            let virtual_devices = virtual_mfa
                .as_ref()
                .ok()
                .map(|m| m.get(ROOT_OWNER).map_or(0, Vec::len));
            let password = password_of(summary);
            (
                UserFacts {
                    root: true,
                    created: None,
                    password,
                    password_last_used: None,
                    password_set: None,
                    mfa_active,
                    mfa: mfa_from_virtual(mfa_active.unwrap_or(false), virtual_devices),
                    active_keys_without_ids: get(K::AccountAccessKeysPresent)
                        .map(|n| n.max(0) as u32),
                    centralized_root: centralized,
                    org_root_access_off: session.org_root_access_off(),
                },
                if centralized {
                    CENTRALIZED_NOTE.to_string()
                } else {
                    "from GetAccountSummary: access keys present (active or not), MFA enabled"
                        .to_string()
                },
            )
        }
        Err(f) => (
            UserFacts {
                root: true,
                created: None,
                password: Password::Unknown,
                password_last_used: None,
                password_set: None,
                mfa_active: None,
                mfa: Mfa::Unknown,
                active_keys_without_ids: None,
                centralized_root: centralized,
                org_root_access_off: session.org_root_access_off(),
            },
            format!("unknown: {f} (iam:GetAccountSummary)"),
        ),
    };
    send_root(
        session,
        sink,
        None,
        facts,
        Vec::new(),
        None,
        source,
        note_text,
    )
    .await
}

/// Send the root user's row (its ARN: the account's root ARN when `arn` is none) with its keys' rows;
/// the accounts report's two root cells.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn send_root(
    session: &Session,
    sink: &Sink,
    arn: Option<String>,
    facts: UserFacts,
    keys: Vec<(Option<String>, KeyFacts)>,
    mfa_devices: Option<usize>,
    source: Source,
    note: String,
) -> (String, String) {
    let cells = root_cells(&facts, &keys);
    let arn = arn.unwrap_or_else(|| {
        format!(
            "arn:{}:iam::{}:root",
            session.partition(),
            session.account().id
        )
    });
    send_user(
        session,
        sink,
        Audited {
            name: ROOT_USER,
            arn: &arn,
            facts,
            keys,
            mfa_devices,
            source,
            other: None,
            note,
        },
    )
    .await;
    cells
}

/// The root user from the report's root row, its MFA type and device count as the report path resolved
/// them.
pub(crate) async fn from_report(
    session: &Session,
    sink: &Sink,
    root: &Row,
    (mfa, mfa_devices): (Mfa, Option<usize>),
    summary: &Summary,
) -> (String, String) {
    if session.root_read_apart() {
        return (String::new(), String::new());
    }
    let now = session.settings().started_at;
    let centralized = session.centralized_root();
    // The report's root row says `not_supported` for the password; the account summary says whether
    // there is one (`AccountPasswordPresent`).
    let password = match root.password() {
        Password::Unknown => password_of(summary),
        known => known,
    };
    let facts = UserFacts {
        root: true,
        created: root.created,
        password,
        password_last_used: root.password_last_used,
        password_set: root.password_last_changed,
        mfa_active: Some(root.mfa_active),
        mfa,
        // The report's slots are the root user's keys: none beyond them.
        active_keys_without_ids: Some(0),
        centralized_root: centralized,
        org_root_access_off: session.org_root_access_off(),
    };
    let keys: Vec<(Option<String>, KeyFacts)> = root
        .keys
        .iter()
        .filter(|s| s.last_rotated.is_some() || s.active)
        .map(|s| {
            (
                None,
                KeyFacts {
                    active: s.active,
                    created: s.last_rotated,
                    last_used: s.last_use(now),
                },
            )
        })
        .collect();
    let note = if centralized {
        CENTRALIZED_NOTE.to_string()
    } else {
        String::new()
    };
    let arn = (!root.arn.is_empty()).then(|| root.arn.clone());
    send_root(
        session,
        sink,
        arn,
        facts,
        keys,
        mfa_devices,
        Source::CredentialReport,
        note,
    )
    .await
}
