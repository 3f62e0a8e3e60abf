//! The report: the rows the auditors produce (`Record`) and the one writer task that owns the four CSV
//! files of design §3. Auditors send records over a bounded channel; only this task touches the files, so
//! nothing guards them with a mutex and rows are never torn. Rows are written as they arrive and the files
//! are flushed after each account, so memory does not grow with the number of rows.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::config::{Format, Values};
use crate::risk::Flags;

/// Columns of `iam_audit_report_<stamp>.csv`: the seed's first, in its order, then ours.
pub const KEY_COLUMNS: [&str; 17] = [
    "account_id",
    "account_name",
    "username",
    "password_status",
    "password_last_used",
    "access_key_id",
    "status",
    "created_date",
    "last_used_date",
    "service_name",
    "mfa_status",
    "last_used_region",
    "key_age_days",
    "days_since_last_use",
    "mfa_devices",
    "risk",
    "source",
];

/// Columns of `cloudtrail_events_<stamp>.csv`.
pub const EVENT_COLUMNS: [&str; 11] = [
    "eventTime",
    "eventName",
    "username",
    "account_id",
    "account_name",
    "resources",
    "region",
    "event_id",
    "access_key_id",
    "source_ip_address",
    "event_source",
];

/// Columns of `accounts_<stamp>.csv`: design §3's, then one count per risk flag (`Flag::ALL` order),
/// named by the flag's code.
pub const ACCOUNT_COLUMNS: [&str; 27] = [
    "account_id",
    "account_name",
    "account_status",
    "audit_status",
    "iam_status",
    "cloudtrail_status",
    "users",
    "keys",
    "events",
    "error",
    "duration_s",
    "role_used",
    "ou_path",
    "strategy",
    "credential_report_time",
    "root_access_keys",
    "root_mfa",
    "root_access_key",
    "root_without_mfa",
    "root_without_hardware_mfa",
    "console_without_mfa",
    "key_created_with_user",
    "password_unused_45d",
    "key_unused_45d",
    "two_active_keys",
    "key_older_than_90d",
    "events_other_sources",
];

/// Columns of `users_<stamp>.csv`: one row per IAM user and one for the root user.
pub const USER_COLUMNS: [&str; 16] = [
    "account_id",
    "account_name",
    "username",
    "arn",
    "created",
    "password_enabled",
    "password_last_used",
    "mfa_active",
    "mfa_type",
    "mfa_devices",
    "active_keys",
    "oldest_active_key_age_days",
    "last_activity",
    "risk",
    "source",
    "note",
];

/// The user name of the root user's row, as the credential report names it.
pub const ROOT_USER: &str = "<root_account>";

/// Where an IAM row's facts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Per-user IAM calls.
    Api,
    /// The account's IAM credential report, plus the calls it lacks.
    CredentialReport,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Api => "api",
            Source::CredentialReport => "credential_report",
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
    /// `None` = never used; `Some(Err)` = GetAccessKeyLastUsed failed.
    pub last_used: Result<Option<LastUsed>, ()>,
    pub mfa: Mfa,
    pub mfa_devices: Option<usize>,
    pub key_age_days: Option<i64>,
    /// The key's flags and its user's.
    pub risk: Flags,
    pub source: Source,
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
    /// The user's flags and all its keys'.
    pub risk: Flags,
    pub source: Source,
    /// Why a value is `unknown` (the AWS error), or what the row stands for.
    pub note: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LastUsed {
    pub date: DateTime<Utc>,
    pub service: String,
    pub region: String,
    pub days_since: i64,
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
    pub flag_counts: [u64; 9],
    /// Events LookupEvents returned from other services than IAM, left out of the events report.
    pub events_other_sources: u64,
    /// The role the account was audited with, `caller` (the management account, with the caller's own
    /// credentials), or empty.
    pub role_used: String,
    /// The account's OU path (`Root/Workloads/Prod`), empty when the OU tree was not read.
    pub ou_path: String,
}

/// What travels from the auditors to the writer.
#[derive(Debug)]
pub enum Record {
    Key(KeyRow),
    User(UserRow),
    Event(EventRow),
    Account(AccountRow),
}

/// Where one account's auditors send their rows: the writer's channel, and counts of what was sent.
pub struct Sink {
    tx: mpsc::Sender<Record>,
    users: AtomicU64,
    keys: AtomicU64,
    events: AtomicU64,
    flags: [AtomicU64; 9],
    other_sources: AtomicU64,
    /// The account's users listed and written, when someone watches the run.
    live: Option<std::sync::Arc<UserProgress>>,
}

/// An account's users listed so far, and users whose rows are written: its progress, for a live display.
#[derive(Debug, Default)]
pub struct UserProgress {
    pub listed: AtomicU64,
    pub done: AtomicU64,
}

impl Sink {
    pub fn new(tx: mpsc::Sender<Record>) -> Sink {
        Sink::watched(tx, None)
    }

    /// A sink whose users are also counted in the account's live progress.
    pub fn watched(tx: mpsc::Sender<Record>, live: Option<std::sync::Arc<UserProgress>>) -> Sink {
        Sink {
            live,
            tx,
            users: AtomicU64::new(0),
            keys: AtomicU64::new(0),
            events: AtomicU64::new(0),
            flags: Default::default(),
            other_sources: AtomicU64::new(0),
        }
    }

    /// Send a row to the writer. `false` when the writer is gone (it failed; the run is ending).
    pub async fn send(&self, record: Record) -> bool {
        let counter = match &record {
            Record::Key(_) => Some(&self.keys),
            Record::Event(_) => Some(&self.events),
            Record::User(u) => {
                for f in u.risk.iter() {
                    self.flags[f as usize].fetch_add(1, Ordering::Relaxed);
                }
                if let Some(live) = &self.live {
                    if u.username != ROOT_USER {
                        live.done.fetch_add(1, Ordering::Relaxed);
                    }
                }
                None
            }
            Record::Account(_) => None,
        };
        if let Some(c) = counter {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.tx.send(record).await.is_ok()
    }

    /// Count users listed (they have rows only through their keys).
    pub fn count_users(&self, n: u64) {
        self.users.fetch_add(n, Ordering::Relaxed);
        if let Some(live) = &self.live {
            live.listed.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Count an event of another service than IAM, left out.
    pub fn count_other_source(&self) {
        self.other_sources.fetch_add(1, Ordering::Relaxed);
    }

    /// Events of other services left out so far.
    pub fn other_sources(&self) -> u64 {
        self.other_sources.load(Ordering::Relaxed)
    }

    /// Users (root included) carrying each flag so far, in `Flag::ALL` order.
    pub fn flag_counts(&self) -> [u64; 9] {
        std::array::from_fn(|i| self.flags[i].load(Ordering::Relaxed))
    }

    /// (users, keys, events) so far.
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.users.load(Ordering::Relaxed),
            self.keys.load(Ordering::Relaxed),
            self.events.load(Ordering::Relaxed),
        )
    }
}

/// RFC 3339 UTC with second precision, e.g. `2026-03-05T15:30:22Z` (design §3).
pub fn rfc3339(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The four output paths of one run.
#[derive(Debug, Clone)]
pub struct OutputPaths {
    pub keys: PathBuf,
    pub users: PathBuf,
    pub events: PathBuf,
    pub accounts: PathBuf,
}

impl OutputPaths {
    /// The CSV files of a stamp.
    pub fn new(dir: &Path, stamp: &str) -> OutputPaths {
        OutputPaths::with_format(dir, stamp, Format::Csv)
    }

    pub fn with_format(dir: &Path, stamp: &str, format: Format) -> OutputPaths {
        let ext = match format {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
        };
        OutputPaths {
            keys: dir.join(format!("iam_audit_report_{stamp}.{ext}")),
            users: dir.join(format!("users_{stamp}.{ext}")),
            events: dir.join(format!("cloudtrail_events_{stamp}.{ext}")),
            accounts: dir.join(format!("accounts_{stamp}.{ext}")),
        }
    }
}

/// One report file being written: CSV, or JSON lines with the same columns as keys.
enum Out {
    Csv(Box<csv::Writer<BufWriter<File>>>),
    Jsonl {
        out: BufWriter<File>,
        columns: &'static [&'static str],
    },
}

impl Out {
    fn new(file: File, format: Format, columns: &'static [&'static str]) -> Out {
        let buf = BufWriter::with_capacity(64 * 1024, file);
        match format {
            Format::Csv => Out::Csv(Box::new(
                csv::WriterBuilder::new()
                    .terminator(csv::Terminator::CRLF)
                    .from_writer(buf),
            )),
            Format::Jsonl => Out::Jsonl { out: buf, columns },
        }
    }

    /// The header row (CSV only: a JSON line names its fields).
    fn header(&mut self, columns: &[&str]) -> csv::Result<()> {
        match self {
            Out::Csv(w) => w.write_record(columns),
            Out::Jsonl { .. } => Ok(()),
        }
    }

    /// One row. Formula escaping is for spreadsheets, so CSV only.
    fn row(&mut self, escape: bool, cells: &[&str]) -> csv::Result<()> {
        match self {
            Out::Csv(w) => {
                for cell in cells {
                    if escape {
                        w.write_field(escape_formula(cell).as_ref())?;
                    } else {
                        w.write_field(cell)?;
                    }
                }
                // An empty record ends the one whose fields were written above.
                w.write_record(None::<&[u8]>)
            }
            Out::Jsonl { out, columns } => {
                // The columns in the CSV's order (a JSON map would sort them).
                use std::io::Write;
                let mut line = String::from("{");
                for (i, (c, v)) in columns.iter().zip(cells).enumerate() {
                    if i > 0 {
                        line.push(',');
                    }
                    line.push_str(&serde_json::to_string(c).map_err(std::io::Error::from)?);
                    line.push(':');
                    line.push_str(&serde_json::to_string(v).map_err(std::io::Error::from)?);
                }
                line.push_str("}\n");
                out.write_all(line.as_bytes())?;
                Ok(())
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        use std::io::Write;
        match self {
            Out::Csv(w) => w.flush(),
            Out::Jsonl { out, .. } => out.flush(),
        }
    }
}

/// Totals the writer counted, for the summary.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Written {
    pub keys: u64,
    pub users: u64,
    pub events: u64,
    pub accounts: u64,
}

/// The `YYYYMMDD_HHMMSS` start of a stamp (a suffix `_2`, `_3`, … after it), as a UTC time.
pub fn stamp_time(stamp: &str) -> Option<DateTime<Utc>> {
    let head = stamp.get(..15)?;
    chrono::NaiveDateTime::parse_from_str(head, "%Y%m%d_%H%M%S")
        .ok()
        .map(|t| t.and_utc())
}

/// The latest run in `dir`: the stamp and format of its newest accounts report (CSV or JSON lines) whose
/// four files are there (never a symlink), or `None`.
pub fn latest_run(dir: &Path) -> std::io::Result<Option<(String, Format, OutputPaths)>> {
    let mut stamps: Vec<(String, Format)> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_symlink() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(rest) = name.strip_prefix("accounts_") else {
            continue;
        };
        for (ext, format) in [(".csv", Format::Csv), (".jsonl", Format::Jsonl)] {
            if let Some(stamp) = rest.strip_suffix(ext) {
                if stamp_time(stamp).is_some() {
                    stamps.push((stamp.to_string(), format));
                }
            }
        }
    }
    // Newest first: by time, then by suffix number.
    stamps.sort_by_key(|(s, _)| {
        let n: u32 = s.get(16..).and_then(|n| n.parse().ok()).unwrap_or(1);
        (s.get(..15).unwrap_or("").to_string(), n)
    });
    for (stamp, format) in stamps.into_iter().rev() {
        let paths = OutputPaths::with_format(dir, &stamp, format);
        let all = [&paths.keys, &paths.users, &paths.events, &paths.accounts];
        if all
            .iter()
            .all(|p| p.symlink_metadata().is_ok_and(|m| m.file_type().is_file()))
        {
            return Ok(Some((stamp, format, paths)));
        }
    }
    Ok(None)
}

/// What an interrupted run had finished: the accounts not to audit again.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resumed {
    /// Accounts `audited` or `not_active` in the run's accounts report.
    pub done: std::collections::HashSet<String>,
    pub audited: u64,
    pub not_active: u64,
}

/// Prepare an interrupted run's files to be continued: the accounts that were `audited` (or `not_active`)
/// keep their rows; every row of the others (`partial`, `skipped`, or no row at all) is removed from the
/// four files, to be written again when they are audited again. A row torn by a kill is dropped. Each file
/// is rewritten into a new private file and renamed over the old one.
pub fn prepare_resume(paths: &OutputPaths, format: Format) -> std::io::Result<Resumed> {
    let mut resumed = Resumed::default();
    for row in read_rows(&paths.accounts, format, &["account_id", "audit_status"])? {
        match row[1].as_str() {
            "audited" => resumed.audited += 1,
            "not_active" => resumed.not_active += 1,
            _ => continue,
        }
        resumed.done.insert(row[0].clone());
    }
    for path in [&paths.keys, &paths.users, &paths.events, &paths.accounts] {
        keep_rows(path, format, &resumed.done)?;
    }
    Ok(resumed)
}

fn invalid_data(m: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, m)
}

/// A CSV report opened for reading (rows of any length: a torn last row is read, to be dropped), and its
/// header.
fn csv_report(path: &Path) -> std::io::Result<(csv::Reader<File>, csv::StringRecord)> {
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| invalid_data(format!("{}: {e}", path.display())))?;
    let header = r
        .headers()
        .map_err(|e| invalid_data(e.to_string()))?
        .clone();
    Ok((r, header))
}

/// The `fields` of every complete row of a report (a row torn by a kill is left out).
fn read_rows(path: &Path, format: Format, fields: &[&str]) -> std::io::Result<Vec<Vec<String>>> {
    let mut rows = Vec::new();
    match format {
        Format::Csv => {
            let (mut r, header) = csv_report(path)?;
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
            for rec in r.records() {
                let Ok(rec) = rec else { continue };
                if rec.len() == header.len() {
                    rows.push(at.iter().map(|&i| rec[i].to_string()).collect());
                }
            }
        }
        Format::Jsonl => {
            for line in std::fs::read_to_string(path)?.lines() {
                let Ok(serde_json::Value::Object(row)) = serde_json::from_str(line) else {
                    continue;
                };
                let cells: Option<Vec<String>> = fields
                    .iter()
                    .map(|f| row.get(*f).and_then(|v| v.as_str()).map(str::to_string))
                    .collect();
                rows.extend(cells);
            }
        }
    }
    Ok(rows)
}

/// Rewrite one report keeping its header and the complete rows of the `done` accounts.
fn keep_rows(
    path: &Path,
    format: Format,
    done: &std::collections::HashSet<String>,
) -> std::io::Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.resume",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let _ = std::fs::remove_file(&tmp);
    match format {
        Format::Csv => {
            let (mut r, header) = csv_report(path)?;
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
            for rec in r.records() {
                let Ok(rec) = rec else { continue };
                if rec.len() == header.len() && rec.get(id).is_some_and(|a| done.contains(a)) {
                    w.write_record(&rec)?;
                }
            }
            w.flush()?;
        }
        Format::Jsonl => {
            use std::io::Write;
            let mut w = BufWriter::new(create_private(&tmp)?);
            for line in std::fs::read_to_string(path)?.lines() {
                let keep = match serde_json::from_str(line) {
                    Ok(serde_json::Value::Object(row)) => row
                        .get("account_id")
                        .and_then(|v| v.as_str())
                        .is_some_and(|a| done.contains(a)),
                    _ => false,
                };
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

/// Open an existing report to append to it (never through a symlink).
fn append(path: &Path, format: Format, columns: &'static [&'static str]) -> std::io::Result<Out> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    let file = options.open(path)?;
    Ok(Out::new(file, format, columns))
}

/// The one owner of the four report files.
pub struct Writer {
    keys: Out,
    users: Out,
    events: Out,
    accounts: Out,
    values: Values,
    escape: bool,
    written: Written,
}

/// Prefix a cell that a spreadsheet would run as a formula (OWASP "CSV injection").
pub fn escape_formula(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

impl Values {
    fn password(self, p: Password) -> &'static str {
        match (self, p) {
            (Values::English, Password::Configured) => "Configured",
            (Values::English, Password::NotConfigured) => "Not configured",
            (Values::LegacySpanish, Password::Configured) => "Configurada",
            (Values::LegacySpanish, Password::NotConfigured) => "No configurada",
            (_, Password::Unknown) => "Unknown",
        }
    }
    fn never(self) -> &'static str {
        match self {
            Values::English => "Never",
            Values::LegacySpanish => "Nunca",
        }
    }
    fn never_used(self) -> &'static str {
        match self {
            Values::English => "Never used",
            Values::LegacySpanish => "Nunca utilizada",
        }
    }
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

/// Create a new file readable by its owner alone (0600): never an existing file, and never through a
/// symlink (`create_new` is O_EXCL, which does not follow one; O_NOFOLLOW says so again). The reports hold
/// the organization's credential inventory.
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

fn create(path: &Path, format: Format, columns: &'static [&'static str]) -> std::io::Result<Out> {
    Ok(Out::new(create_private(path)?, format, columns))
}

/// Stamps tried after the run's own, when its files exist already (a second run in the same second): the
/// stamp gets `_2`, `_3`, … A file is never overwritten.
const MAX_STAMP_SUFFIX: u32 = 100;

impl Writer {
    /// Create the four files of the run, new and private, and write their headers. When a file of this
    /// stamp exists (or a symlink squats its name), the four take the next free suffix together.
    pub fn create_new(
        dir: &Path,
        stamp: &str,
        format: Format,
        values: Values,
        escape: bool,
    ) -> std::io::Result<(Writer, OutputPaths)> {
        for n in 1..=MAX_STAMP_SUFFIX {
            let stamp = if n == 1 {
                stamp.to_string()
            } else {
                format!("{stamp}_{n}")
            };
            let paths = OutputPaths::with_format(dir, &stamp, format);
            match Writer::create(&paths, format, values, escape) {
                Ok(w) => return Ok((w, paths)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!(
                "the reports of stamp {stamp} exist with every suffix up to _{MAX_STAMP_SUFFIX}"
            ),
        ))
    }

    /// Continue a run's four files (prepared by `prepare_resume`): rows are appended after theirs.
    pub fn open_append(
        paths: &OutputPaths,
        format: Format,
        values: Values,
        escape: bool,
    ) -> std::io::Result<Writer> {
        Ok(Writer {
            keys: append(&paths.keys, format, &KEY_COLUMNS)?,
            users: append(&paths.users, format, &USER_COLUMNS)?,
            events: append(&paths.events, format, &EVENT_COLUMNS)?,
            accounts: append(&paths.accounts, format, &ACCOUNT_COLUMNS)?,
            values,
            escape,
            written: Written::default(),
        })
    }

    /// Create the four files at `paths` and write their headers. If one exists, those created here are
    /// removed again (they are new and empty) and the error is returned.
    fn create(
        paths: &OutputPaths,
        format: Format,
        values: Values,
        escape: bool,
    ) -> std::io::Result<Writer> {
        let all = [&paths.keys, &paths.users, &paths.events, &paths.accounts];
        let columns: [&'static [&'static str]; 4] = [
            &KEY_COLUMNS,
            &USER_COLUMNS,
            &EVENT_COLUMNS,
            &ACCOUNT_COLUMNS,
        ];
        let mut files = Vec::new();
        for (path, columns) in all.into_iter().zip(columns) {
            match create(path, format, columns) {
                Ok(f) => files.push(f),
                Err(e) => {
                    for created in &all[..files.len()] {
                        let _ = std::fs::remove_file(created);
                    }
                    return Err(e);
                }
            }
        }
        let mut files = files.into_iter();
        let mut next = || files.next().expect("four files");
        let mut w = Writer {
            keys: next(),
            users: next(),
            events: next(),
            accounts: next(),
            values,
            escape,
            written: Written::default(),
        };
        w.keys.header(&KEY_COLUMNS)?;
        w.users.header(&USER_COLUMNS)?;
        w.events.header(&EVENT_COLUMNS)?;
        w.accounts.header(&ACCOUNT_COLUMNS)?;
        w.flush()?;
        Ok(w)
    }

    fn row<const N: usize>(out: &mut Out, escape: bool, cells: [&str; N]) -> csv::Result<()> {
        out.row(escape, &cells)
    }

    pub fn write(&mut self, record: &Record) -> csv::Result<()> {
        let v = self.values;
        match record {
            Record::Key(k) => {
                let (last_date, service, region, since) = match &k.last_used {
                    Ok(Some(u)) => (
                        rfc3339(&u.date),
                        u.service.clone(),
                        u.region.clone(),
                        u.days_since.to_string(),
                    ),
                    Ok(None) => (
                        v.never_used().into(),
                        "N/A".into(),
                        "N/A".into(),
                        String::new(),
                    ),
                    Err(()) => (
                        "Unknown".into(),
                        "Unknown".into(),
                        "Unknown".into(),
                        String::new(),
                    ),
                };
                let mfa_devices = k.mfa_devices.map(|n| n.to_string()).unwrap_or_default();
                let age = k.key_age_days.map(|n| n.to_string()).unwrap_or_default();
                Self::row(
                    &mut self.keys,
                    self.escape,
                    [
                        &k.account_id,
                        &k.account_name,
                        &k.username,
                        v.password(k.password),
                        &k.password_last_used
                            .as_ref()
                            .map_or_else(|| v.never().to_string(), rfc3339),
                        &k.access_key_id,
                        &k.status,
                        &k.created_date.as_ref().map(rfc3339).unwrap_or_default(),
                        &last_date,
                        &service,
                        k.mfa.as_str(),
                        &region,
                        &age,
                        &since,
                        &mfa_devices,
                        &k.risk.cell(),
                        k.source.as_str(),
                    ],
                )?;
                self.written.keys += 1;
            }
            Record::User(u) => {
                let never = || v.never().to_string();
                let root = u.username == ROOT_USER;
                Self::row(
                    &mut self.users,
                    self.escape,
                    [
                        &u.account_id,
                        &u.account_name,
                        &u.username,
                        &u.arn,
                        &u.created.as_ref().map(rfc3339).unwrap_or_default(),
                        match u.password {
                            Password::Configured => "true",
                            Password::NotConfigured => "false",
                            Password::Unknown if root => "not_supported",
                            Password::Unknown => "unknown",
                        },
                        &match (u.password, u.password_last_used) {
                            (_, Some(t)) => rfc3339(&t),
                            (Password::NotConfigured, None) => "N/A".to_string(),
                            (_, None) => never(),
                        },
                        match u.mfa_active {
                            Some(true) => "true",
                            Some(false) => "false",
                            None => "unknown",
                        },
                        if u.mfa_active.is_none() {
                            "unknown"
                        } else {
                            u.mfa.as_str()
                        },
                        &u.mfa_devices.map(|n| n.to_string()).unwrap_or_default(),
                        &u.active_keys
                            .map_or_else(|| "unknown".to_string(), |n| n.to_string()),
                        &u.oldest_active_key_age_days
                            .map(|n| n.to_string())
                            .unwrap_or_default(),
                        &u.last_activity.as_ref().map_or_else(never, rfc3339),
                        &u.risk.cell(),
                        u.source.as_str(),
                        &u.note,
                    ],
                )?;
                self.written.users += 1;
            }
            Record::Event(e) => {
                Self::row(
                    &mut self.events,
                    self.escape,
                    [
                        &e.event_time.as_ref().map(rfc3339).unwrap_or_default(),
                        &e.event_name,
                        &e.username,
                        &e.account_id,
                        &e.account_name,
                        &e.resources,
                        &e.region,
                        &e.event_id,
                        &e.access_key_id,
                        &e.source_ip_address,
                        &e.event_source,
                    ],
                )?;
                self.written.events += 1;
            }
            Record::Account(a) => {
                Self::row(
                    &mut self.accounts,
                    self.escape,
                    [
                        &a.account_id,
                        &a.account_name,
                        &a.account_status,
                        a.audit_status.as_str(),
                        a.iam_status.as_str(),
                        a.cloudtrail_status.as_str(),
                        &a.users.to_string(),
                        &a.keys.to_string(),
                        &a.events.to_string(),
                        &a.error,
                        &format!("{:.3}", a.duration_s),
                        &a.role_used,
                        &a.ou_path,
                        a.strategy.map(Source::as_str).unwrap_or_default(),
                        &a.credential_report_time
                            .as_ref()
                            .map(rfc3339)
                            .unwrap_or_default(),
                        &a.root_access_keys,
                        &a.root_mfa,
                        &a.flag_counts[0].to_string(),
                        &a.flag_counts[1].to_string(),
                        &a.flag_counts[2].to_string(),
                        &a.flag_counts[3].to_string(),
                        &a.flag_counts[4].to_string(),
                        &a.flag_counts[5].to_string(),
                        &a.flag_counts[6].to_string(),
                        &a.flag_counts[7].to_string(),
                        &a.flag_counts[8].to_string(),
                        &a.events_other_sources.to_string(),
                    ],
                )?;
                self.written.accounts += 1;
                // An account is complete: make its rows durable before the next one.
                self.flush()?;
            }
        }
        Ok(())
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.keys.flush()?;
        self.users.flush()?;
        self.events.flush()?;
        self.accounts.flush()
    }
}

/// The writer task: drain the channel until every sender is gone, then flush.
pub async fn run_writer(
    mut writer: Writer,
    mut rx: mpsc::Receiver<Record>,
) -> std::io::Result<Written> {
    // CSV writes are small buffered memcpys; the flush per account is one write(2) per file. On an error
    // the receiver is dropped, so the auditors' sends fail and they stop.
    while let Some(record) = rx.recv().await {
        writer.write(&record).map_err(std::io::Error::other)?;
    }
    writer.flush()?;
    Ok(writer.written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accounts_report_counts_each_flag_under_its_code() {
        let codes: Vec<&str> = crate::risk::Flag::ALL.iter().map(|f| f.code()).collect();
        assert_eq!(&ACCOUNT_COLUMNS[17..26], codes.as_slice());
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
        for stamp in ["20260305_153022", "20260305_153022_2", "20260304_000000"] {
            Writer::create_new(dir.path(), stamp, Format::Csv, Values::English, true).unwrap();
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
        Writer::create_new(
            dir.path(),
            "20260306_000000",
            Format::Jsonl,
            Values::English,
            true,
        )
        .unwrap();
        let (stamp, format, paths) = latest_run(dir.path()).unwrap().unwrap();
        assert_eq!((stamp.as_str(), format), ("20260306_000000", Format::Jsonl));
        assert!(paths.accounts.ends_with("accounts_20260306_000000.jsonl"));
    }

    #[test]
    fn a_jsonl_resume_keeps_the_done_accounts_rows_and_drops_torn_lines() {
        let dir = tempfile::tempdir().unwrap();
        let (_, paths) = Writer::create_new(
            dir.path(),
            "20260306_000000",
            Format::Jsonl,
            Values::English,
            true,
        )
        .unwrap();
        std::fs::write(
            &paths.accounts,
            "{\"account_id\":\"111111111111\",\"audit_status\":\"audited\"}\n{\"account_id\":\"222222222222\",\"audit_status\":\"partial\"}\n{\"account_id\":\"333333333333\",\"audit_status\":\"not_active\"}\n{\"account_id\":\"4444",
        )
        .unwrap();
        std::fs::write(
            &paths.keys,
            "{\"account_id\":\"111111111111\",\"access_key_id\":\"AKIA1\"}\n{\"account_id\":\"222222222222\",\"access_key_id\":\"AKIA2\"}\n{\"account_id\":\"1111",
        )
        .unwrap();
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

    #[test]
    fn timestamps_are_rfc3339_seconds_utc() {
        let t = DateTime::from_timestamp(1_772_724_622, 999).unwrap();
        assert_eq!(rfc3339(&t), "2026-03-05T15:30:22Z");
    }

    #[test]
    fn formula_like_cells_get_a_quote() {
        for cell in ["=SUM(A1)", "+1", "-2", "@cmd", "\tx", "\rx"] {
            assert_eq!(escape_formula(cell), format!("'{cell}"));
        }
        for cell in ["alice", "", "N/A", "2026-03-05T15:30:22Z", "a=b", "ünïcode"] {
            assert_eq!(escape_formula(cell), cell);
        }
    }

    fn key() -> KeyRow {
        KeyRow {
            account_id: "111111111111".into(),
            account_name: "=Prod, \"main\"".into(),
            username: "-bob".into(),
            password: Password::Configured,
            password_last_used: None,
            access_key_id: "AKIAEXAMPLE".into(),
            status: "Active".into(),
            created_date: DateTime::from_timestamp(1_767_225_600, 0),
            last_used: Ok(None),
            mfa: Mfa::Hardware,
            mfa_devices: Some(2),
            key_age_days: Some(63),
            risk: Flags::default(),
            source: Source::Api,
        }
    }

    fn write_one(values: Values, escape: bool) -> String {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, paths) =
            Writer::create_new(dir.path(), "20260305_153022", Format::Csv, values, escape).unwrap();
        w.write(&Record::Key(key())).unwrap();
        w.flush().unwrap();
        std::fs::read_to_string(&paths.keys).unwrap()
    }

    #[test]
    fn key_row_english_escaped() {
        let text = write_one(Values::English, true);
        let row = text.lines().nth(1).unwrap();
        assert_eq!(
            row,
            "111111111111,\"'=Prod, \"\"main\"\"\",'-bob,Configured,Never,AKIAEXAMPLE,Active,2026-01-01T00:00:00Z,Never used,N/A,Hardware,N/A,63,,2,,api"
        );
        assert!(text.starts_with("account_id,account_name,username,password_status,password_last_used,access_key_id,status,created_date,last_used_date,service_name,mfa_status,"));
    }

    #[test]
    fn key_row_legacy_spanish_unescaped() {
        let text = write_one(Values::LegacySpanish, false);
        let row = text.lines().nth(1).unwrap();
        assert_eq!(
            row,
            "111111111111,\"=Prod, \"\"main\"\"\",-bob,Configurada,Nunca,AKIAEXAMPLE,Active,2026-01-01T00:00:00Z,Nunca utilizada,N/A,Hardware,N/A,63,,2,,api"
        );
    }
}
