//! The run's files on disk: the output directory (created 0700), files created new and private (0600,
//! never over an existing file, never through a symlink), the stamp that names a run's files and its
//! suffixes when the names are taken, and finding the latest run in a directory.

use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::config::Format;

use super::tables::RunFile;

/// Create the output directory if it is missing (0700: the reports are the organization's credential
/// inventory) and check it can take a new file, before any AWS call is made.
pub fn prepare_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)?;
    let probe = dir.join(format!(".iam-audit-probe-{}", std::process::id()));
    create_private(&probe)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Create a new file readable by its owner alone (0600): never an existing file, and never through a
/// symlink (`create_new` is O_EXCL, which does not follow one; O_NOFOLLOW says so again).
pub fn create_private(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// Open an existing report to append to it (never through a symlink).
pub fn open_append(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// The file paths of one run.
#[derive(Debug, Clone)]
pub struct OutputPaths {
    pub keys: PathBuf,
    pub users: PathBuf,
    pub events: PathBuf,
    pub accounts: PathBuf,
    pub findings: PathBuf,
    pub changes: PathBuf,
    pub summary: PathBuf,
    pub credentials: PathBuf,
    pub key_history: PathBuf,
    /// The findings' history (`history_name`): state the next run reads, not a report.
    pub history: PathBuf,
}

/// The history file of a run: every finding's first and last sighting, resolutions and Security Hub
/// state, carried from run to run. A dotfile: the run's state, beside its nine reports.
pub fn history_name(stamp: &str) -> String {
    format!(".iam-audit-history_{stamp}.jsonl")
}

impl OutputPaths {
    /// The CSV files of a stamp.
    pub fn new(dir: &Path, stamp: &str) -> OutputPaths {
        OutputPaths::with_format(dir, stamp, Format::Csv)
    }

    pub fn with_format(dir: &Path, stamp: &str, format: Format) -> OutputPaths {
        let path = |r: RunFile| dir.join(r.file_name(stamp, format));
        OutputPaths {
            keys: path(RunFile::Keys),
            users: path(RunFile::Users),
            events: path(RunFile::Events),
            accounts: path(RunFile::Accounts),
            findings: path(RunFile::Findings),
            changes: path(RunFile::Changes),
            summary: path(RunFile::Summary),
            credentials: path(RunFile::Credentials),
            key_history: path(RunFile::KeyHistory),
            history: dir.join(history_name(stamp)),
        }
    }

    /// The path of one file.
    pub fn of(&self, r: RunFile) -> &Path {
        match r {
            RunFile::Keys => &self.keys,
            RunFile::Users => &self.users,
            RunFile::Events => &self.events,
            RunFile::Accounts => &self.accounts,
            RunFile::Findings => &self.findings,
            RunFile::Changes => &self.changes,
            RunFile::Summary => &self.summary,
            RunFile::Credentials => &self.credentials,
            RunFile::KeyHistory => &self.key_history,
        }
    }

    /// The four tabular reports, which every run has.
    pub fn all(&self) -> [&Path; 4] {
        RunFile::ALL.map(|r| self.of(r))
    }

    /// The stamp these paths are of.
    pub fn stamp(&self) -> String {
        let name = self
            .accounts
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        let rest = name
            .strip_prefix(RunFile::Accounts.prefix())
            .unwrap_or(&name);
        rest.rsplit_once('.').map_or(rest, |(s, _)| s).to_string()
    }
}

/// Stamps tried after the run's own, when its files exist already (a second run in the same second): the
/// stamp gets `_2`, `_3`, … A file is never overwritten.
pub const MAX_STAMP_SUFFIX: u32 = 100;

/// Create the files `names(stamp)` of the run's stamp, all new and private. When one of the names is taken
/// (or a symlink squats it), every file takes the stamp's next free suffix together; the files created
/// for a taken stamp are removed again (they are new and empty). Returns the stamp used and the files, in
/// the order of `names`.
pub fn create_set(
    dir: &Path,
    stamp: &str,
    names: impl Fn(&str) -> Vec<String>,
) -> std::io::Result<(String, Vec<File>)> {
    for n in 1..=MAX_STAMP_SUFFIX {
        let stamp = if n == 1 {
            stamp.to_string()
        } else {
            format!("{stamp}_{n}")
        };
        let paths: Vec<PathBuf> = names(&stamp).iter().map(|name| dir.join(name)).collect();
        let mut files = Vec::new();
        let mut taken = None;
        for path in &paths {
            match create_private(path) {
                Ok(f) => files.push(f),
                Err(e) => {
                    taken = Some(e);
                    break;
                }
            }
        }
        match taken {
            None => return Ok((stamp, files)),
            Some(e) => {
                for created in &paths[..files.len()] {
                    let _ = std::fs::remove_file(created);
                }
                if e.kind() != std::io::ErrorKind::AlreadyExists {
                    return Err(e);
                }
            }
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        format!("the reports of stamp {stamp} exist with every suffix up to _{MAX_STAMP_SUFFIX}"),
    ))
}

/// The `YYYYMMDD_HHMMSS` start of a stamp (a suffix `_2`, `_3`, … after it), as a UTC time.
pub fn stamp_time(stamp: &str) -> Option<DateTime<Utc>> {
    let head = stamp.get(..15)?;
    chrono::NaiveDateTime::parse_from_str(head, "%Y%m%d_%H%M%S")
        .ok()
        .map(|t| t.and_utc())
}

/// The order of two stamps: by time, then by suffix number (`_2`, `_3`, …).
fn stamp_order(stamp: &str) -> (String, u32) {
    let n: u32 = stamp.get(16..).and_then(|n| n.parse().ok()).unwrap_or(1);
    (stamp.get(..15).unwrap_or("").to_string(), n)
}

/// The runs in `dir`, newest first: the stamp and format of each accounts report (CSV or JSON lines)
/// whose four reports are there (never a symlink).
fn runs(dir: &Path) -> std::io::Result<Vec<(String, Format, OutputPaths)>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            names.push(entry.file_name().to_string_lossy().to_string());
        }
    }
    Ok(runs_among(&names)
        .into_iter()
        .map(|(stamp, format)| {
            let paths = OutputPaths::with_format(dir, &stamp, format);
            (stamp, format, paths)
        })
        .collect())
}

/// The runs among file names (a directory's, or an S3 prefix's), newest first: the stamp and format of
/// each accounts report whose three sibling reports are among them too.
pub fn runs_among(names: &[String]) -> Vec<(String, Format)> {
    let have: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
    let mut stamps: Vec<(String, Format)> = Vec::new();
    for name in names {
        let Some(rest) = name.strip_prefix(RunFile::Accounts.prefix()) else {
            continue;
        };
        for format in [Format::Csv, Format::Jsonl] {
            if let Some(stamp) = rest
                .strip_suffix(format.as_str())
                .and_then(|s| s.strip_suffix('.'))
            {
                let complete = [RunFile::Keys, RunFile::Users, RunFile::Events]
                    .iter()
                    .all(|r| have.contains(r.file_name(stamp, format).as_str()));
                if stamp_time(stamp).is_some() && complete {
                    stamps.push((stamp.to_string(), format));
                }
            }
        }
    }
    stamps.sort_by_key(|(s, _)| std::cmp::Reverse(stamp_order(s)));
    stamps
}

/// Whether `stamp` is older than `than` (by time, then suffix).
pub fn stamp_before(stamp: &str, than: &str) -> bool {
    stamp_order(stamp) < stamp_order(than)
}

/// The run a user names: a directory (its latest run), a report file of the run, or `DIR/STAMP`.
/// A run found on disk: its stamp, its format and its files.
pub type Run = (String, Format, OutputPaths);

pub fn find_run(arg: &Path) -> std::io::Result<Option<Run>> {
    if arg.is_dir() {
        return latest_run(arg);
    }
    let dir = arg
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = arg
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    // A report file: its stamp is between its prefix and its extension.
    let stamp = RunFile::FILES
        .iter()
        .find_map(|r| name.strip_prefix(r.prefix()))
        .map(|rest| rest.split('.').next().unwrap_or(rest).to_string())
        .unwrap_or(name);
    if stamp_time(&stamp).is_none() || !dir.is_dir() {
        return Ok(None);
    }
    Ok(runs(dir)?.into_iter().find(|(s, _, _)| *s == stamp))
}

/// How many runs `dir` holds (none when it does not exist).
pub fn run_count(dir: &Path) -> usize {
    runs(dir).map_or(0, |r| r.len())
}

/// The latest run in `dir`, or `None`.
pub fn latest_run(dir: &Path) -> std::io::Result<Option<Run>> {
    Ok(runs(dir)?.into_iter().next())
}

/// The latest run in `dir` older than the run of `stamp` (which may not exist yet), or `None`.
pub fn latest_run_before(
    dir: &Path,
    stamp: &str,
) -> std::io::Result<Option<(String, Format, OutputPaths)>> {
    if !dir.exists() {
        return Ok(None);
    }
    let this = stamp_order(stamp);
    Ok(runs(dir)?
        .into_iter()
        .find(|(s, _, _)| stamp_order(s) < this))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::rfc3339;

    fn four(dir: &Path, stamp: &str, format: Format) -> String {
        create_set(dir, stamp, |s| RunFile::file_names(s, format))
            .unwrap()
            .0
    }

    #[test]
    fn the_latest_run_is_found_by_its_stamp() {
        assert_eq!(
            stamp_time("20260305_153022_2").map(|t| rfc3339(&t)),
            Some("2026-03-05T15:30:22Z".to_string())
        );
        assert_eq!(stamp_time("2026"), None);
        let dir = tempfile::tempdir().unwrap();
        assert!(latest_run(dir.path()).unwrap().is_none());
        for stamp in ["20260305_153022", "20260305_153022", "20260304_000000"] {
            four(dir.path(), stamp, Format::Csv);
        }
        // The second run of the newest second; a run missing a file is not one.
        assert_eq!(
            latest_run(dir.path()).unwrap().unwrap().0,
            "20260305_153022_2"
        );
        std::fs::remove_file(dir.path().join("users_20260305_153022_2.csv")).unwrap();
        assert_eq!(
            latest_run(dir.path()).unwrap().unwrap().0,
            "20260305_153022"
        );
        // A newer JSON-lines run is the latest, and is resumed as JSON lines.
        four(dir.path(), "20260306_000000", Format::Jsonl);
        let (stamp, format, paths) = latest_run(dir.path()).unwrap().unwrap();
        assert_eq!((stamp.as_str(), format), ("20260306_000000", Format::Jsonl));
        assert!(paths.accounts.ends_with("accounts_20260306_000000.jsonl"));
        // The run before a given one.
        let before = |s: &str| latest_run_before(dir.path(), s).unwrap().map(|r| r.0);
        assert_eq!(
            before("20260306_000000").as_deref(),
            Some("20260305_153022")
        );
        assert_eq!(
            before("20260305_153022").as_deref(),
            Some("20260304_000000")
        );
        assert_eq!(before("20260304_000000"), None);
        assert_eq!(
            before("20270101_000000").as_deref(),
            Some("20260306_000000")
        );
    }
}
