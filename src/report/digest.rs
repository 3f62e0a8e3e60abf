//! What a run's comparison comes to, for the summary, the page and the alert: how many findings are new
//! and resolved, the changes report's rows by kind, and the new findings worth telling someone about; or
//! why the run was not compared at all (`NotCompared`).

use crate::record::Severity;

use super::columns::CHANGE_COLUMNS;
use super::compare::{AccountChanges, Change, Comparison};
use super::snapshot::GroupedRun;

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
    /// What the exceptions did (docs/exceptions.md).
    pub exceptions: super::excepted::ExceptionsDigest,
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
            // Creates only, and not those an exception accepted (Suppressed).
            if v["activity_id"] != 1 || v["status_id"] == 3 {
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
