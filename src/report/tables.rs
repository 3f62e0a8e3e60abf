//! The four reports of design §3 as outputs: which records each takes, its columns, and the cells of a row
//! (the seed's values, or its Spanish ones with `legacy_values = "es"`).

use std::fmt::{self, Display};

use crate::config::Values;
use crate::record::{
    AccountRow, EventRow, KeyRow, LastUse, Password, Record, Rfc3339, Source, UserRow,
};

use super::columns::{
    ACCOUNT_COLUMNS, CHANGE_COLUMNS, CREDENTIAL_COLUMNS, EVENT_COLUMNS, KEY_COLUMNS,
    KEY_HISTORY_COLUMNS, USER_COLUMNS,
};
use super::credentials::{credential_row, history_row, Count, CreatedBy};
use super::table::{Opt, Table, Time};
use super::Output;

/// The files of a run: the four reports, then the findings, the changes and the summary page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunFile {
    Keys,
    Users,
    Events,
    Accounts,
    Findings,
    Changes,
    Summary,
    Credentials,
    KeyHistory,
}

impl RunFile {
    /// The four tabular reports of design §3.
    pub const ALL: [RunFile; 4] = [
        RunFile::Keys,
        RunFile::Users,
        RunFile::Events,
        RunFile::Accounts,
    ];
    /// Every file of a run.
    pub const FILES: [RunFile; 9] = [
        RunFile::Keys,
        RunFile::Users,
        RunFile::Events,
        RunFile::Accounts,
        RunFile::Findings,
        RunFile::Changes,
        RunFile::Summary,
        RunFile::Credentials,
        RunFile::KeyHistory,
    ];

    /// The file name's prefix, before the stamp.
    pub fn prefix(self) -> &'static str {
        match self {
            RunFile::Keys => "iam_audit_report_",
            RunFile::Users => "users_",
            RunFile::Events => "cloudtrail_events_",
            RunFile::Accounts => "accounts_",
            RunFile::Findings => "findings_",
            RunFile::Changes => "changes_",
            RunFile::Summary => "summary_",
            RunFile::Credentials => "credentials_",
            RunFile::KeyHistory => "key_history_",
        }
    }

    /// The file's name in a run of `stamp`.
    pub fn file_name(self, stamp: &str, format: crate::config::Format) -> String {
        let ext = match self {
            RunFile::Findings => "ocsf.jsonl",
            RunFile::Summary => "html",
            _ => format.as_str(),
        };
        format!("{}{stamp}.{ext}", self.prefix())
    }

    /// Every file name of a stamp, in `FILES` order.
    pub fn file_names(stamp: &str, format: crate::config::Format) -> Vec<String> {
        RunFile::FILES
            .iter()
            .map(|r| r.file_name(stamp, format))
            .collect()
    }

    /// The columns of a tabular file (none for the findings and the page).
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            RunFile::Keys => &KEY_COLUMNS,
            RunFile::Users => &USER_COLUMNS,
            RunFile::Events => &EVENT_COLUMNS,
            RunFile::Accounts => &ACCOUNT_COLUMNS,
            RunFile::Changes => &CHANGE_COLUMNS,
            RunFile::Credentials => &CREDENTIAL_COLUMNS,
            RunFile::KeyHistory => &KEY_HISTORY_COLUMNS,
            RunFile::Findings | RunFile::Summary => &[],
        }
    }
}

/// One of the four reports, written as its records arrive.
pub struct TableOutput {
    report: RunFile,
    table: Table,
    values: Values,
    /// The accounts report's `security_hub` cell as the audit writes it: `off`, or `pending` until the
    /// import after the run fills it.
    hub_cell: &'static str,
}

impl TableOutput {
    pub fn new(report: RunFile, table: Table, values: Values) -> TableOutput {
        TableOutput {
            report,
            table,
            values,
            hub_cell: "off",
        }
    }

    /// The accounts report's `security_hub` cell: `pending` when the import runs after the audit.
    pub fn with_security_hub(mut self, on: bool) -> TableOutput {
        self.hub_cell = if on { "pending" } else { "off" };
        self
    }
}

impl Output for TableOutput {
    fn write(&mut self, record: &Record) -> std::io::Result<()> {
        match (self.report, record) {
            (RunFile::Keys, Record::Key(k)) => key_row(&mut self.table, self.values, k),
            (RunFile::Users, Record::User(u)) => user_row(&mut self.table, self.values, u),
            (RunFile::Events, Record::Event(e)) => event_row(&mut self.table, e),
            (RunFile::Credentials, Record::Credential(c)) => credential_row(&mut self.table, c),
            (RunFile::KeyHistory, Record::KeyHistory(h)) => history_row(&mut self.table, h),
            (RunFile::Accounts, Record::Account(a)) => {
                account_row(&mut self.table, a, self.hub_cell)
            }
            _ => Ok(()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.table.flush()
    }

    fn files(&self) -> Vec<&std::fs::File> {
        vec![self.table.file()]
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

/// The key report's cells a snapshot keeps, as the report writes them.
pub struct KeyCells {
    pub created: String,
    pub last_used: String,
    pub key_age_days: String,
}

pub fn key_cells(k: &KeyRow, v: Values) -> KeyCells {
    KeyCells {
        created: Time(k.created_date.as_ref(), "").to_string(),
        last_used: LastUsedCell(&k.last_used, v).to_string(),
        key_age_days: Opt(k.key_age_days).to_string(),
    }
}

/// The `last_used_date` cell: a timestamp, `Never used`, or `Unknown`.
struct LastUsedCell<'a>(&'a LastUse, Values);

impl Display for LastUsedCell<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            LastUse::Used(u) => Rfc3339(&u.date).fmt(f),
            LastUse::Never => f.write_str(self.1.never_used()),
            LastUse::Unknown => f.write_str("Unknown"),
        }
    }
}

/// The users report's cells a snapshot keeps, as the report writes them.
pub struct UserCells {
    pub password_enabled: String,
    pub mfa_type: String,
    pub last_activity: String,
}

pub fn user_cells(u: &UserRow, v: Values) -> UserCells {
    UserCells {
        password_enabled: password_enabled(u).to_string(),
        mfa_type: mfa_type(u).to_string(),
        last_activity: Time(u.last_activity.as_ref(), v.never()).to_string(),
    }
}

fn password_enabled(u: &UserRow) -> &'static str {
    match u.password {
        Password::Configured => "true",
        Password::NotConfigured => "false",
        Password::Unknown if u.is_root() => "not_supported",
        Password::Unknown => "unknown",
    }
}

fn mfa_type(u: &UserRow) -> &'static str {
    if u.mfa_active.is_none() {
        "unknown"
    } else {
        u.mfa.as_str()
    }
}

fn key_row(t: &mut Table, v: Values, k: &KeyRow) -> std::io::Result<()> {
    let last_date = LastUsedCell(&k.last_used, v);
    let (service, region, since): (&str, &str, Option<i64>) = match &k.last_used {
        LastUse::Used(u) => (&u.service, &u.region, Some(u.days_since)),
        LastUse::Never => ("N/A", "N/A", None),
        LastUse::Unknown => ("Unknown", "Unknown", None),
    };
    t.row(&[
        &k.account_id,
        &k.account_name,
        &k.username,
        &v.password(k.password),
        &Time(
            k.password_last_used.as_ref(),
            if k.source == Source::AssumeRoot {
                "unknown"
            } else {
                v.never()
            },
        ),
        &k.access_key_id,
        &k.status,
        &Time(k.created_date.as_ref(), ""),
        &last_date,
        &service,
        &k.mfa.as_str(),
        &region,
        &Opt(k.key_age_days),
        &Opt(since),
        &Opt(k.mfa_devices),
        &k.risk,
        &k.source.as_str(),
        &CreatedBy(&k.creation, |a| &a.arn),
        &CreatedBy(&k.creation, |a| &a.kind),
        &CreatedBy(&k.creation, |a| &a.ip),
        &CreatedBy(&k.creation, |a| &a.event_id),
        &k.exception.rules,
        &k.exception.expires,
    ])
}

fn user_row(t: &mut Table, v: Values, u: &UserRow) -> std::io::Result<()> {
    let password_last_used = match (u.password, u.password_last_used.as_ref()) {
        (Password::NotConfigured, None) => Time(None, "N/A"),
        // A root session may not read it: unknown, never "Never".
        (_, None) if u.source == Source::AssumeRoot => Time(None, "unknown"),
        (_, used) => Time(used, v.never()),
    };
    let active_keys: &dyn Display = match &u.active_keys {
        Some(n) => n,
        None => &"unknown",
    };
    t.row(&[
        &u.account_id,
        &u.account_name,
        &u.username,
        &u.arn,
        &Time(u.created.as_ref(), ""),
        &password_enabled(u),
        &password_last_used,
        &match u.mfa_active {
            Some(true) => "true",
            Some(false) => "false",
            None => "unknown",
        },
        &mfa_type(u),
        &Opt(u.mfa_devices),
        active_keys,
        &Opt(u.oldest_active_key_age_days),
        &Time(u.last_activity.as_ref(), v.never()),
        &u.risk,
        &u.source.as_str(),
        &u.note,
        &Count(u.other_credentials.service_specific, u),
        &Count(u.other_credentials.ssh_public_keys, u),
        &Count(u.other_credentials.signing_certificates, u),
        &u.exception.rules,
        &u.exception.expires,
    ])
}

fn event_row(t: &mut Table, e: &EventRow) -> std::io::Result<()> {
    t.row(&[
        &Time(e.event_time.as_ref(), ""),
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
    ])
}

/// Seconds with three decimals.
struct Seconds(f64);

impl Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}", self.0)
    }
}

fn account_row(t: &mut Table, a: &AccountRow, hub_cell: &str) -> std::io::Result<()> {
    let mut cells: Vec<&dyn Display> = Vec::with_capacity(ACCOUNT_COLUMNS.len());
    let statuses = [
        a.audit_status.as_str(),
        a.iam_status.as_str(),
        a.cloudtrail_status.as_str(),
    ];
    let (duration, strategy, report_time) = (
        Seconds(a.duration_s),
        a.strategy.map(Source::as_str).unwrap_or_default(),
        Time(a.credential_report_time.as_ref(), ""),
    );
    cells.extend([
        &a.account_id as &dyn Display,
        &a.account_name,
        &a.account_status,
        &statuses[0],
        &statuses[1],
        &statuses[2],
        &a.users,
        &a.keys,
        &a.events,
        &a.error,
        &duration,
        &a.role_used,
        &a.ou_path,
        &strategy,
        &report_time,
        &a.root_access_keys,
        &a.root_mfa,
    ]);
    cells.extend(a.flag_counts.iter().map(|n| n as &dyn Display));
    cells.push(&a.events_other_sources);
    let (new, resolved) = (Opt(a.new_findings), Opt(a.resolved_findings));
    cells.push(&new);
    cells.push(&resolved);
    cells.push(&a.credentials);
    cells.push(&a.ssh_keys_listed);
    cells.push(&a.note);
    cells.push(&hub_cell);
    t.row(&cells)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Format;
    use crate::record::{Actor, Creation, Flags, Mfa};

    fn key() -> KeyRow {
        KeyRow {
            account_id: "111111111111".into(),
            account_name: "=Prod, \"main\"".into(),
            username: "-bob".into(),
            password: Password::Configured,
            password_last_used: None,
            access_key_id: "AKIAEXAMPLE".into(),
            status: "Active".into(),
            created_date: chrono::DateTime::from_timestamp(1_767_225_600, 0),
            last_used: LastUse::Never,
            mfa: Mfa::Hardware,
            mfa_devices: Some(2),
            key_age_days: Some(63),
            risk: Flags::default(),
            key_risk: Flags::default(),
            source: Source::Api,
            creation: Creation::Event(Actor {
                arn: "arn:aws:sts::111111111111:assumed-role/Admin/=alice".into(),
                kind: "AssumedRole".into(),
                user_name: String::new(),
                ip: "198.51.100.7".into(),
                user_agent: "aws-cli/2".into(),
                event_id: "ev-1".into(),
                time: None,
            }),
            exception: crate::record::ExceptionCells {
                rules: "legacy-ci".into(),
                expires: "2027-06-30".into(),
            },
        }
    }

    fn write_one(values: Values, escape: bool) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.csv");
        let table = Table::new(
            std::fs::File::create(&path).unwrap(),
            Format::Csv,
            &KEY_COLUMNS,
            escape,
            true,
        )
        .unwrap();
        let mut out = TableOutput::new(RunFile::Keys, table, values);
        out.write(&Record::Key(key())).unwrap();
        out.flush().unwrap();
        std::fs::read_to_string(&path).unwrap()
    }

    #[test]
    fn key_row_english_escaped() {
        let text = write_one(Values::English, true);
        let row = text.lines().nth(1).unwrap();
        assert_eq!(
            row,
            "111111111111,\"'=Prod, \"\"main\"\"\",'-bob,Configured,Never,AKIAEXAMPLE,Active,2026-01-01T00:00:00Z,Never used,N/A,Hardware,N/A,63,,2,,api,arn:aws:sts::111111111111:assumed-role/Admin/=alice,AssumedRole,198.51.100.7,ev-1,legacy-ci,2027-06-30"
        );
        assert!(text.starts_with("account_id,account_name,username,password_status,password_last_used,access_key_id,status,created_date,last_used_date,service_name,mfa_status,"));
    }

    #[test]
    fn key_row_legacy_spanish_unescaped() {
        let text = write_one(Values::LegacySpanish, false);
        let row = text.lines().nth(1).unwrap();
        assert_eq!(
            row,
            "111111111111,\"=Prod, \"\"main\"\"\",-bob,Configurada,Nunca,AKIAEXAMPLE,Active,2026-01-01T00:00:00Z,Nunca utilizada,N/A,Hardware,N/A,63,,2,,api,arn:aws:sts::111111111111:assumed-role/Admin/=alice,AssumedRole,198.51.100.7,ev-1,legacy-ci,2027-06-30"
        );
    }
}
