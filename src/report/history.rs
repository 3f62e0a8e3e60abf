//! The findings' history (`.iam-audit-history_<stamp>.jsonl`): one line per finding an account has ever
//! had, open or resolved, carried from the run compared with to this one. It is what makes a finding's
//! first-seen time survive from run to run (the findings file's `first_seen_time`, Security Hub's
//! `CreatedAt` and `FirstObservedAt`), tells a finding resolved and failing again (`reopened`) from a new
//! one, and remembers which findings Security Hub holds ACTIVE, so that a later `--security-hub` run
//! archives those that stopped holding whatever happened in between (a run without `--security-hub`, an
//! import that failed). It lives beside the reports, in the output directory or the S3 prefix, never on a
//! server; the next run finds it by the stamp of the run it compares with.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};

use crate::record::snapshot::{AccountSnapshot, Finding, FindingHistory};

use super::compare::AccountChanges;
use super::findings::FindingsContext;
use super::{Output, RunEnd};

/// An account's history after this run: `old` (the history the compared run left, empty when none),
/// brought up to `now` (epoch ms) by the account's findings now. A finding still there keeps its first
/// sighting; one the earlier history had resolved is reopened; a new one starts at `first_seen` (what the
/// facts say, such as a key's creation) or now. Of the findings no longer there, those the comparison
/// resolved are resolved, and the others (a part of the audit that could not read them) are carried as
/// they were. `earlier_seen`: when the compared run started, the first sighting of its findings that have
/// no history yet (a run of an older version).
pub fn update(
    old: &[FindingHistory],
    account: &AccountSnapshot,
    changes: Option<&AccountChanges>,
    now: i64,
    earlier_seen: Option<i64>,
    first_seen: impl Fn(&Finding<'_>) -> Option<i64>,
) -> Vec<FindingHistory> {
    let mut by_uid: HashMap<&str, &FindingHistory> =
        old.iter().map(|e| (e.uid.as_str(), e)).collect();
    let was: HashSet<String> = changes
        .and_then(|c| c.old.as_ref())
        .map(|o| o.findings().iter().map(Finding::uid).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for f in account.findings() {
        let uid = f.uid();
        let entry = match by_uid.remove(uid.as_str()) {
            Some(e) if e.open => FindingHistory {
                last_seen: now,
                archive: None,
                ..e.clone()
            },
            Some(e) => FindingHistory {
                last_seen: now,
                opened: now,
                open: true,
                reopened: e.reopened + 1,
                archive: None,
                ..e.clone()
            },
            None => {
                let since = if was.contains(&uid) {
                    earlier_seen
                } else {
                    None
                };
                let first = first_seen(&f)
                    .into_iter()
                    .chain(since)
                    .min()
                    .unwrap_or(now)
                    .min(now);
                FindingHistory {
                    uid,
                    account: account.id.clone(),
                    first_seen: first,
                    last_seen: now,
                    opened: first,
                    open: true,
                    ..FindingHistory::default()
                }
            }
        };
        out.push(entry);
    }
    let resolved = changes.map(|c| &c.resolved_findings);
    for e in old {
        if !by_uid.contains_key(e.uid.as_str()) {
            continue;
        }
        let mut e = e.clone();
        if e.open && resolved.is_some_and(|r| r.contains(&e.uid)) {
            e.open = false;
            e.resolved += 1;
            e.resolved_at = Some(now);
        }
        out.push(e);
    }
    out
}

/// The history file: each account's entries as it closes, then the earlier run's accounts this run did
/// not close (carried, or resolved with an account that left the organization).
pub struct HistoryOutput {
    out: BufWriter<File>,
    ctx: FindingsContext,
    line: Vec<u8>,
}

impl HistoryOutput {
    pub fn new(file: File, ctx: FindingsContext) -> HistoryOutput {
        HistoryOutput {
            out: BufWriter::with_capacity(64 * 1024, file),
            ctx,
            line: Vec::new(),
        }
    }

    fn write_entry(&mut self, e: &FindingHistory) -> std::io::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, e)?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)
    }

    /// Write `history`; a finding resolved now that Security Hub holds ACTIVE keeps its closing event,
    /// for the import that archives it (this run's, or a later one's).
    fn write_account(
        &mut self,
        history: &[FindingHistory],
        old: Option<&AccountSnapshot>,
        resolved: Option<&HashSet<String>>,
    ) -> std::io::Result<()> {
        let closing: HashMap<String, Finding<'_>> = match (old, resolved) {
            (Some(o), Some(r)) => o
                .findings()
                .into_iter()
                .filter(|f| r.contains(&f.uid()))
                .map(|f| (f.uid(), f))
                .collect(),
            _ => HashMap::new(),
        };
        for e in history {
            match closing.get(&e.uid).filter(|_| e.hub && !e.open) {
                Some(f) => {
                    let mut e = e.clone();
                    e.archive = Some(super::findings::close_event(
                        &self.ctx,
                        f,
                        Some(e.first_seen),
                    ));
                    self.write_entry(&e)?;
                }
                None => self.write_entry(e)?,
            }
        }
        Ok(())
    }
}

impl Output for HistoryOutput {
    fn account_closed(
        &mut self,
        snapshot: &AccountSnapshot,
        changes: Option<&AccountChanges>,
    ) -> std::io::Result<()> {
        let old = changes.and_then(|c| c.old.as_ref());
        self.write_account(
            &snapshot.history,
            old,
            changes.map(|c| &c.resolved_findings),
        )
    }

    fn carry(&mut self, old: &AccountSnapshot) -> std::io::Result<()> {
        for e in &old.history {
            self.write_entry(e)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    fn files(&self) -> Vec<&File> {
        vec![self.out.get_ref()]
    }

    fn finish(&mut self, end: &RunEnd) -> std::io::Result<()> {
        let now = self.ctx.started_at.timestamp_millis();
        for gone in end.removed {
            let Some(old) = &gone.old else { continue };
            let history = update(&old.history, &empty(old), Some(gone), now, None, |_| None);
            self.write_account(&history, Some(old), Some(&gone.resolved_findings))?;
        }
        self.out.flush()
    }
}

/// An account with nothing in it (one that left the organization): every finding it had is gone.
fn empty(old: &AccountSnapshot) -> AccountSnapshot {
    AccountSnapshot {
        id: old.id.clone(),
        name: old.name.clone(),
        ..AccountSnapshot::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::snapshot::{KeySnapshot, UserSnapshot};
    use crate::record::{Flag, Flags};

    fn account(flags: &[Flag]) -> AccountSnapshot {
        AccountSnapshot {
            id: "111122223333".into(),
            audit_status: "audited".into(),
            users: vec![UserSnapshot {
                name: "alice".into(),
                flags: flags.iter().copied().collect::<Flags>(),
                ..Default::default()
            }],
            keys: Vec::<KeySnapshot>::new(),
            ..Default::default()
        }
    }

    // Story: a finding seen in week 1 keeps its first sighting in week 2, is resolved in week 3 (counted,
    // its time kept) and reopened in week 4 (counted, opened again, first sighting unchanged).
    #[test]
    fn a_finding_keeps_its_first_sighting_through_resolution_and_reopening() {
        let day = 86_400_000;
        let open = account(&[Flag::ConsoleWithoutMfa]);
        let fixed = account(&[]);
        let w1 = update(&[], &open, None, day, None, |_| None);
        assert_eq!((w1[0].first_seen, w1[0].open), (day, true));
        let w2 = update(&w1, &open, None, 8 * day, None, |_| None);
        assert_eq!((w2[0].first_seen, w2[0].last_seen), (day, 8 * day));
        let resolved: AccountChanges = AccountChanges {
            resolved_findings: [w2[0].uid.clone()].into(),
            ..Default::default()
        };
        let w3 = update(&w2, &fixed, Some(&resolved), 15 * day, None, |_| None);
        assert_eq!(
            (
                w3[0].open,
                w3[0].resolved,
                w3[0].resolved_at,
                w3[0].last_seen
            ),
            (false, 1, Some(15 * day), 8 * day)
        );
        let w4 = update(&w3, &open, None, 22 * day, None, |_| None);
        assert_eq!(
            (w4[0].open, w4[0].reopened, w4[0].opened, w4[0].first_seen),
            (true, 1, 22 * day, day)
        );
        // A finding that is simply not read this week (no resolution) is carried as it was.
        let w5 = update(&w4, &fixed, None, 29 * day, None, |_| None);
        assert_eq!(w5, w4);
    }
}
