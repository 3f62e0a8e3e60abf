//! The columns of every tabular file, in order: design §3's four reports, the changes report, the
//! credentials file and the key history. At the bottom of the report room: the writers, the resume and the
//! readers of earlier runs all name columns from here.

use crate::record::Flag;

/// Columns of `iam_audit_report_<stamp>.csv`: the seed's first, in its order, then ours.
pub const KEY_COLUMNS: [&str; 23] = [
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
    "created_by",
    "created_by_type",
    "created_from_ip",
    "created_event_id",
    "exception",
    "exception_expires",
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
pub const ACCOUNT_COLUMNS: [&str; 46] = [
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
    "root_access_not_centralized",
    "root_without_mfa",
    "root_without_hardware_mfa",
    "console_without_mfa",
    "key_created_with_user",
    "password_unused_45d",
    "key_unused_45d",
    "two_active_keys",
    "key_older_than_90d",
    "key_created_for_other_user",
    "key_created_by_root",
    "key_short_lived",
    "api_key_older_than_90d",
    "api_key_without_expiry",
    "api_key_user",
    "key_quarantined_by_aws",
    "break_glass_used",
    "break_glass_without_hardware_mfa",
    "break_glass_access_key",
    "break_glass_without_password",
    "break_glass_other_credential",
    "events_other_sources",
    "new_findings",
    "resolved_findings",
    "credentials",
    "ssh_keys_listed",
    "note",
    "security_hub",
];

/// Where the flag counts start among the accounts report's columns.
const FLAG_COLUMNS_AT: usize = 17;

/// Columns of `users_<stamp>.csv`: one row per IAM user and one for the root user.
pub const USER_COLUMNS: [&str; 21] = [
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
    "service_specific_credentials",
    "ssh_public_keys",
    "signing_certificates",
    "exception",
    "exception_expires",
];

/// Columns of `changes_<stamp>.csv`.
pub const CHANGE_COLUMNS: [&str; 10] = [
    "change",
    "kind",
    "account_id",
    "account_name",
    "resource",
    "detail",
    "before",
    "after",
    "severity",
    "finding_uid",
];

/// Columns of `credentials_<stamp>.csv`: one row per long-term credential that is not an access key.
pub const CREDENTIAL_COLUMNS: [&str; 12] = [
    "account_id",
    "account_name",
    "username",
    "type",
    "service",
    "credential_id",
    "status",
    "created",
    "expires",
    "age_days",
    "risk",
    "source",
];

/// Columns of `key_history_<stamp>.csv`: one row per key the window's CreateAccessKey/DeleteAccessKey
/// events name.
pub const KEY_HISTORY_COLUMNS: [&str; 17] = [
    "account_id",
    "account_name",
    "username",
    "access_key_id",
    "created",
    "created_by",
    "created_by_type",
    "created_from_ip",
    "created_user_agent",
    "created_event_id",
    "deleted",
    "deleted_by",
    "deleted_by_type",
    "deleted_from_ip",
    "deleted_event_id",
    "in_inventory",
    "risk",
];

/// The flag columns of the accounts report, named by the flags' codes (checked by a test).
pub fn flag_columns() -> &'static [&'static str] {
    &ACCOUNT_COLUMNS[FLAG_COLUMNS_AT..FLAG_COLUMNS_AT + Flag::COUNT]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accounts_report_counts_each_flag_under_its_code() {
        let codes: Vec<&str> = Flag::ALL.iter().map(|f| f.code()).collect();
        assert_eq!(flag_columns(), codes.as_slice());
        assert_eq!(
            ACCOUNT_COLUMNS.last(),
            Some(&"security_hub"),
            "the import rewrites the last cell"
        );
    }
}
