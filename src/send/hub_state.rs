//! What Security Hub holds, as the findings' history records it (`report::history`): the findings a
//! `--security-hub` run left ACTIVE there, and the resolved ones still waiting to be archived. An import
//! archives every one of those (resolved in a run without `--security-hub`, or whose import failed), then
//! writes down what it did, so the next run knows: the history file is rewritten (a private temporary file
//! renamed over it) with each imported finding `hub` and each archived one cleared.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use serde_json::Value;

use crate::record::snapshot::FindingHistory;
use crate::report::files::create_private;

use super::asff;

/// What an earlier import left in Security Hub that this one must archive, from the history in one
/// pass: the resolved findings it still holds ACTIVE (as ARCHIVED documents for `region`, by account),
/// and the Ids of the findings an exception accepts now that it holds ACTIVE (an accepted finding is
/// never imported).
#[derive(Debug, Default)]
pub struct Owed {
    pub resolved: HashMap<String, Vec<Value>>,
    pub excepted: HashSet<String>,
}

pub fn owed(history: &Path, region: &str) -> std::io::Result<Owed> {
    let mut out = Owed::default();
    if !history.exists() {
        return Ok(out);
    }
    for line in BufReader::new(std::fs::File::open(history)?).lines() {
        let e: FindingHistory = serde_json::from_str(&line?).map_err(std::io::Error::other)?;
        match (e.hub, e.open, &e.archive) {
            (true, false, Some(close)) => {
                let doc = asff::from_ocsf(close, region).map_err(std::io::Error::other)?;
                out.resolved.entry(e.account).or_default().push(doc);
            }
            (true, true, _) if e.exception.is_some() => {
                out.excepted.insert(e.uid);
            }
            _ => {}
        }
    }
    Ok(out)
}

/// How one account's import went, for its history.
#[derive(Debug, Default, Clone)]
pub struct Imported {
    /// Every call went through (findings may still have been refused one by one).
    pub whole: bool,
    /// The findings Security Hub refused one by one (their Ids).
    pub refused: HashSet<String>,
}

/// Write down what the import did: in each account imported whole, a finding imported ACTIVE is `hub`,
/// one archived is no longer, and neither needs its closing event any more. An account whose import
/// failed keeps its entries as they were (the next import does it again: imports are upserts).
pub fn record(history: &Path, imported: &HashMap<String, Imported>) -> std::io::Result<()> {
    if !history.exists() {
        return Ok(());
    }
    let tmp = history.with_file_name(format!(
        ".{}.security-hub",
        history.file_name().unwrap_or_default().to_string_lossy()
    ));
    let _ = std::fs::remove_file(&tmp);
    let mut w = std::io::BufWriter::new(create_private(&tmp)?);
    for line in BufReader::new(std::fs::File::open(history)?).lines() {
        let mut e: FindingHistory = serde_json::from_str(&line?).map_err(std::io::Error::other)?;
        if let Some(i) = imported.get(&e.account).filter(|i| i.whole) {
            if !i.refused.contains(&e.uid) {
                if e.open && e.exception.is_none() {
                    e.hub = true;
                } else {
                    e.hub = false;
                    e.archive = None;
                }
            }
        }
        serde_json::to_writer(&mut w, &e)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    drop(w);
    std::fs::rename(&tmp, history)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_import_is_written_down_only_where_it_went_through() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".iam-audit-history_x.jsonl");
        let entry = |account: &str, uid: &str, open: bool, hub: bool| FindingHistory {
            uid: uid.into(),
            account: account.into(),
            open,
            hub,
            archive: (!open).then(|| serde_json::json!({})),
            ..FindingHistory::default()
        };
        let lines: Vec<String> = [
            entry("111111111111", "a", true, false),
            entry("111111111111", "b", false, true),
            entry("111111111111", "c", true, false),
            entry("222222222222", "d", true, false),
        ]
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect();
        std::fs::write(&path, lines.concat()).unwrap();
        let imported = HashMap::from([
            (
                "111111111111".to_string(),
                Imported {
                    whole: true,
                    refused: ["c".to_string()].into(),
                },
            ),
            ("222222222222".to_string(), Imported::default()),
        ]);
        record(&path, &imported).unwrap();
        let got: Vec<(String, bool, bool)> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| {
                let e: FindingHistory = serde_json::from_str(l).unwrap();
                (e.uid, e.hub, e.archive.is_some())
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a".into(), true, false),
                ("b".into(), false, false),
                ("c".into(), false, false),
                ("d".into(), false, false)
            ]
        );
    }
}
