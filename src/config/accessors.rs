//! The settings' derived values: the roles and their ARNs, the account and OU filters, the durations and
//! the run's stamp, read from the resolved keys.

use std::time::Duration;

use super::{names, Settings};

impl Settings {
    /// The first role (the only one unless `roles` lists several).
    pub fn role(&self) -> &str {
        &self.roles[0]
    }

    /// Whether an OU filter is set (it needs the OU tree).
    pub fn ou_filters(&self) -> bool {
        !self.include_ous().is_empty() || !self.exclude_ous().is_empty()
    }

    pub fn include_accounts(&self) -> &[String] {
        self.keys.include_accounts.as_deref().unwrap_or_default()
    }
    pub fn exclude_accounts(&self) -> &[String] {
        self.keys.exclude_accounts.as_deref().unwrap_or_default()
    }
    pub fn include_ous(&self) -> &[String] {
        self.keys.include_ous.as_deref().unwrap_or_default()
    }
    pub fn exclude_ous(&self) -> &[String] {
        self.keys.exclude_ous.as_deref().unwrap_or_default()
    }

    /// The ARNs of every role to try in an account of `partition` (read from the account's ARN), in
    /// order. A full ARN is kept as given, partition and path included, with the account's id.
    pub fn role_arns(&self, account_id: &str, partition: &str) -> Vec<String> {
        self.roles
            .iter()
            .map(|r| names::role_arn(r, account_id, partition))
            .collect()
    }

    pub fn session_duration(&self) -> Duration {
        Duration::from_secs(self.keys.session_duration_secs)
    }
    pub fn initial_backoff(&self) -> Duration {
        Duration::from_millis(self.keys.initial_backoff_ms)
    }
    pub fn max_backoff(&self) -> Duration {
        Duration::from_millis(self.keys.max_backoff_ms)
    }
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.keys.shutdown_grace_secs)
    }
    /// One AWS call, its SDK attempts included.
    pub fn call_timeout(&self) -> Duration {
        Duration::from_secs(self.keys.call_timeout_secs)
    }
    /// One account's whole audit.
    pub fn account_budget(&self) -> Duration {
        Duration::from_secs(self.keys.account_budget_secs)
    }

    /// One attempt of a call: a third of the call's timeout, at least a second, so that a stalled attempt
    /// leaves time for the SDK to retry.
    pub fn attempt_timeout(&self) -> Duration {
        (self.call_timeout() / 3)
            .max(Duration::from_secs(1))
            .min(self.call_timeout())
    }

    /// The `YYYYMMDD_HHMMSS` stamp of the output files, as the seed script writes it.
    pub fn stamp(&self) -> String {
        self.started_at.format("%Y%m%d_%H%M%S").to_string()
    }
}
