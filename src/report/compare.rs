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
use crate::record::{Severity, ROOT_USER};

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

fn finding_change(change: &'static str, f: &Finding<'_>, detail: String) -> Change {
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

/// What a run's comparison found, in a few numbers and the new findings worth telling someone about.
#[derive(Debug, Default, Clone)]
pub struct Digest {
    /// Against which run (its stamp); `None` when nothing was compared.
    pub against: Option<String>,
    /// The earlier run that could not be read (its stamp) and why: nothing was compared, resolved or
    /// deleted, and every finding counts as new.
    pub not_compared: Option<NotCompared>,
    pub new_findings: u64,
    pub resolved_findings: u64,
    /// Rows of the changes report by (change, kind).
    pub counts: std::collections::BTreeMap<(String, String), u64>,
    /// New findings, the most severe first, at most `KEPT` of each severity.
    pub new: Vec<Change>,
    /// New findings of each severity, all of them.
    pub new_by_severity: std::collections::BTreeMap<Severity, u64>,
}

/// An earlier run that was there but could not be read whole (a truncated or corrupted file, a download
/// that failed): the run is not compared with it rather than compared with part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotCompared {
    pub label: String,
    pub reason: String,
}

impl NotCompared {
    /// One line for the summary, the alert and the page.
    pub fn line(&self) -> String {
        format!(
            "not compared with {}: {}; nothing is resolved or deleted, and every finding counts as new",
            self.label, self.reason
        )
    }

    /// The changes report's row for it.
    pub fn change(&self) -> Change {
        Change {
            change: "not_compared",
            kind: "run",
            account_id: String::new(),
            account_name: String::new(),
            resource: self.label.clone(),
            detail: self.reason.clone(),
            before: String::new(),
            after: String::new(),
            severity: String::new(),
            finding_uid: String::new(),
        }
    }
}

/// New findings kept of each severity, for alerts and the summary page.
const KEPT: usize = 50;

impl Digest {
    /// An empty digest of a comparison with the run of stamp `against`.
    pub fn against(label: &str) -> Digest {
        Digest {
            against: Some(label.to_string()),
            ..Digest::default()
        }
    }

    pub fn add(&mut self, changes: &AccountChanges) {
        self.new_findings += changes.new_findings.len() as u64;
        self.resolved_findings += changes.resolved_findings.len() as u64;
        for c in &changes.changes {
            self.add_row(c);
        }
    }

    fn add_row(&mut self, c: &Change) {
        *self
            .counts
            .entry((c.change.to_string(), c.kind.to_string()))
            .or_default() += 1;
        if c.change == "new" && c.kind == "finding" {
            let severity = Severity::from_name(&c.severity).unwrap_or(Severity::Low);
            let n = self.new_by_severity.entry(severity).or_default();
            *n += 1;
            if *n as usize <= KEPT {
                self.new.push(c.clone());
            }
        }
    }

    /// The digest of a run read back from its files (a resumed run's finished accounts, before the
    /// writer goes on with the others). From the changes report when the run was compared with
    /// `against`, else from the findings file (every finding new).
    pub fn of_run(
        paths: &super::OutputPaths,
        format: crate::config::Format,
        against: Option<String>,
    ) -> std::io::Result<Digest> {
        let mut d = Digest {
            against: against.clone(),
            ..Digest::default()
        };
        let word = |w: &str| -> &'static str {
            [
                "new",
                "resolved",
                "changed",
                "not_compared",
                "account",
                "user",
                "access_key",
                "finding",
            ]
            .into_iter()
            .find(|k| *k == w)
            .unwrap_or("changed")
        };
        if against.is_some() {
            let rows = super::resume::Rows::Whole;
            super::resume::for_each_row(&paths.changes, format, &CHANGE_COLUMNS, rows, |r| {
                let c = Change {
                    change: word(&r[0]),
                    kind: word(&r[1]),
                    account_id: r[2].clone(),
                    account_name: r[3].clone(),
                    resource: r[4].clone(),
                    detail: r[5].clone(),
                    before: r[6].clone(),
                    after: r[7].clone(),
                    severity: r[8].clone(),
                    finding_uid: r[9].clone(),
                };
                if c.kind == "finding" {
                    match c.change {
                        "new" => d.new_findings += 1,
                        "resolved" => d.resolved_findings += 1,
                        _ => {}
                    }
                }
                d.add_row(&c);
                Ok(())
            })?;
            return Ok(d);
        }
        use std::io::BufRead;
        let file = std::fs::File::open(&paths.findings)?;
        for line in std::io::BufReader::new(file).lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line?) else {
                continue;
            };
            if v["activity_id"] != 1 {
                continue;
            }
            let s = |p: &str| {
                v.pointer(p)
                    .and_then(|x| x.as_str())
                    .unwrap_or("")
                    .to_string()
            };
            let resource =
                if v.pointer("/resources/0/type").and_then(|t| t.as_str()) == Some("AwsAccount") {
                    s("/resources/0/uid")
                } else {
                    s("/resources/0/name")
                };
            d.new_findings += 1;
            d.add_row(&Change {
                change: "new",
                kind: "finding",
                account_id: s("/cloud/account/uid"),
                account_name: s("/cloud/account/name"),
                resource,
                detail: s("/finding_info/title"),
                before: String::new(),
                after: String::new(),
                severity: s("/severity"),
                finding_uid: s("/finding_info/uid"),
            });
        }
        Ok(d)
    }

    /// The kept new findings, the most severe first.
    pub fn sorted_new(&self) -> Vec<&Change> {
        let mut v: Vec<&Change> = self.new.iter().collect();
        v.sort_by_key(|c| {
            std::cmp::Reverse(Severity::from_name(&c.severity).unwrap_or(Severity::Low))
        });
        v
    }
}

/// Compare two runs already on disk (`iam-audit diff OLD NEW`): every account of the newer run, then the
/// older run's accounts that the newer one lacks. Each change goes to `each`; the digest comes back.
pub fn diff_runs(
    old: &super::OutputPaths,
    old_format: crate::config::Format,
    new: &super::OutputPaths,
    new_format: crate::config::Format,
    scratch_in: &std::path::Path,
    mut each: impl FnMut(&Change) -> std::io::Result<()>,
) -> std::io::Result<Digest> {
    let label = old.stamp();
    let mut comparison = Comparison::new(GroupedRun::read(old, old_format, scratch_in)?, label);
    let mut newer = GroupedRun::read(new, new_format, scratch_in)?;
    let mut digest = Digest::against(&comparison.label);
    let mut ids: Vec<String> = newer.ids().cloned().collect();
    ids.sort();
    for id in ids {
        let Some(snapshot) = newer.get(&id)? else {
            continue;
        };
        let changes = comparison.account(&snapshot)?;
        for c in &changes.changes {
            each(c)?;
        }
        digest.add(&changes);
    }
    for gone in comparison.finish(None, |_| Ok(()))? {
        for c in &gone.changes {
            each(c)?;
        }
        digest.add(&gone);
    }
    Ok(digest)
}
