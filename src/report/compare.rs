//! What changed since an earlier run, account by account: new and removed accounts, users and access keys,
//! keys that changed status, accounts whose audit status changed, and new and resolved findings.
//!
//! Two rules keep it honest. Last-use times and ages moving forward are no change; only a flag they raise
//! or clear is, through the findings. And an account that was not fully audited in either run resolves
//! nothing: what the audit could not read there is unknown, not fixed, and the row says so. The one
//! finding such an account can resolve is its own coverage finding, once it is audited again. What it
//! shows for the first time is new all the same, so a consumer hears of it.

use std::collections::{HashMap, HashSet};

use crate::record::snapshot::{AccountSnapshot, Finding, FindingHistory, FindingKind};
use crate::record::ROOT_USER;

pub use super::columns::CHANGE_COLUMNS;
use super::snapshot::GroupedRun;

/// One change between two runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `new`, `resolved`, `changed`, or `not_compared`.
    pub change: &'static str,
    /// `account`, `user`, `access_key` or `finding`.
    pub kind: &'static str,
    pub account_id: String,
    pub account_name: String,
    pub resource: String,
    pub detail: String,
    pub before: String,
    pub after: String,
    /// A finding's severity; empty for the others.
    pub severity: String,
    pub finding_uid: String,
}

impl Change {
    pub fn cells(&self) -> [&str; 10] {
        [
            self.change,
            self.kind,
            &self.account_id,
            &self.account_name,
            &self.resource,
            &self.detail,
            &self.before,
            &self.after,
            &self.severity,
            &self.finding_uid,
        ]
    }
}

/// What changed in one account.
#[derive(Debug, Default)]
pub struct AccountChanges {
    pub changes: Vec<Change>,
    /// The account as the earlier run left it, if it had it.
    pub old: Option<AccountSnapshot>,
    /// Findings of this run that the earlier one did not have.
    pub new_findings: HashSet<String>,
    /// Findings of the earlier run that are resolved now.
    pub resolved_findings: HashSet<String>,
    /// The account's history as the earlier run left it (its own, or the one it carried for an account it
    /// did not close): what this run's history of the account grows from.
    pub history: Vec<FindingHistory>,
}

impl AccountChanges {
    /// Every finding of an account counted as new, for a run compared with nothing (the first run, or
    /// `--no-compare`): what the alert and the summary count. No change rows: there is no earlier run.
    pub fn all_new(account: &AccountSnapshot) -> AccountChanges {
        let mut out = AccountChanges::default();
        for f in &account.findings() {
            out.new_findings.insert(f.uid());
            out.changes.push(finding_change("new", f, f.title()));
        }
        out
    }
}

/// An earlier run to compare with, read back and grouped by account.
pub struct Comparison {
    previous: GroupedRun,
    /// The earlier run's stamp, for the documents.
    pub label: String,
    seen: HashSet<String>,
}

pub(super) fn finding_change(change: &'static str, f: &Finding<'_>, detail: String) -> Change {
    Change {
        change,
        kind: "finding",
        account_id: f.account.id.clone(),
        account_name: f.account.name.clone(),
        resource: f.resource_name().to_string(),
        detail,
        before: String::new(),
        after: String::new(),
        severity: f.severity().name().to_string(),
        finding_uid: f.uid(),
    }
}

fn account_change(
    change: &'static str,
    a: &AccountSnapshot,
    detail: impl Into<String>,
    before: &str,
    after: &str,
) -> Change {
    Change {
        change,
        kind: "account",
        account_id: a.id.clone(),
        account_name: a.name.clone(),
        resource: a.id.clone(),
        detail: detail.into(),
        before: before.to_string(),
        after: after.to_string(),
        severity: String::new(),
        finding_uid: String::new(),
    }
}

impl Comparison {
    pub fn new(previous: GroupedRun, label: String) -> Comparison {
        Comparison {
            previous,
            label,
            seen: HashSet::new(),
        }
    }

    /// Accounts this run closed before a resume: already compared, never "removed".
    pub fn already_compared(&mut self, ids: impl IntoIterator<Item = String>) {
        self.seen.extend(ids);
    }

    /// Compare one account of this run with the earlier run.
    pub fn account(&mut self, new: &AccountSnapshot) -> std::io::Result<AccountChanges> {
        self.seen.insert(new.id.clone());
        let old = self.previous.get(&new.id)?;
        let mut out = AccountChanges::default();
        let now_findings = new.findings();
        out.history = match &old {
            Some(o) => o.history.clone(),
            None => self.previous.history_only(&new.id)?,
        };
        // A finding the history knows as resolved that holds again is reopened, not new.
        let reopened: HashSet<&str> = out
            .history
            .iter()
            .filter(|e| !e.open)
            .map(|e| e.uid.as_str())
            .collect();
        let reopened: HashSet<String> = reopened.into_iter().map(str::to_string).collect();
        let new_change = |f: &Finding<'_>, detail: String| {
            if reopened.contains(&f.uid()) {
                finding_change(
                    "reopened",
                    f,
                    format!("{detail} (resolved before, failing again)"),
                )
            } else {
                finding_change("new", f, detail)
            }
        };
        let Some(old) = old else {
            out.changes.push(account_change(
                "new",
                new,
                format!(
                    "not in the earlier run; its {} users and {} access keys are new with it",
                    new.users.iter().filter(|u| u.name != ROOT_USER).count(),
                    new.keys.len()
                ),
                "",
                &new.audit_status,
            ));
            for f in &now_findings {
                out.new_findings.insert(f.uid());
                out.changes
                    .push(new_change(f, f.title() + " (new account)"));
            }
            return Ok(out);
        };
        let status_changed = old.audit_status != new.audit_status;
        // Findings come from the parts of the audit: the IAM inventory (users, keys and their flags) and
        // CloudTrail's events (who created a key, short-lived keys). What a part read whole in both runs
        // is compared; what it did not read in either is unknown there, not resolved.
        let inventory = old.iam_read() && new.iam_read();
        let events = inventory && old.events_read() && new.events_read();
        if status_changed {
            out.changes.push(account_change(
                "changed",
                new,
                "audit status",
                &old.audit_status,
                &new.audit_status,
            ));
        }
        if !(inventory && events) && new.audit_status != "not_active" {
            let which = |read: fn(&AccountSnapshot) -> bool| match (read(&old), read(new)) {
                (false, false) => "in either run",
                (false, true) => "in the earlier run",
                _ => "in this run",
            };
            let detail = if inventory {
                format!(
                    "CloudTrail's events not fully read {}: the findings that come from them (who created a key, short-lived keys) are unknown there, not resolved; the IAM inventory is compared",
                    which(AccountSnapshot::events_read)
                )
            } else {
                format!(
                    "not fully audited {}: its users, keys and findings are unknown there, not resolved",
                    which(AccountSnapshot::iam_read)
                )
            };
            out.changes.push(account_change(
                "not_compared",
                new,
                detail,
                &old.audit_status,
                &new.audit_status,
            ));
        }
        if inventory {
            self.users_and_keys(&old, new, &mut out);
        }
        let was: HashMap<String, Finding<'_>> =
            old.findings().into_iter().map(|f| (f.uid(), f)).collect();
        let is: HashSet<String> = now_findings.iter().map(Finding::uid).collect();
        // Findings it did not have before are new (first seen, when the earlier run could not read it).
        for f in &now_findings {
            let uid = f.uid();
            if !was.contains_key(&uid) {
                let detail = if old.iam_read() || f.kind == FindingKind::Coverage {
                    f.title()
                } else {
                    format!(
                        "{} (first seen: the earlier run could not fully read this account)",
                        f.title()
                    )
                };
                out.changes.push(new_change(f, detail));
                out.new_findings.insert(uid);
            }
        }
        // Of those it had, each is resolved where the part it comes from was read in both runs; the
        // coverage finding, once the account is read whole.
        let mut gone: Vec<(&String, &Finding<'_>)> = was
            .iter()
            .filter(|(uid, _)| !is.contains(*uid))
            .filter(|(_, f)| match f.kind {
                FindingKind::Coverage => new.fully_audited(),
                FindingKind::Flag(flag) if flag.needs_events() => events,
                FindingKind::Flag(_) => inventory,
            })
            .collect();
        gone.sort_by_key(|(uid, _)| *uid);
        for (uid, f) in gone {
            let detail = match f.kind {
                FindingKind::Coverage => format!("{} (now {})", f.title(), new.audit_status),
                _ => f.title(),
            };
            out.changes.push(finding_change("resolved", f, detail));
            out.resolved_findings.insert(uid.clone());
        }
        out.old = Some(old);
        Ok(out)
    }

    fn users_and_keys(
        &self,
        old: &AccountSnapshot,
        new: &AccountSnapshot,
        out: &mut AccountChanges,
    ) {
        let change =
            |change, kind, resource: &str, detail: &str, before: &str, after: &str| Change {
                change,
                kind,
                account_id: new.id.clone(),
                account_name: new.name.clone(),
                resource: resource.to_string(),
                detail: detail.to_string(),
                before: before.to_string(),
                after: after.to_string(),
                severity: String::new(),
                finding_uid: String::new(),
            };
        let old_users: HashSet<&str> = old.users.iter().map(|u| u.name.as_str()).collect();
        let new_users: HashSet<&str> = new.users.iter().map(|u| u.name.as_str()).collect();
        for u in &new.users {
            if u.name != ROOT_USER && !old_users.contains(u.name.as_str()) {
                out.changes.push(change(
                    "new",
                    "user",
                    &u.name,
                    "IAM user created",
                    "",
                    &u.arn,
                ));
            }
        }
        for u in &old.users {
            if u.name != ROOT_USER && !new_users.contains(u.name.as_str()) {
                out.changes.push(change(
                    "resolved",
                    "user",
                    &u.name,
                    "IAM user deleted",
                    &u.arn,
                    "",
                ));
            }
        }
        let old_keys: HashMap<&str, &str> = old
            .keys
            .iter()
            .map(|k| (k.id.as_str(), k.status.as_str()))
            .collect();
        let new_keys: HashSet<&str> = new.keys.iter().map(|k| k.id.as_str()).collect();
        for k in &new.keys {
            match old_keys.get(k.id.as_str()) {
                None => out.changes.push(change(
                    "new",
                    "access_key",
                    &k.id,
                    &format!("access key of {} created", k.user),
                    "",
                    &k.status,
                )),
                Some(before) if *before != k.status => out.changes.push(change(
                    "changed",
                    "access_key",
                    &k.id,
                    &format!("status of {}'s key", k.user),
                    before,
                    &k.status,
                )),
                Some(_) => {}
            }
        }
        for k in &old.keys {
            if !new_keys.contains(k.id.as_str()) {
                out.changes.push(change(
                    "resolved",
                    "access_key",
                    &k.id,
                    &format!("access key of {} deleted", k.user),
                    &k.status,
                    "",
                ));
            }
        }
    }

    /// The accounts of the earlier run that this run did not close. Those still in the organization
    /// (`in_org`: left out by a filter, or not reached) are not compared; the others left it, and their
    /// findings are resolved with them. `in_org` is `None` when the organization is not known (`diff`).
    ///
    /// `carry` gets the earlier run's accounts this run did not close but that are still in the
    /// organization (or may be), and those whose history alone it carried: their history goes on as it
    /// was.
    pub fn finish(
        mut self,
        in_org: Option<&HashSet<String>>,
        mut carry: impl FnMut(&AccountSnapshot) -> std::io::Result<()>,
    ) -> std::io::Result<Vec<AccountChanges>> {
        let mut kept: Vec<String> = self
            .previous
            .ids()
            .filter(|id| !self.seen.contains(*id))
            .filter(|id| in_org.is_some_and(|org| org.contains(*id)))
            .chain(
                self.previous
                    .history_only_ids()
                    .filter(|id| !self.seen.contains(*id)),
            )
            .cloned()
            .collect();
        kept.sort();
        for id in kept {
            let old = match self.previous.get(&id)? {
                Some(old) => old,
                None => AccountSnapshot {
                    id: id.clone(),
                    history: self.previous.history_only(&id)?,
                    ..AccountSnapshot::default()
                },
            };
            carry(&old)?;
        }
        let mut ids: Vec<String> = self
            .previous
            .ids()
            .filter(|id| !self.seen.contains(*id))
            .filter(|id| in_org.is_none_or(|org| !org.contains(*id)))
            .cloned()
            .collect();
        ids.sort();
        let mut out = Vec::new();
        for id in ids {
            let Some(old) = self.previous.get(&id)? else {
                continue;
            };
            let mut changes = AccountChanges::default();
            let detail = if in_org.is_some() {
                "no longer in the organization; its findings are resolved with it"
            } else {
                "not in the newer run"
            };
            changes.changes.push(account_change(
                "resolved",
                &old,
                detail,
                &old.audit_status,
                "",
            ));
            if in_org.is_some() {
                for f in old.findings() {
                    changes.resolved_findings.insert(f.uid());
                    changes.changes.push(finding_change(
                        "resolved",
                        &f,
                        format!("{} (the account left the organization)", f.title()),
                    ));
                }
            }
            changes.old = Some(old);
            out.push(changes);
        }
        Ok(out)
    }
}
