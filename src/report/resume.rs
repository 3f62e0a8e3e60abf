//! Resuming an interrupted run (`--resume DIR`): the accounts its accounts report shows `audited` (or
//! `not_active`) are done and keep their rows; every row of the other accounts is removed from the four
//! reports, to be written again when they are audited again. A row torn by a kill is dropped: the last row
//! of a file that does not end with a line break was cut short, even if its cell count looks whole. Any
//! other row that does not read is an error, never a row silently left out. Files are read as streams and
//! rewritten into new private files renamed over the old ones.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::config::Format;

use super::files::{create_private, OutputPaths};

/// What an interrupted run had finished: the accounts not to audit again.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resumed {
    /// Accounts `audited` or `not_active` in the run's accounts report.
    pub done: HashSet<String>,
    pub audited: u64,
    pub not_active: u64,
}

/// Prepare an interrupted run's files to be continued (see the module's doc).
pub fn prepare_resume(paths: &OutputPaths, format: Format) -> std::io::Result<Resumed> {
    let mut resumed = Resumed::default();
    for_each_row(
        &paths.accounts,
        format,
        &["account_id", "audit_status"],
        Rows::Interrupted,
        |row| {
            match row[1].as_str() {
                "audited" => resumed.audited += 1,
                "not_active" => resumed.not_active += 1,
                _ => return Ok(()),
            }
            resumed.done.insert(row[0].clone());
            Ok(())
        },
    )?;
    for path in paths.all().into_iter().chain([
        paths.changes.as_path(),
        paths.credentials.as_path(),
        paths.key_history.as_path(),
    ]) {
        keep_rows(path, format, &resumed.done, "/account_id")?;
    }
    // The findings are JSON lines whatever the format; a finding names its account in `cloud.account`.
    // Those of accounts that left the organization go too: the resumed run closes them again.
    keep_rows(
        &paths.findings,
        Format::Jsonl,
        &resumed.done,
        "/cloud/account/uid",
    )?;
    // The findings' history: the done accounts' entries; the rest come again with their accounts (or
    // carried, at the run's end).
    keep_rows(&paths.history, Format::Jsonl, &resumed.done, "/account")?;
    Ok(resumed)
}

fn invalid_data(m: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, m)
}

/// How much of a report's file to trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// A finished run's file (the run compared with, a run replayed): every row must read, the last one
    /// with its line break. A file that does not is truncated or corrupted, and nothing may be concluded
    /// from it.
    Whole,
    /// An interrupted run's file (`--resume`): a last row that a kill cut short (no line break) is dropped;
    /// every other row must read.
    Interrupted,
}

/// The file up to its last line break (the rows a kill did not cut short), and whether that is all of it.
fn complete_rows(path: &Path) -> std::io::Result<(std::io::Take<File>, bool)> {
    let mut file = File::open(path)?;
    let len = file.seek(SeekFrom::End(0))?;
    let mut end = len;
    let mut chunk = [0u8; 4096];
    let complete = loop {
        if end == 0 {
            break 0;
        }
        let start = end.saturating_sub(chunk.len() as u64);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk[..n])?;
        if let Some(i) = chunk[..n].iter().rposition(|b| *b == b'\n') {
            break start + i as u64 + 1;
        }
        end = start;
    };
    file.seek(SeekFrom::Start(0))?;
    Ok((file.take(complete), complete == len))
}

/// The rows of a report file as `rows` trusts them: fails on a torn last row of a `Whole` file.
fn trusted_rows(path: &Path, rows: Rows) -> std::io::Result<std::io::Take<File>> {
    let (file, whole) = complete_rows(path)?;
    if rows == Rows::Whole && !whole {
        return Err(invalid_data(format!(
            "{}: the last row has no line break: the file was cut short",
            path.display()
        )));
    }
    Ok(file)
}

/// A history file as a finished run left it: whole, its last line with its line break.
pub(super) fn trusted_history(path: &Path) -> std::io::Result<std::io::Take<File>> {
    trusted_rows(path, Rows::Whole)
}

/// A CSV report's trusted rows (of any length: the callers check each row's) and its header.
fn csv_rows(
    path: &Path,
    rows: Rows,
) -> std::io::Result<(csv::Reader<std::io::Take<File>>, csv::StringRecord)> {
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(trusted_rows(path, rows)?);
    let header = r
        .headers()
        .map_err(|e| invalid_data(format!("{}: {e}", path.display())))?
        .clone();
    Ok((r, header))
}

/// The `n`-th (from 0) CSV record after the header, if it reads and has the header's length, or why not
/// (the file and line; rows of one line each, as iam-audit writes them).
fn whole_record(
    path: &Path,
    n: usize,
    rec: csv::Result<csv::StringRecord>,
    header: &csv::StringRecord,
) -> std::io::Result<csv::StringRecord> {
    let line = n + 2;
    let rec = rec.map_err(|e| invalid_data(format!("{} line {line}: {e}", path.display())))?;
    if rec.len() != header.len() {
        return Err(invalid_data(format!(
            "{} line {line}: {} cells where the header has {}",
            path.display(),
            rec.len(),
            header.len()
        )));
    }
    Ok(rec)
}

/// The `fields` of every row of a report, each handed to `each`. A row that does not read (a CSV row of
/// the wrong length, a line that is not a JSON object with those fields) is an error naming the file and
/// line: a report is read whole or not at all, never with rows silently left out.
pub(super) fn for_each_row(
    path: &Path,
    format: Format,
    fields: &[&str],
    rows: Rows,
    mut each: impl FnMut(Vec<String>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    match format {
        Format::Csv => {
            let (mut r, header) = csv_rows(path, rows)?;
            let at: Vec<usize> = fields
                .iter()
                .map(|f| header.iter().position(|h| h == *f))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    invalid_data(format!(
                        "{} is not a report of iam-audit (no {} column)",
                        path.display(),
                        fields.join(", ")
                    ))
                })?;
            for (n, rec) in r.records().enumerate() {
                let rec = whole_record(path, n, rec, &header)?;
                each(
                    at.iter()
                        .map(|&i| super::table::unescape_formula(&rec[i]).to_string())
                        .collect(),
                )?;
            }
        }
        Format::Jsonl => {
            for (n, line) in BufReader::new(trusted_rows(path, rows)?)
                .lines()
                .enumerate()
            {
                let line = line?;
                let row = match serde_json::from_str(&line) {
                    Ok(serde_json::Value::Object(row)) => row,
                    _ => {
                        return Err(invalid_data(format!(
                            "{} line {}: not a JSON object",
                            path.display(),
                            n + 1
                        )))
                    }
                };
                let cells: Option<Vec<String>> = fields
                    .iter()
                    .map(|f| row.get(*f).and_then(|v| v.as_str()).map(str::to_string))
                    .collect();
                let Some(cells) = cells else {
                    return Err(invalid_data(format!(
                        "{} line {}: a row without {}",
                        path.display(),
                        n + 1,
                        fields.join(", ")
                    )));
                };
                each(cells)?;
            }
        }
    }
    Ok(())
}

/// Rewrite one report keeping its header and the complete rows of the `done` accounts.
/// Keep the complete rows of `path` whose account (the `account_id` column, or in JSON lines the value at
/// `pointer`) is done; a file that does not exist is left alone.
fn keep_rows(
    path: &Path,
    format: Format,
    done: &HashSet<String>,
    pointer: &str,
) -> std::io::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let tmp = path.with_file_name(format!(
        ".{}.resume",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let _ = std::fs::remove_file(&tmp);
    match format {
        Format::Csv => {
            let (mut r, header) = csv_rows(path, Rows::Interrupted)?;
            let id = header
                .iter()
                .position(|h| h == "account_id")
                .ok_or_else(|| {
                    invalid_data(format!("{} has no account_id column", path.display()))
                })?;
            let mut w = csv::WriterBuilder::new()
                .terminator(csv::Terminator::CRLF)
                .from_writer(BufWriter::new(create_private(&tmp)?));
            w.write_record(&header)?;
            for (n, rec) in r.records().enumerate() {
                let rec = whole_record(path, n, rec, &header)?;
                if rec.get(id).is_some_and(|a| done.contains(a)) {
                    w.write_record(&rec)?;
                }
            }
            w.flush()?;
        }
        Format::Jsonl => {
            let mut w = BufWriter::new(create_private(&tmp)?);
            for (n, line) in BufReader::new(trusted_rows(path, Rows::Interrupted)?)
                .lines()
                .enumerate()
            {
                let line = line?;
                let row: serde_json::Value = serde_json::from_str(&line)
                    .map_err(|e| invalid_data(format!("{} line {}: {e}", path.display(), n + 1)))?;
                let keep = row
                    .pointer(pointer)
                    .and_then(|v| v.as_str())
                    .is_some_and(|a| done.contains(a));
                if keep {
                    w.write_all(line.as_bytes())?;
                    w.write_all(b"\n")?;
                }
            }
            w.flush()?;
        }
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_files(dir: &Path, format: Format, accounts: &str, keys: &str) -> OutputPaths {
        let paths = OutputPaths::with_format(dir, "20260306_000000", format);
        for p in paths.all() {
            std::fs::write(p, "").unwrap();
        }
        if format == Format::Csv {
            for p in [&paths.users, &paths.events] {
                std::fs::write(p, "account_id\r\n").unwrap();
            }
        }
        std::fs::write(&paths.accounts, accounts).unwrap();
        std::fs::write(&paths.keys, keys).unwrap();
        paths
    }

    #[test]
    fn a_jsonl_resume_keeps_the_done_accounts_rows_and_drops_torn_lines() {
        let dir = tempfile::tempdir().unwrap();
        let paths = write_files(
            dir.path(),
            Format::Jsonl,
            "{\"account_id\":\"111111111111\",\"audit_status\":\"audited\"}\n{\"account_id\":\"222222222222\",\"audit_status\":\"partial\"}\n{\"account_id\":\"333333333333\",\"audit_status\":\"not_active\"}\n{\"account_id\":\"4444",
            "{\"account_id\":\"111111111111\",\"access_key_id\":\"AKIA1\"}\n{\"account_id\":\"222222222222\",\"access_key_id\":\"AKIA2\"}\n{\"account_id\":\"1111",
        );
        let resumed = prepare_resume(&paths, Format::Jsonl).unwrap();
        assert_eq!((resumed.audited, resumed.not_active), (1, 1));
        assert_eq!(
            std::fs::read_to_string(&paths.keys).unwrap(),
            "{\"account_id\":\"111111111111\",\"access_key_id\":\"AKIA1\"}\n"
        );
        assert_eq!(
            std::fs::read_to_string(&paths.accounts)
                .unwrap()
                .lines()
                .count(),
            2
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&paths.keys).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    // Story: a kill inside the last cell of a row leaves a row with every cell, the last one cut short; it
    // is dropped, so the account it closes is audited again rather than kept with a wrong count.
    #[test]
    fn a_row_torn_inside_its_last_cell_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let paths = write_files(
            dir.path(),
            Format::Csv,
            // 222222222222's row was cut inside its last cell ("12" became "1") and has no line break.
            "account_id,audit_status,events_other_sources\r\n111111111111,audited,0\r\n222222222222,audited,1",
            "account_id,access_key_id\r\n111111111111,AKIA1\r\n222222222222,AKIA2\r\n",
        );
        let resumed = prepare_resume(&paths, Format::Csv).unwrap();
        assert_eq!(resumed.audited, 1);
        assert!(resumed.done.contains("111111111111") && !resumed.done.contains("222222222222"));
        assert_eq!(
            std::fs::read_to_string(&paths.accounts).unwrap(),
            "account_id,audit_status,events_other_sources\r\n111111111111,audited,0\r\n"
        );
        assert_eq!(
            std::fs::read_to_string(&paths.keys).unwrap(),
            "account_id,access_key_id\r\n111111111111,AKIA1\r\n"
        );
    }
}
