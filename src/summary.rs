//! The closing summary of a run: what was audited, what was found, what it cost, and where the files are.
//! Counted from the accounts' closing rows as they close; printed by the binary.

use std::path::PathBuf;
use std::time::Duration;

use crate::org::ListingError;
use crate::record::{AccountRow, AuditStatus, Flag};
use crate::report::digest::Digest;
use crate::stats::CallCounts;

/// The closing summary of a run.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub accounts: u64,
    pub audited: u64,
    pub partial: u64,
    pub skipped: u64,
    pub not_active: u64,
    /// Accounts finished before a resume (counted in `accounts`, `audited`, `not_active`).
    pub resumed: u64,
    /// Accounts left out by `include_accounts` / `exclude_accounts` (not in the reports).
    pub filtered_out: u64,
    /// Why the OU tree could not be read (the accounts report's `ou_path` is then empty).
    pub ou_paths_unread: Option<ListingError>,
    /// What the organization said of centralized root access (ListOrganizationsFeatures), when asked.
    pub root_access: Option<String>,
    pub users: u64,
    pub keys: u64,
    pub events: u64,
    /// Users (root included) carrying each risk flag, in `Flag::ALL` order.
    pub flags: [u64; Flag::COUNT],
    pub calls: CallCounts,
    pub elapsed: Duration,
    pub keys_file: PathBuf,
    pub users_file: PathBuf,
    pub events_file: PathBuf,
    pub accounts_file: PathBuf,
    pub findings_file: PathBuf,
    pub changes_file: PathBuf,
    pub summary_file: PathBuf,
    pub credentials_file: PathBuf,
    pub key_history_file: PathBuf,
    /// The findings' history (state for the next run, not a report; not printed).
    pub history_file: PathBuf,
    /// Rows of the credentials file and of the key history.
    pub credentials: u64,
    pub key_history: u64,
    /// What changed since the earlier run.
    pub changes: Digest,
    /// `--no-compare`: the run was not compared with an earlier one on purpose.
    pub compare_disabled: bool,
    /// Each alert destination (as messages name it) and, when the alert did not reach it, why.
    pub alerts: Vec<(String, Option<String>)>,
    /// How the Security Hub import went (`--security-hub`).
    pub security_hub: Option<String>,
    /// The optional actions the run stopped asking (each: action, role, refusals, accounts not asked),
    /// or that it asked none of (`optional_actions = false`).
    pub optional: Optional,
}

/// What became of the optional actions (`limits::optional`).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Optional {
    /// Asked; these were refused and then not asked: (action, role, refusals, accounts not asked).
    #[default]
    Asked,
    Refused(Vec<(String, String, u32, u64)>),
    Off,
}

impl Summary {
    /// The summary naming the run's files.
    pub fn with_files(self, paths: crate::report::OutputPaths) -> Summary {
        Summary {
            keys_file: paths.keys,
            users_file: paths.users,
            events_file: paths.events,
            accounts_file: paths.accounts,
            findings_file: paths.findings,
            changes_file: paths.changes,
            summary_file: paths.summary,
            credentials_file: paths.credentials,
            key_history_file: paths.key_history,
            history_file: paths.history,
            ..self
        }
    }

    pub(crate) fn count(&mut self, row: &AccountRow) {
        self.accounts += 1;
        match row.audit_status {
            AuditStatus::Audited => self.audited += 1,
            AuditStatus::Partial => self.partial += 1,
            AuditStatus::Skipped => self.skipped += 1,
            AuditStatus::NotActive => self.not_active += 1,
        }
        self.users += row.users;
        for (total, n) in self.flags.iter_mut().zip(row.flag_counts) {
            *total += n;
        }
    }

    /// 0 when every ACTIVE account was fully audited, 3 when some were skipped or partly audited.
    pub fn exit_code(&self) -> i32 {
        if self.partial + self.skipped > 0 {
            3
        } else {
            0
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "accounts: {} ({} audited, {} partial, {} skipped, {} not active)",
            self.accounts, self.audited, self.partial, self.skipped, self.not_active
        )?;
        if self.resumed > 0 {
            write!(f, "; {} done before the resume", self.resumed)?;
        }
        if self.filtered_out > 0 {
            write!(f, "; {} left out by the account filters", self.filtered_out)?;
        }
        writeln!(f)?;
        match &self.optional {
            Optional::Asked => {}
            Optional::Off => writeln!(
                f,
                "optional actions: none asked (optional_actions = false): no credential report, root summary or other credentials"
            )?,
            Optional::Refused(refused) => {
                let each: Vec<String> = refused
                    .iter()
                    .map(|(action, role, n, skipped)| {
                        format!("{action} (refused to {role} in {n} accounts, then not asked in {skipped})")
                    })
                    .collect();
                writeln!(
                    f,
                    "optional actions refused and no longer asked: {}; grant them to the audit role (docs/setup.md) or set optional_actions = false",
                    each.join(", ")
                )?
            }
        }
        if let Some(line) = &self.root_access {
            writeln!(f, "{line}")?;
        }
        if let Some(e) = &self.ou_paths_unread {
            writeln!(
                f,
                "ou_path: not read ({e}); grant organizations:ListRoots, ListOrganizationalUnitsForParent and ListAccountsForParent, or set ou_paths = false"
            )?;
        }
        writeln!(
            f,
            "users: {}, access keys: {}, CloudTrail events: {}",
            self.users, self.keys, self.events
        )?;
        writeln!(
            f,
            "other long-term credentials: {}, keys in the window's key events: {}",
            self.credentials, self.key_history
        )?;
        write!(
            f,
            "API calls: {} ({} throttled, {} server errors, {} AssumeRole) in {:.1}s",
            self.calls.calls,
            self.calls.throttled,
            self.calls.server_errors,
            self.calls.assume_role,
            self.elapsed.as_secs_f64()
        )?;
        // Only when the cap on requests in flight held calls back (see --max-in-flight).
        if self.calls.in_flight_waits > 0 {
            write!(
                f,
                "; {} waited for an in-flight slot",
                self.calls.in_flight_waits
            )?;
        }
        writeln!(f)?;
        let flags: Vec<String> = Flag::ALL
            .iter()
            .zip(self.flags)
            .filter(|(_, n)| *n > 0)
            .map(|(flag, n)| format!("{} {n}", flag.code()))
            .collect();
        if flags.is_empty() {
            writeln!(f, "risk flags: none")?;
        } else {
            writeln!(f, "risk flags (users): {}", flags.join(", "))?;
        }
        match &self.changes.against {
            None if self.changes.not_compared.is_some() => writeln!(
                f,
                "{} (changes report)",
                self.changes.not_compared.as_ref().expect("some").line()
            )?,
            Some(run) => writeln!(
                f,
                "since {run}: {} new findings, {} resolved (changes report)",
                self.changes.new_findings, self.changes.resolved_findings
            )?,
            None if self.compare_disabled => {
                writeln!(f, "not compared with an earlier run (--no-compare)")?
            }
            None => writeln!(f, "no earlier run compared: every finding is new")?,
        }
        if let Some(line) = self.changes.exceptions.line() {
            writeln!(f, "{line}")?;
        }
        if let Some(line) = &self.security_hub {
            writeln!(f, "{line}")?;
        }
        for (to, failure) in &self.alerts {
            match failure {
                None => writeln!(f, "alert: sent to {to}")?,
                Some(why) => writeln!(
                    f,
                    "warning: the alert to {to} failed ({why}); the reports are written"
                )?,
            }
        }
        writeln!(f, "key report:      {}", self.keys_file.display())?;
        writeln!(f, "users report:    {}", self.users_file.display())?;
        writeln!(f, "events report:   {}", self.events_file.display())?;
        writeln!(f, "accounts report: {}", self.accounts_file.display())?;
        writeln!(f, "findings (OCSF): {}", self.findings_file.display())?;
        writeln!(f, "changes report:  {}", self.changes_file.display())?;
        writeln!(f, "summary page:    {}", self.summary_file.display())?;
        writeln!(f, "credentials:     {}", self.credentials_file.display())?;
        write!(f, "key history:     {}", self.key_history_file.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_waits_for_the_in_flight_cap_only_when_there_were_some() {
        let mut s = Summary::default();
        s.calls.calls = 10;
        let text = s.to_string();
        assert!(
            text.contains("API calls: 10 (0 throttled, 0 server errors, 0 AssumeRole) in 0.0s\n"),
            "{text}"
        );
        s.calls.in_flight_waits = 3;
        assert!(
            s.to_string()
                .contains("AssumeRole) in 0.0s; 3 waited for an in-flight slot\n"),
            "{s}"
        );
    }
}
