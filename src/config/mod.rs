//! Configuration: every setting is defined once, in the `keys!` table below (its TOML key, its flag, its
//! default and its help text). The table gives `Config` (the file's and the command line's values, all
//! optional, merged `cli.or(file)`), `Keys` (the defaults applied) and `keys()` (what the binary turns into
//! flags and the tests hold the documents to). `Settings::resolve` validates and derives what the engine
//! runs with. Imports nothing of the crate.
//!
//! A new setting costs three edits: its line in the table, its line in config.example.toml, and where it is
//! used (`settings.keys.NAME`).

mod accessors;
pub(crate) mod key;
mod names;
mod remote;
mod secret;
mod window;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration as ChronoDuration, Utc};

use key::{file_only, flag, keys, negated, switch};
pub use key::{Exposure, Key, Kind};
pub use names::{glob, iam_home_region, partition_of};
pub use remote::S3Location;
pub use secret::{url_host, Destination, Secret};
pub use window::{parse_date, resolve_window, LOOKUP_HISTORY_DAYS};

/// The IAM lifecycle events the seed script tracked, in its order.
/// Every CIS version the flags are mapped to (`cis_version`'s default).
pub const DEFAULT_CIS_VERSIONS: [&str; 4] = ["3.0", "5.0", "6.0", "7.0"];

pub const DEFAULT_EVENT_NAMES: [&str; 5] = [
    "DeleteUser",
    "DeleteAccessKey",
    "DeleteLoginProfile",
    "CreateAccessKey",
    "CreateUser",
];

keys! {
    // --- who to be, and which role to assume (also flags of `check`) ---
    /// Named AWS profile (SSO profiles included) for the management account
    profile: String, flag("P").check()
        .default_text("the standard credential chain: environment, AWS_PROFILE, SSO, instance metadata");
    /// Name of the audit role to assume in each member account, e.g. IAMAuditRole or
    /// AWSControlTowerExecution (required here or in the config file)
    role: String, flag("R").check().conflicts("roles");
    /// Roles to try in order in each account, comma-separated (e.g.
    /// IAMAuditRole,AWSControlTowerExecution); the one that worked is the accounts report's role_used
    roles: Vec<String>, flag("R1,R2").check();
    /// Audit the management account with the caller's own credentials when no role can be assumed there
    management_as_caller: bool = true, negated("no-management-as-caller",
        "Do not audit the management account with the caller's own credentials when no role can be assumed there (it is then skipped)").check();
    /// ExternalId for AssumeRole, when the role's trust policy requires one
    external_id: String, flag("ID").check();
    /// Session name of the assumed-role sessions, as it shows in the member accounts' CloudTrail
    session_name: String = "iam-audit", flag("NAME").check();
    /// Region of the global services (Organizations, STS, IAM); its partition's IAM home region is where
    /// CloudTrail is searched by default
    region: String = "us-east-1", flag("REGION").check();

    // --- output ---
    /// Directory for the reports (created 0700 if missing), or s3://BUCKET/PREFIX/ (written locally in a
    /// private temporary directory, then uploaded, encrypted)
    output_dir: PathBuf = ".", flag("DIR");
    /// SSE-KMS for the reports in S3: this KMS key's ARN (SSE-S3 without it)
    s3_kms_key: String, flag("ARN").default_text("SSE-S3 (AES256)");
    /// The account that must own the S3 bucket (ExpectedBucketOwner)
    s3_expected_owner: String, flag("ACCOUNT_ID").default_text("the caller's account");
    /// The reports' format: csv, or jsonl (one JSON object per row, the same fields)
    format: String = "csv", flag("FORMAT").choices(&["csv", "jsonl"]);
    /// "es" writes the old script's Spanish values (Configurada, No configurada, Nunca, Nunca utilizada)
    legacy_values: String = "en", flag("LANG").choices(&["en", "es"]);
    /// The OCSF class of the findings file: compliance (Compliance Finding, 2003) or detection (Detection
    /// Finding, 2004, for SIEMs wired to it)
    ocsf_class: String = "compliance", flag("CLASS").choices(&["compliance", "detection"]);
    /// How the member accounts' root users are read: auto (the audit role, and sts:AssumeRoot where the
    /// role is missing or refused and the organization manages root credentials centrally), role (the
    /// role only), or assume-root (every member account's root user through sts:AssumeRoot)
    root_audit: String = "auto", flag("MODE").choices(&["auto", "role", "assume-root"]);
    /// The CIS AWS Foundations Benchmark versions the findings carry, comma-separated (3.0, 5.0, 6.0,
    /// 7.0)
    cis_version: Vec<String> = &DEFAULT_CIS_VERSIONS, flag("V1,V2");
    /// Compare with the latest run in DIR instead of the latest earlier run in the output directory
    compare: PathBuf, flag("DIR").default_text("the latest earlier run in --output-dir");
    /// Compare the run with an earlier one (changes report, new and resolved findings)
    compare_runs: bool = true, negated("no-compare",
        "Do not compare the run with an earlier one: no changes report, every finding a Create");
    /// Prefix formula-like cells (=, +, -, @, TAB, CR) with ' in the CSV files (OWASP CSV injection)
    escape_formulas: bool = true, negated("no-escape-formulas",
        "Do not prefix formula-like cells (=, +, -, @, TAB, CR) with ' in the CSV files");

    // --- who hears of it: Security Hub and alerts (both off unless asked for) ---
    /// Import the findings into each audited account's own Security Hub (securityhub:BatchImportFindings
    /// through the audit role: the only write iam-audit makes to an audited account)
    security_hub: bool = false, switch().check();
    /// The Security Hub region the findings are imported into
    security_hub_region: String, flag("REGION").check().default_text("--region");
    /// Send an alert when the run ends to this webhook URL (Slack, Teams, any JSON webhook) or SNS topic
    /// (sns:arn:aws:sns:REGION:ACCOUNT:TOPIC); repeatable. A secret: also read from IAM_AUDIT_NOTIFY and
    /// notify_file, never printed
    notify: Vec<Secret>, flag("URL").default_text("no alerts");
    /// A file holding alert destinations, one per line (a mounted secret), added to notify
    notify_file: PathBuf, flag("FILE");
    /// The alert's body: slack, teams (Adaptive Card), json, or auto (from the webhook's host)
    notify_format: String = "auto", flag("FORMAT").choices(&["auto", "slack", "teams", "json"]);
    /// The lowest severity of the new findings an alert lists
    notify_min_severity: String = "high", flag("SEVERITY")
        .choices(&["critical", "high", "medium", "low"]);
    /// Send no alert when there is no new finding at or above notify_min_severity
    notify_only_new: bool = false, switch();

    // --- exceptions: findings accepted with an owner, a reason and an expiry (docs/exceptions.md) ---
    /// The exceptions file (YAML, or a Prowler mutelist): a local path or s3://BUCKET/KEY
    exceptions: String, flag("FILE|s3://…").default_text("none");
    /// The owner of every rule converted from a Prowler mutelist (which has none)
    exceptions_owner: String, flag("EMAIL");
    /// The expiry of every rule converted from a Prowler mutelist (which has none), YYYY-MM-DD
    exceptions_expires: String, flag("YYYY-MM-DD");
    /// The reason of a Prowler mutelist entry without a Description
    exceptions_reason: String, flag("TEXT");
    /// The longest a rule may live: an expiry further than this many days from today is refused
    exceptions_horizon_days: u32 = 365, flag("DAYS").positive();
    /// Rules expiring within this many days are listed in the summary and the alert
    exceptions_warn_days: u32 = 30, flag("DAYS");
    /// A rule accepting more than this percentage of an account's findings (two or more) is too broad
    exceptions_max_share: u32 = 50, flag("PERCENT");

    // --- the CloudTrail window and scope ---
    /// First day of the CloudTrail window, YYYY-MM-DD UTC
    start_date: String, flag("YYYY-MM-DD").default_text("90 days before the end");
    /// Last day of the CloudTrail window, inclusive, YYYY-MM-DD UTC
    end_date: String, flag("YYYY-MM-DD").default_text("now");
    /// CloudTrail window as the last N days (conflicts with --start-date)
    days: u32, flag("N").conflicts("start_date");
    /// Regions whose CloudTrail event history is searched, comma-separated
    regions: Vec<String>, flag("R1,R2").check()
        .default_text("the IAM home region of --region's partition: us-east-1, cn-north-1 or us-gov-west-1");
    /// CloudTrail event names to look up, comma-separated
    event_names: Vec<String> = &DEFAULT_EVENT_NAMES, flag("E1,E2");
    /// Keep the events of every service LookupEvents returns for the event names (Identity Center,
    /// ElastiCache, ... also have CreateUser/DeleteUser); by default IAM's only
    all_event_sources: bool = false, switch();

    // --- which accounts ---
    /// Audit only these accounts: 12-digit ids or name globs, comma-separated (e.g.
    /// 'prod-*,111122223333')
    include_accounts: Vec<String>, flag("ID|GLOB,...");
    /// Never audit these accounts (ids or name globs); wins over --include-accounts
    exclude_accounts: Vec<String>, flag("ID|GLOB,...");
    /// Audit only the accounts under these OUs, and the OUs below them: OU or root ids (ou-…, r-…) or
    /// globs over the OU path, comma-separated (e.g. 'Root/Workloads/Prod,ou-ab12-34cd56ef'); adds to
    /// --include-accounts
    include_ous: Vec<String>, flag("ID|PATH,...");
    /// Never audit the accounts under these OUs (ids or path globs); wins over the includes
    exclude_ous: Vec<String>, flag("ID|PATH,...");
    /// Read the OU tree for the accounts report's ou_path and the OU filters
    ou_paths: bool = true, negated("no-ou-paths",
        "Do not read the OU tree: the accounts report's ou_path stays empty and the OU filters are refused");

    // --- the IAM inventory and its verdicts ---
    /// How the IAM inventory is read: auto (the credential report where the role may generate it,
    /// per-user calls where not), api (per-user calls) or credential_report
    strategy: String = "auto", flag("STRATEGY").choices(&["auto", "api", "credential_report"]);
    /// Days after which an unused (or never used) password or active key is flagged
    unused_days: u32 = 45, flag("DAYS").positive();
    /// Days after which an active access key (or service-specific credential) is flagged for rotation
    key_max_age_days: u32 = 90, flag("DAYS").positive();
    /// A key created and deleted within this many days inside the CloudTrail window is flagged
    /// key_short_lived (key history)
    short_lived_days: u32 = 7, flag("DAYS").positive();
    /// CodeCommit SSH public keys: none, console (users with a console password) or all users. Costs one
    /// iam:ListSSHPublicKeys call per user listed: there is no account-wide listing
    ssh_keys: String = "none", flag("WHO").choices(&["none", "console", "all"]);
    /// Ask the optional read-only actions (the credential report, GetAccountSummary,
    /// ListVirtualMFADevices, ListServiceSpecificCredentials, ListSigningCertificates,
    /// ListEntitiesForPolicy, and ListSSHPublicKeys with ssh_keys). One that two accounts refuse to the same role is not asked again
    /// in the run; off, none is asked, so the README's six-action policy meets no AccessDenied
    optional_actions: bool = true, negated("no-optional-actions",
        "Ask none of the optional actions: per-user calls only (--strategy api), no root user's summary, no other credentials; no AccessDenied under the six-action policy");

    // --- concurrency, quotas, retries and deadlines ---
    /// Accounts audited at once
    concurrency: usize = 64, flag("N").check().positive();
    /// Users audited at once inside one account
    user_concurrency: usize = 4, flag("N").positive();
    /// Lifetime of each assumed-role session in seconds, 900-43200
    session_duration_secs: u64 = 3600, flag("SECS");
    /// IAM calls per second per account
    iam_rate: u32 = 10, flag("N").positive();
    /// IAM calls allowed at once above the rate
    iam_burst: u32 = 5, flag("N").positive();
    /// LookupEvents calls per second per account and region
    cloudtrail_rate: u32 = 2, flag("N").positive();
    /// LookupEvents calls allowed at once above the rate
    cloudtrail_burst: u32 = 1, flag("N").positive();
    /// Attempts per AWS call, first included (adaptive retries)
    max_attempts: u32 = 10, flag("N").positive();
    /// First retry backoff in milliseconds
    initial_backoff_ms: u64 = 1000, flag("MS").positive();
    /// Longest retry backoff in milliseconds
    max_backoff_ms: u64 = 20_000, flag("MS").positive();
    /// A fixed cap on the HTTP requests in flight across all accounts
    max_in_flight: usize, flag("N").positive()
        .default_text("twice what the rates need at the observed network latency, at most 400");
    /// Longest one AWS call may take, its SDK retries included (each attempt gets a third)
    call_timeout_secs: u64 = 60, flag("SECS").positive();
    /// Longest one account's audit may take; past it the account is partial, with a Timeout error
    account_budget_secs: u64 = 3600, flag("SECS").positive();
    /// After SIGINT or SIGTERM, seconds running accounts get to finish before they are closed as partial
    shutdown_grace_secs: u64 = 10, flag("SECS");
    /// In AWS Lambda: seconds of the invocation kept back for closing the run and uploading it (no account
    /// starts after the remaining time less this and the shutdown grace)
    lambda_margin_secs: u64 = 60, file_only();
    /// Records buffered between the account auditors and the writer
    channel_capacity: usize = 1024, file_only().positive();
    /// Pages read at most from one listing before it is reported as PageLimit
    max_pages: usize = 100_000, file_only().positive();
}

/// A configuration error: exit code 2, nothing written. The message names the key and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

pub(crate) fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

impl Config {
    /// Read a TOML config file; unknown keys and bad types are errors naming the key.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parse TOML text. The error text is toml's, which names the key and the line.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
    }

    /// The keys of a TOML table (how the binary hands over the command line's values).
    pub fn from_table(table: toml::Table) -> Result<Config, String> {
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| e.to_string().trim_end().to_string())
    }
}

/// The reports' file format (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RFC 4180 CSV with a header row, `.csv`.
    Csv,
    /// One JSON object per line, the CSV's columns as keys and its cells as string values, `.jsonl`.
    Jsonl,
}

impl Format {
    /// The files' extension, and the `--format` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
        }
    }
}

/// Which strings the key report uses for "no value" and password states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    English,
    /// The seed script's Spanish strings, for automation built on them.
    LegacySpanish,
}

/// How the IAM inventory of an account is read (design §2, `--strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The credential report where the role may generate it; per-user calls where it may not.
    Auto,
    /// Per-user calls only.
    Api,
    /// The credential report only; an account where it is refused is not audited for IAM.
    CredentialReport,
}

/// The thresholds of the risk flags, in days (`unused_days`, `key_max_age_days`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub unused_days: i64,
    pub key_max_age_days: i64,
    pub short_lived_days: i64,
}

/// What the engine runs with: the keys with their defaults (`keys`), validated, and what is derived from
/// them.
#[derive(Debug, Clone)]
pub struct Settings {
    pub keys: Keys,
    /// The roles tried in order (`role` alone when `roles` is not set).
    pub roles: Vec<String>,
    pub format: Format,
    pub values: Values,
    pub strategy: Strategy,
    /// The regions whose CloudTrail is searched (`regions`, or the partition's IAM home region).
    pub regions: Vec<String>,
    /// The CloudTrail window, UTC.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Start of the run, UTC: the file stamp and the reference for key ages.
    pub started_at: DateTime<Utc>,
    pub thresholds: Thresholds,
    /// Send every call to this endpoint with these static credentials instead of the configured profile:
    /// how `demo` and in-process tests reach the simulator. Not a config key.
    pub endpoint_override: Option<EndpointOverride>,
    /// Continue the interrupted run of this stamp in `output_dir` (`--resume`). Not a config key.
    pub resume_stamp: Option<String>,
    /// The stamp a new run writes under when it was taken before the run (an S3 prefix's claim: the
    /// start time, or its next free suffix). Not a config key.
    pub claimed_stamp: Option<String>,
    /// Where the alert goes: `notify`, `IAM_AUDIT_NOTIFY` and the lines of `notify_file`, checked.
    pub notify: Vec<Destination>,
    /// `output_dir` is `s3://…`: the reports are written in a local staging directory, then uploaded.
    pub remote: Option<S3Location>,
    /// Alert when the run was stopped before its end (a signal, a Lambda deadline). The Lambda runtime
    /// turns it off: its invocation's continuation alerts when the run is complete. Not a config key.
    pub alert_when_stopped: bool,
    /// The exceptions read when `exceptions` is not set: a name for the messages, and the file's text.
    /// How `demo` asserts its organization's break-glass users. Not a config key.
    pub builtin_exceptions: Option<(String, String)>,
    /// The CIS versions the findings carry (`cis_version`), as `3.0` … `7.0`, oldest first.
    pub cis_versions: Vec<String>,
}

/// A fake-AWS endpoint and the (fake) management credentials to use with it.
#[derive(Clone)]
pub struct EndpointOverride {
    pub url: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// The secret key never reaches a log, even in a `{:?}` of the settings.
impl std::fmt::Debug for EndpointOverride {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointOverride")
            .field("url", &self.url)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .finish()
    }
}

impl Settings {
    /// Apply the defaults and validate. `now` is the run's start time.
    pub fn resolve(c: Config, now: DateTime<Utc>) -> Result<Settings, ConfigError> {
        let k = Keys::from_config(c);
        let positive: Vec<&'static str> = keys()
            .iter()
            .filter(|k| k.spec.positive)
            .map(|k| k.name)
            .collect();
        for (name, value) in k.counts() {
            if value == Some(0) && positive.contains(&name) {
                return Err(invalid(name, "must be greater than 0, got 0"));
            }
        }
        let roles = names::roles(k.role.as_deref(), k.roles.as_deref())?;
        let session = &k.session_name;
        // STS: RoleSessionName is 2-64 chars of [\w+=,.@-].
        let valid_session = (2..=64).contains(&session.len())
            && session
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "_+=,.@-".contains(ch));
        if !valid_session {
            return Err(invalid(
                "session_name",
                format!("'{session}' must be 2-64 characters of letters, digits and _+=,.@-"),
            ));
        }
        if !(900..=43200).contains(&k.session_duration_secs) {
            return Err(invalid(
                "session_duration_secs",
                format!(
                    "must be between 900 and 43200 seconds (STS limits), got {}",
                    k.session_duration_secs
                ),
            ));
        }
        let (start, end) =
            resolve_window(k.start_date.as_deref(), k.end_date.as_deref(), k.days, now)?;
        if now - start > ChronoDuration::days(LOOKUP_HISTORY_DAYS) + ChronoDuration::days(1) {
            tracing::warn!(
                "start date {} is more than {LOOKUP_HISTORY_DAYS} days ago; CloudTrail LookupEvents only returns the last {LOOKUP_HISTORY_DAYS} days",
                start.format("%Y-%m-%d")
            );
        }
        let regions = names::checked_regions(
            &k.region,
            k.regions.as_deref(),
            k.security_hub_region.as_deref(),
        )?;
        if k.event_names.iter().any(|e| e.trim().is_empty()) {
            return Err(invalid("event_names", "event names must not be empty"));
        }
        // The command line offers only these values (the table's `choices`); the file is checked here.
        let values = match k.legacy_values.as_str() {
            "en" => Values::English,
            "es" => Values::LegacySpanish,
            other => {
                return Err(invalid(
                    "legacy_values",
                    format!("'{other}' is not supported; use \"es\" for the seed script's Spanish values or \"en\""),
                ))
            }
        };
        let strategy = match k.strategy.as_str() {
            "auto" => Strategy::Auto,
            "api" => Strategy::Api,
            "credential_report" => Strategy::CredentialReport,
            other => {
                return Err(invalid(
                    "strategy",
                    format!(
                    "'{other}' is not a strategy; use \"auto\", \"api\" or \"credential_report\""
                ),
                ))
            }
        };
        if strategy == Strategy::CredentialReport && !k.optional_actions {
            return Err(invalid(
                "optional_actions",
                "the credential report is an optional action: with optional_actions = false (--no-optional-actions) use --strategy api or auto",
            ));
        }
        let format = match k.format.as_str() {
            "csv" => Format::Csv,
            "jsonl" => Format::Jsonl,
            other => {
                return Err(invalid(
                    "format",
                    format!("'{other}' is not a format; use \"csv\" or \"jsonl\""),
                ))
            }
        };
        if !["compliance", "detection"].contains(&k.ocsf_class.as_str()) {
            return Err(invalid(
                "ocsf_class",
                format!(
                    "'{}' is not an OCSF finding class here; use \"compliance\" or \"detection\"",
                    k.ocsf_class
                ),
            ));
        }
        check_together(&k)?;
        names::check_root_audit(&k.root_audit)?;
        let cis_versions = names::cis_versions(&k.cis_version)?;
        let notify = secret::destinations(&k.notify, k.notify_file.as_deref())?;
        let remote = s3_location(&k)?;
        let mut keys = k;
        keys.profile = keys.profile.filter(|p| !p.is_empty());
        keys.external_id = keys.external_id.filter(|e| !e.is_empty());
        Ok(Settings {
            thresholds: Thresholds {
                unused_days: i64::from(keys.unused_days),
                key_max_age_days: i64::from(keys.key_max_age_days),
                short_lived_days: i64::from(keys.short_lived_days),
            },
            keys,
            roles,
            format,
            values,
            strategy,
            regions,
            start,
            end,
            started_at: now,
            endpoint_override: None,
            resume_stamp: None,
            claimed_stamp: None,
            notify,
            remote,
            alert_when_stopped: true,
            builtin_exceptions: None,
            cis_versions,
        })
    }
}

/// The keys that must agree with each other: `--compare` and `--no-compare`, the backoffs, the OU filters
/// and the OU tree.
fn check_together(k: &Keys) -> Result<(), ConfigError> {
    if k.compare.is_some() && !k.compare_runs {
        return Err(invalid(
            "compare",
            "--compare DIR and --no-compare conflict: give one of them",
        ));
    }
    if k.max_backoff_ms < k.initial_backoff_ms {
        return Err(invalid(
            "max_backoff_ms",
            "must not be smaller than initial_backoff_ms",
        ));
    }
    for (key, list) in [
        ("include_ous", &k.include_ous),
        ("exclude_ous", &k.exclude_ous),
    ] {
        if list.iter().flatten().any(|e| e.trim().is_empty()) {
            return Err(invalid(key, "entries must not be empty"));
        }
    }
    let ou_filters = k.include_ous.as_ref().is_some_and(|l| !l.is_empty())
        || k.exclude_ous.as_ref().is_some_and(|l| !l.is_empty());
    if !k.ou_paths && ou_filters {
        return Err(invalid(
            "ou_paths",
            "the OU filters (include_ous, exclude_ous) need the OU tree: drop --no-ou-paths (ou_paths = false) or filter by account",
        ));
    }
    Ok(())
}

/// The reports' S3 location (`output_dir = s3://…`), with its KMS key and expected owner checked.
fn s3_location(k: &Keys) -> Result<Option<S3Location>, ConfigError> {
    let remote = match S3Location::parse(&k.output_dir.to_string_lossy()) {
        None => None,
        Some(Ok(l)) => Some(l),
        Some(Err(e)) => return Err(invalid("output_dir", e)),
    };
    if k.s3_kms_key
        .as_ref()
        .is_some_and(|a| !a.starts_with("arn:"))
    {
        return Err(invalid(
            "s3_kms_key",
            "give the KMS key's ARN (arn:aws:kms:REGION:ACCOUNT:key/ID or an alias ARN)",
        ));
    }
    if k.s3_expected_owner
        .as_ref()
        .is_some_and(|a| a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(invalid(
            "s3_expected_owner",
            "must be a 12-digit account id",
        ));
    }
    Ok(remote)
}

#[cfg(test)]
mod tests;
