//! Records: what the auditors produce and every output reads. The rows of the four reports, the values
//! their cells are made of, and the risk flag vocabulary. This is the language every room speaks, so it sits
//! at the bottom and imports nothing of the crate: the rules (`risk`) fill the flags, the outputs
//! (`report`) render the rows, and neither knows the other.

mod cis;
mod flag;
mod severity;
pub mod snapshot;

use std::fmt;

use chrono::{DateTime, Datelike, Timelike, Utc};

pub use cis::{Cis, CisVersion};
pub use flag::{Flag, Flags, Subject};
pub use severity::Severity;

/// The user name of the root user's row, as the credential report names it.
pub const ROOT_USER: &str = "<root_account>";

/// RFC 3339 UTC with second precision, e.g. `2026-03-05T15:30:22Z` (design §3): every timestamp of every
/// output.
pub fn rfc3339(t: &DateTime<Utc>) -> String {
    Rfc3339(t).to_string()
}

/// A timestamp as `rfc3339` writes it, formatted where it is written (no string in between).
pub struct Rfc3339<'a>(pub &'a DateTime<Utc>);

impl fmt::Display for Rfc3339<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }
}

/// Where an IAM row's facts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Per-user IAM calls.
    Api,
    /// The account's IAM credential report, plus the calls it lacks.
    CredentialReport,
    /// The root user's own calls in a root session (sts:AssumeRoot, centralized root access).
    AssumeRoot,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Api => "api",
            Source::CredentialReport => "credential_report",
            Source::AssumeRoot => "assume_root",
        }
    }
}

/// Whether the user has a console password (a login profile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Password {
    Configured,
    NotConfigured,
    /// GetLoginProfile failed with something other than NoSuchEntity; the error is in the accounts report.
    Unknown,
}

/// MFA as the seed reports it. Hardware wins over Virtual when a user has several devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mfa {
    None,
    Virtual,
    Hardware,
    /// ListMFADevices failed; the error is in the accounts report.
    Unknown,
}

impl Mfa {
    pub fn as_str(self) -> &'static str {
        match self {
            Mfa::None => "None",
            Mfa::Virtual => "Virtual",
            Mfa::Hardware => "Hardware",
            Mfa::Unknown => "Unknown",
        }
    }
}

/// The last use of an access key.
#[derive(Debug, Clone, PartialEq)]
pub struct LastUsed {
    pub date: DateTime<Utc>,
    pub service: String,
    pub region: String,
    pub days_since: i64,
}

/// What is known of a key's last use.
#[derive(Debug, Clone, PartialEq)]
pub enum LastUse {
    Never,
    Used(LastUsed),
    /// GetAccessKeyLastUsed failed; the error is in the accounts report. No verdict rests on it.
    Unknown,
}

impl LastUse {
    /// The date of the last use, when the key was used.
    pub fn date(&self) -> Option<DateTime<Utc>> {
        match self {
            LastUse::Used(u) => Some(u.date),
            _ => None,
        }
    }
}

/// The principal that made a key's CreateAccessKey (or DeleteAccessKey) call, from the event's CloudTrail
/// body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Actor {
    /// `userIdentity.arn` (for the root user `arn:aws:iam::ACCOUNT:root`; for a role, the session ARN).
    pub arn: String,
    /// `userIdentity.type`: IAMUser, AssumedRole, Root, FederatedUser, AWSService, …
    pub kind: String,
    /// `userIdentity.userName` (IAM users; empty otherwise).
    pub user_name: String,
    /// `sourceIPAddress` (an IP, or a service name when a service called).
    pub ip: String,
    pub user_agent: String,
    pub event_id: String,
    pub time: Option<DateTime<Utc>>,
}

/// Who created an access key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Creation {
    /// Its CreateAccessKey event.
    Event(Actor),
    /// Created before the CloudTrail window began: its event is out of reach.
    BeforeWindow,
    /// Created after the window ended (`--end-date` before today).
    AfterWindow,
    /// Created inside the window, and the window's CreateAccessKey events were all read, but none names
    /// the key (CloudTrail delivers events up to about 15 minutes late; the key may be newer).
    NotInEvents,
    /// The CreateAccessKey events were not (all) read: CloudTrail was refused or failed (the accounts
    /// report says why), or `event_names` leaves CreateAccessKey out.
    Unknown,
}

impl Creation {
    /// The `created_by` cell's marker when there is no event.
    pub fn marker(&self) -> Option<&'static str> {
        match self {
            Creation::Event(_) => None,
            Creation::BeforeWindow => Some("before_window"),
            Creation::AfterWindow => Some("after_window"),
            Creation::NotInEvents => Some("not_in_events"),
            Creation::Unknown => Some("unknown"),
        }
    }
}

/// One access key: one row of the key report.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRow {
    pub account_id: String,
    pub account_name: String,
    pub username: String,
    pub password: Password,
    /// From ListUsers' PasswordLastUsed; `None` = never.
    pub password_last_used: Option<DateTime<Utc>>,
    pub access_key_id: String,
    pub status: String,
    pub created_date: Option<DateTime<Utc>>,
    pub last_used: LastUse,
    pub mfa: Mfa,
    pub mfa_devices: Option<usize>,
    pub key_age_days: Option<i64>,
    /// The key's flags and its user's (the `risk` cell).
    pub risk: Flags,
    /// The key's own flags (the findings about this key).
    pub key_risk: Flags,
    pub source: Source,
    /// Who created it (`created_by`, `created_by_type`, `created_from_ip`, `created_event_id`).
    pub creation: Creation,
    /// The exceptions that accept the row's findings.
    pub exception: ExceptionCells,
}

/// The `exception` and `exception_expires` cells: the ids of the rules that accept some of a row's
/// findings (`;`-joined, in the file's order) and the earliest of their expiries (YYYY-MM-DD); empty
/// when none does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExceptionCells {
    pub rules: String,
    pub expires: String,
}

/// One IAM user or the root user: one row of the users report.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    pub account_id: String,
    pub account_name: String,
    /// `ROOT_USER` for the root user.
    pub username: String,
    pub arn: String,
    pub created: Option<DateTime<Utc>>,
    pub password: Password,
    /// `None` = never (or no password).
    pub password_last_used: Option<DateTime<Utc>>,
    /// `None` = unknown.
    pub mfa_active: Option<bool>,
    pub mfa: Mfa,
    pub mfa_devices: Option<usize>,
    /// `None` = unknown.
    pub active_keys: Option<u32>,
    pub oldest_active_key_age_days: Option<i64>,
    /// The latest of the password's and the keys' last use; `None` = never.
    pub last_activity: Option<DateTime<Utc>>,
    /// The user's flags and all its keys' (the `risk` cell).
    pub risk: Flags,
    /// The user's own flags (the findings about the user).
    pub user_risk: Flags,
    /// The flags of the user's keys that have no key row (the root user's keys, and keys whose ids could
    /// not be listed): their findings are about the user.
    pub unlisted_key_risk: Flags,
    pub source: Source,
    /// Why a value is `unknown` (the AWS error), or what the row stands for.
    pub note: String,
    /// The user's other long-term credentials, by type; `None` when they were not read.
    pub other_credentials: OtherCredentials,
    /// The exceptions that accept the row's findings.
    pub exception: ExceptionCells,
}

/// How many of each other long-term credential a user holds; `None` = not read (refused, failed, or not
/// asked for: SSH keys are opt-in).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OtherCredentials {
    pub service_specific: Option<u32>,
    pub ssh_public_keys: Option<u32>,
    pub signing_certificates: Option<u32>,
}

/// The kind of a credential of the credentials file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialType {
    ServiceSpecific,
    SshPublicKey,
    SigningCertificate,
}

impl CredentialType {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialType::ServiceSpecific => "service_specific",
            CredentialType::SshPublicKey => "ssh_public_key",
            CredentialType::SigningCertificate => "signing_certificate",
        }
    }
}

/// One long-term credential that is not an access key: one row of the credentials file.
#[derive(Debug, Clone, PartialEq)]
pub struct CredentialRow {
    pub account_id: String,
    pub account_name: String,
    pub username: String,
    pub kind: CredentialType,
    /// The service of a service-specific credential (`codecommit.amazonaws.com`, …); empty otherwise.
    pub service: String,
    pub credential_id: String,
    /// `Active`, `Inactive`, or `Expired` (an API key past its expiry).
    pub status: String,
    pub created: Option<DateTime<Utc>>,
    /// Long-term API keys may carry one; `None`: never expires (or the type has none).
    pub expires: Option<DateTime<Utc>>,
    pub age_days: Option<i64>,
    pub risk: Flags,
    /// The API call it came from (`iam:ListServiceSpecificCredentials`, …).
    pub source: &'static str,
}

/// One access key seen in the window's CreateAccessKey/DeleteAccessKey events: one row of the key history.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyHistoryRow {
    pub account_id: String,
    pub account_name: String,
    pub username: String,
    pub access_key_id: String,
    pub created: Option<Actor>,
    pub deleted: Option<Actor>,
    /// Whether the key is in this run's inventory: `None` when the account's keys were not all read.
    pub in_inventory: Option<bool>,
    pub risk: Flags,
}

impl UserRow {
    pub fn is_root(&self) -> bool {
        self.username == ROOT_USER
    }
}

/// One CloudTrail event: one row of the events report.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub event_time: Option<DateTime<Utc>>,
    pub event_name: String,
    pub username: String,
    pub account_id: String,
    pub account_name: String,
    pub resources: String,
    pub region: String,
    pub event_id: String,
    pub access_key_id: String,
    pub source_ip_address: String,
    /// The service that recorded it (`iam.amazonaws.com`, or another with `all_event_sources`).
    pub event_source: String,
}

/// How far one account's audit got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditStatus {
    Audited,
    Partial,
    Skipped,
    NotActive,
}

impl AuditStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditStatus::Audited => "audited",
            AuditStatus::Partial => "partial",
            AuditStatus::Skipped => "skipped",
            AuditStatus::NotActive => "not_active",
        }
    }
}

/// How far one service's part of an account audit got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartStatus {
    Ok,
    /// Some calls failed after some data was read; the rows read are in the reports.
    Partial,
    /// The first call failed; nothing was read.
    Failed,
    /// Not attempted (the role could not be assumed, or the account is not ACTIVE).
    NotRun,
}

impl PartStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PartStatus::Ok => "ok",
            PartStatus::Partial => "partial",
            PartStatus::Failed => "failed",
            PartStatus::NotRun => "not_run",
        }
    }
}

/// One account: one row of the accounts report. Its arrival also closes the account: the writer flushes.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRow {
    pub account_id: String,
    pub account_name: String,
    pub account_status: String,
    pub audit_status: AuditStatus,
    pub iam_status: PartStatus,
    pub cloudtrail_status: PartStatus,
    pub users: u64,
    pub keys: u64,
    pub events: u64,
    /// `Code: message` of each distinct failure, joined by ` | `.
    pub error: String,
    pub duration_s: f64,
    /// How the IAM inventory was read; `None` when it was not.
    pub strategy: Option<Source>,
    /// When the account's credential report was generated (AWS reuses one up to 4 hours old).
    pub credential_report_time: Option<DateTime<Utc>>,
    /// Root findings: active root access keys (`0`, `1`, `2`, or `unknown`), root MFA (`Hardware`,
    /// `Virtual`, `None`, `unknown`, or `centralized` when the organization manages root credentials).
    pub root_access_keys: String,
    pub root_mfa: String,
    /// Users (root included) carrying each flag, in `Flag::ALL` order.
    pub flag_counts: [u64; Flag::COUNT],
    /// Events LookupEvents returned from other services than IAM, left out of the events report.
    pub events_other_sources: u64,
    /// The role the account was audited with, `caller` (the management account, with the caller's own
    /// credentials), or empty.
    pub role_used: String,
    /// The account's OU path (`Root/Workloads/Prod`), empty when the OU tree was not read.
    pub ou_path: String,
    /// Findings new since the earlier run, and the earlier run's findings resolved now; `None` when no
    /// run was compared. Filled in by the writer as the account closes.
    pub new_findings: Option<u64>,
    pub resolved_findings: Option<u64>,
    /// Rows of the credentials file (service-specific credentials, SSH keys, signing certificates).
    pub credentials: u64,
    /// Whose SSH public keys were listed: `none (--ssh-keys)`, `console users`, `all users`; empty when
    /// the account was not audited.
    pub ssh_keys_listed: String,
    /// What the exceptions say of the account (a rule accepting too many of its findings). Filled in by
    /// the writer as the account closes.
    pub note: String,
}

impl AccountRow {
    /// The closing row of an account that was not audited (not active, or never reached), with `error`.
    pub fn unaudited(
        id: &str,
        name: &str,
        status: &str,
        ou_path: &str,
        audit_status: AuditStatus,
        error: String,
    ) -> AccountRow {
        AccountRow {
            account_id: id.to_string(),
            account_name: name.to_string(),
            account_status: status.to_string(),
            audit_status,
            iam_status: PartStatus::NotRun,
            cloudtrail_status: PartStatus::NotRun,
            users: 0,
            keys: 0,
            events: 0,
            error,
            duration_s: 0.0,
            strategy: None,
            credential_report_time: None,
            root_access_keys: String::new(),
            root_mfa: String::new(),
            flag_counts: [0; Flag::COUNT],
            events_other_sources: 0,
            role_used: String::new(),
            ou_path: ou_path.to_string(),
            new_findings: None,
            resolved_findings: None,
            credentials: 0,
            ssh_keys_listed: String::new(),
            note: String::new(),
        }
    }
}

/// What travels from the auditors to the writer.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Key(KeyRow),
    User(UserRow),
    Event(EventRow),
    Credential(CredentialRow),
    KeyHistory(KeyHistoryRow),
    /// Closes its account: every row of the account was sent before it.
    Account(AccountRow),
    /// The run's last record: how it went, for the outputs that summarize it.
    End(RunFacts),
}

/// How the run went, as its summary page shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFacts {
    pub elapsed_s: f64,
    pub calls: u64,
    pub throttled: u64,
    pub server_errors: u64,
    pub assume_role: u64,
    /// Accounts left out by the filters.
    pub filtered_out: u64,
    /// Accounts done before a resume.
    pub resumed: u64,
    /// Every account of the organization, those left out by a filter too (`None` when the listing did
    /// not end: cut short or interrupted): an earlier run's account that is not among them left the
    /// organization.
    pub in_org: Option<std::collections::HashSet<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_seconds_utc() {
        let t = DateTime::from_timestamp(1_772_724_622, 999).unwrap();
        assert_eq!(rfc3339(&t), "2026-03-05T15:30:22Z");
        let early = DateTime::from_timestamp(-62_135_596_800 + 86_400 * 40, 0).unwrap();
        assert_eq!(rfc3339(&early), "0001-02-10T00:00:00Z");
    }
}
