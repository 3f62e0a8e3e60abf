//! What one run recorded about one account, in the few fields that findings, comparisons and the summary
//! page read: the account's audit status, its users and keys, and each one's own flags. A snapshot is made
//! from the records as an account closes, or from a run's report files, and both ways give the same
//! snapshot for the same run (the comparison of a run with itself finds nothing). The findings of an
//! account are derived from its snapshot: one per flag and resource, plus one when the audit was blind.

use serde::{Deserialize, Serialize};

use super::{AccountRow, Flag, Flags, Severity, Subject, ROOT_USER};

/// One account, as a run left it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountSnapshot {
    pub id: String,
    pub name: String,
    /// ACTIVE, SUSPENDED, …
    pub status: String,
    /// `audited`, `partial`, `skipped` or `not_active`.
    pub audit_status: String,
    /// How far each part got: `ok`, `partial`, `failed`, or empty (not audited).
    #[serde(default)]
    pub iam_status: String,
    #[serde(default)]
    pub cloudtrail_status: String,
    pub ou_path: String,
    pub error: String,
    pub users: Vec<UserSnapshot>,
    pub keys: Vec<KeySnapshot>,
    /// Every finding the account has had, open or resolved, across runs (the history file); empty where
    /// none is known.
    #[serde(default)]
    pub history: Vec<FindingHistory>,
    /// This run's findings an exception accepts, by uid (docs/exceptions.md); never read back.
    #[serde(skip)]
    pub excepted: std::collections::HashMap<String, Accepted>,
}

/// The exception that accepts a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The rule's id.
    pub rule: String,
    /// Its last day, YYYY-MM-DD.
    pub expires: String,
    pub reason: String,
    pub owner: String,
}

/// One finding's life across runs: a line of a run's history file (`.iam-audit-history_<stamp>.jsonl`),
/// which each run carries forward from the run it compared with. Times are epoch milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FindingHistory {
    pub uid: String,
    pub account: String,
    /// When the condition was first seen (or, for a key, when the facts say it began).
    pub first_seen: i64,
    /// When it was last seen holding.
    pub last_seen: i64,
    /// When it opened this time: `first_seen`, or when it was last reopened.
    pub opened: i64,
    /// Whether it held at the last run that could judge it.
    pub open: bool,
    /// When it was last resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<i64>,
    /// How many times it was resolved, and reopened (resolved, then failing again).
    #[serde(default)]
    pub resolved: u32,
    #[serde(default)]
    pub reopened: u32,
    /// Imported into the account's Security Hub as ACTIVE, and not archived since.
    #[serde(default)]
    pub hub: bool,
    /// A resolved finding Security Hub still holds ACTIVE: its closing OCSF event, which the next
    /// `--security-hub` run imports as ARCHIVED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<serde_json::Value>,
    /// The exception that accepted it at the last run (its rule id); none when it was not accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<String>,
}

/// One IAM user or the root user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserSnapshot {
    pub name: String,
    pub arn: String,
    /// The users report's cells, as written.
    pub password_enabled: String,
    pub mfa_type: String,
    pub last_activity: String,
    /// The user's own flags, and those of its keys that have no key row (the root user's keys).
    pub flags: Flags,
}

/// One access key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeySnapshot {
    pub id: String,
    pub user: String,
    /// `Active` or `Inactive`.
    pub status: String,
    /// RFC 3339, or empty.
    pub created: String,
    /// The key report's `last_used_date` cell, as written.
    pub last_used: String,
    pub key_age_days: String,
    /// The key's own flags.
    pub flags: Flags,
}

impl AccountSnapshot {
    /// An account's snapshot from its closing row and the rows it sent before it.
    pub fn from_rows(
        account: &AccountRow,
        users: Vec<UserSnapshot>,
        keys: Vec<KeySnapshot>,
    ) -> Self {
        AccountSnapshot {
            id: account.account_id.clone(),
            name: account.account_name.clone(),
            status: account.account_status.clone(),
            audit_status: account.audit_status.as_str().to_string(),
            iam_status: account.iam_status.as_str().to_string(),
            cloudtrail_status: account.cloudtrail_status.as_str().to_string(),
            ou_path: account.ou_path.clone(),
            error: account.error.clone(),
            users,
            keys,
            history: Vec::new(),
            excepted: Default::default(),
        }
    }

    /// Whether everything there was to read was read (so a finding missing here is resolved).
    pub fn fully_audited(&self) -> bool {
        self.audit_status == "audited"
    }

    /// Whether the IAM inventory was read whole: users, keys and the flags they carry.
    pub fn iam_read(&self) -> bool {
        self.fully_audited() || (self.audit_status == "partial" && self.iam_status == "ok")
    }

    /// Whether CloudTrail's events were read whole (besides the inventory).
    pub fn events_read(&self) -> bool {
        self.fully_audited() || (self.audit_status == "partial" && self.cloudtrail_status == "ok")
    }

    /// The account's findings: one per flag and resource, and one when the audit was blind there.
    pub fn findings(&self) -> Vec<Finding<'_>> {
        let mut out = Vec::new();
        if self.audit_status == "partial" || self.audit_status == "skipped" {
            out.push(Finding {
                kind: FindingKind::Coverage,
                account: self,
                resource: Resource::Account,
            });
        }
        for u in &self.users {
            for flag in u.flags.iter() {
                let resource = if u.name == ROOT_USER {
                    Resource::Root(u)
                } else {
                    Resource::User(u)
                };
                out.push(Finding {
                    kind: FindingKind::Flag(flag),
                    account: self,
                    resource,
                });
            }
        }
        for k in &self.keys {
            for flag in k.flags.iter() {
                out.push(Finding {
                    kind: FindingKind::Flag(flag),
                    account: self,
                    resource: Resource::Key(k),
                });
            }
        }
        out
    }

    /// A user by name.
    pub fn user(&self, name: &str) -> Option<&UserSnapshot> {
        self.users.iter().find(|u| u.name == name)
    }
}

impl UserSnapshot {
    /// The flags of a user from its report cells: its `risk` cell holds its flags and its keys', so the
    /// key flags that its key rows carry are theirs, and the rest belong to keys without a row.
    pub fn own_flags(user_risk: Flags, key_rows_risk: Flags) -> Flags {
        user_risk
            .iter()
            .filter(|f| f.subject() != Subject::Key || !key_rows_risk.contains(*f))
            .collect()
    }
}

impl KeySnapshot {
    /// A key's own flags from its `risk` cell, which also holds its user's.
    pub fn own_flags(risk: Flags) -> Flags {
        risk.iter()
            .filter(|f| f.subject() == Subject::Key)
            .collect()
    }
}

/// What a finding says fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    /// A risk flag: a CIS requirement failed.
    Flag(Flag),
    /// The account could not be fully audited: the audit is blind there.
    Coverage,
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Resource<'a> {
    Account,
    Root(&'a UserSnapshot),
    User(&'a UserSnapshot),
    Key(&'a KeySnapshot),
}

/// One finding: a flag on a resource, or an account the audit could not fully read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Finding<'a> {
    pub kind: FindingKind,
    pub account: &'a AccountSnapshot,
    pub resource: Resource<'a>,
}

/// The code of the coverage finding.
pub const COVERAGE_CODE: &str = "audit_incomplete";

impl Finding<'_> {
    /// The finding's code: the flag's, or `audit_incomplete`.
    pub fn code(&self) -> &'static str {
        match self.kind {
            FindingKind::Flag(f) => f.code(),
            FindingKind::Coverage => COVERAGE_CODE,
        }
    }

    /// The flag, for a flag's finding (not the coverage finding).
    pub fn flag(&self) -> Option<Flag> {
        match self.kind {
            FindingKind::Flag(f) => Some(f),
            FindingKind::Coverage => None,
        }
    }

    /// The resource's name within its account: a key id, a user name, `root`, or the account id.
    pub fn resource_name(&self) -> &str {
        match self.resource {
            Resource::Account => &self.account.id,
            Resource::Root(_) => "root",
            Resource::User(u) => &u.name,
            Resource::Key(k) => &k.id,
        }
    }

    /// Stable across runs: from the account, the code and the resource, never from the run, so that a
    /// consumer can update and close the finding (`iam-audit/111122223333/key_unused_45d/AKIA…`).
    pub fn uid(&self) -> String {
        let code = match self.kind {
            FindingKind::Flag(f) => f.uid_code(),
            FindingKind::Coverage => COVERAGE_CODE,
        };
        finding_uid(&self.account.id, code, self.resource_name())
    }

    pub fn severity(&self) -> Severity {
        match self.kind {
            FindingKind::Flag(f) => f.severity(),
            // The audit is blind there: whatever is wrong in that account is unknown.
            FindingKind::Coverage => Severity::High,
        }
    }

    pub fn title(&self) -> String {
        let where_ = match self.resource {
            Resource::Account => String::new(),
            Resource::Root(_) => " (root user)".to_string(),
            Resource::User(u) => format!(" ({})", u.name),
            Resource::Key(k) => format!(" ({} of {})", k.id, k.user),
        };
        match self.kind {
            FindingKind::Flag(f) => format!("{}{where_}", f.title()),
            FindingKind::Coverage => format!(
                "Account {} could not be fully audited ({})",
                self.account.id, self.account.audit_status
            ),
        }
    }
}

/// The uid of a finding (see `Finding::uid`).
pub fn finding_uid(account: &str, code: &str, resource: &str) -> String {
    format!("iam-audit/{account}/{code}/{resource}")
}

/// Flags as their `risk` cell, in files of snapshots.
impl Serialize for Flags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.cell())
    }
}

impl<'de> Deserialize<'de> for Flags {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Flags, D::Error> {
        let cell = String::deserialize(d)?;
        Ok(Flags::parse(&cell))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(codes: &[Flag]) -> Flags {
        codes.iter().copied().collect()
    }

    // Story: from the report cells, a user's key flags that one of its key rows carries are the key's;
    // the others (the root user's keys have no row) stay the user's.
    #[test]
    fn own_flags_come_apart_from_the_union_cells() {
        let user_cell = flags(&[
            Flag::ConsoleWithoutMfa,
            Flag::KeyUnused,
            Flag::KeyOlderThan90d,
        ]);
        let keys = flags(&[Flag::KeyUnused]);
        assert_eq!(
            UserSnapshot::own_flags(user_cell, keys).cell(),
            "console_without_mfa;key_older_than_90d"
        );
        assert_eq!(
            KeySnapshot::own_flags(flags(&[Flag::TwoActiveKeys, Flag::KeyUnused])).cell(),
            "key_unused_45d"
        );
    }

    #[test]
    fn findings_are_one_per_flag_and_resource_with_stable_uids() {
        let a = AccountSnapshot {
            id: "111122223333".into(),
            audit_status: "partial".into(),
            users: vec![UserSnapshot {
                name: ROOT_USER.into(),
                flags: flags(&[Flag::RootAccessKey, Flag::KeyOlderThan90d]),
                ..Default::default()
            }],
            keys: vec![KeySnapshot {
                id: "AKIA1".into(),
                user: "bob".into(),
                flags: flags(&[Flag::KeyUnused]),
                ..Default::default()
            }],
            ..Default::default()
        };
        let uids: Vec<String> = a.findings().iter().map(Finding::uid).collect();
        assert_eq!(
            uids,
            [
                "iam-audit/111122223333/audit_incomplete/111122223333",
                "iam-audit/111122223333/root_access_key/root",
                "iam-audit/111122223333/key_older_than_90d/root",
                "iam-audit/111122223333/key_unused_45d/AKIA1",
            ]
        );
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<AccountSnapshot>(&json).unwrap(), a);
    }
}
