//! Configuration: one `Config` (all `Option`s) read from the TOML file and mirrored one-to-one by the
//! command-line flags in the binary, merged `cli.or(file)`, then resolved into `Settings`, the concrete
//! values the engine runs with. Defaults live only in `Settings::resolve`; nothing else invents them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, Utc};
use serde::Deserialize;

/// The IAM lifecycle events the seed script tracked, in its order.
pub const DEFAULT_EVENT_NAMES: [&str; 5] = [
    "DeleteUser",
    "DeleteAccessKey",
    "DeleteLoginProfile",
    "CreateAccessKey",
    "CreateUser",
];

/// LookupEvents only reaches back 90 days (CloudTrail event history), so that is the default window.
pub const LOOKUP_HISTORY_DAYS: i64 = 90;

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

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

/// Every tunable of an audit. Each field is a key of the TOML file and (unless documented as file-only in
/// `config.example.toml`) a `--flag` of the same name with `-` for `_`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Named AWS profile for the management account; the default credential chain when unset.
    pub profile: Option<String>,
    /// Name of the audit role to assume in every member account.
    pub role: Option<String>,
    /// Roles tried in order in each account (the first that can be assumed is used and reported as
    /// `role_used`); replaces `role`.
    pub roles: Option<Vec<String>>,
    /// Audit the management account with the caller's own credentials when none of the roles can be
    /// assumed there (default true).
    pub management_as_caller: Option<bool>,
    /// The reports' format: "csv" (default) or "jsonl".
    pub format: Option<String>,
    /// Audit only these accounts: 12-digit ids, or name globs (`*`, `?`), e.g. ["prod-*", "111122223333"].
    pub include_accounts: Option<Vec<String>>,
    /// Never audit these accounts (ids or name globs); wins over `include_accounts`.
    pub exclude_accounts: Option<Vec<String>>,
    /// Audit only the accounts under these OUs: OU or root ids (`ou-…`, `r-…`), or globs over the OU path
    /// (`Root/Workloads/Prod`); an entry covers the OU and every OU below it.
    pub include_ous: Option<Vec<String>>,
    /// Never audit the accounts under these OUs (ids or path globs); wins over the includes.
    pub exclude_ous: Option<Vec<String>>,
    /// Read the OU tree (ListRoots, ListOrganizationalUnitsForParent, ListAccountsForParent) for the
    /// accounts report's `ou_path` (default true). The OU filters need it.
    pub ou_paths: Option<bool>,
    /// Pages read at most from one listing before it is reported as `PageLimit` (file-only).
    pub max_pages: Option<usize>,
    /// ExternalId passed to AssumeRole, when the role's trust policy requires one.
    pub external_id: Option<String>,
    /// Session name of the assumed-role sessions, as it shows in the member accounts' CloudTrail.
    pub session_name: Option<String>,
    /// Lifetime asked of each assumed-role session, in seconds (900..=43200).
    pub session_duration_secs: Option<u64>,
    /// Region for the global services (Organizations, STS, IAM).
    pub region: Option<String>,
    /// Directory the four CSV reports go to.
    pub output_dir: Option<PathBuf>,
    /// First day of the CloudTrail window, YYYY-MM-DD, UTC.
    pub start_date: Option<String>,
    /// Last day of the CloudTrail window (inclusive), YYYY-MM-DD, UTC. Default: now.
    pub end_date: Option<String>,
    /// CloudTrail window as "the last N days". Conflicts with `start_date`.
    pub days: Option<u32>,
    /// Accounts audited at once.
    pub concurrency: Option<usize>,
    /// Users audited at once inside one account.
    pub user_concurrency: Option<usize>,
    /// IAM calls per second per account (IAM's quota is account-wide and unpublished).
    pub iam_rate: Option<u32>,
    /// IAM bucket burst.
    pub iam_burst: Option<u32>,
    /// LookupEvents calls per second per account and region (AWS: 2).
    pub cloudtrail_rate: Option<u32>,
    /// LookupEvents bucket burst.
    pub cloudtrail_burst: Option<u32>,
    /// Regions whose CloudTrail event history is searched.
    pub regions: Option<Vec<String>>,
    /// CloudTrail event names looked up, one LookupEvents attribute each.
    pub event_names: Option<Vec<String>>,
    /// Attempts per AWS call, first included (SDK adaptive retry mode).
    pub max_attempts: Option<u32>,
    /// First retry backoff, milliseconds.
    pub initial_backoff_ms: Option<u64>,
    /// Longest retry backoff, milliseconds.
    pub max_backoff_ms: Option<u64>,
    /// `"es"` writes the seed script's Spanish values (Configurada, Nunca, ...); `"en"` the default.
    pub legacy_values: Option<String>,
    /// Prefix formula-like cells with `'` (OWASP CSV injection). Default true.
    pub escape_formulas: Option<bool>,
    /// Records buffered between the auditors and the writer (file-only).
    pub channel_capacity: Option<usize>,
    /// HTTP requests in flight at once across the run (bounds connections, hence memory). Unset: follows
    /// the observed latency, so that a quota-bound run is never held back.
    pub max_in_flight: Option<usize>,
    /// How the IAM inventory is read: "auto" (the credential report where allowed, else per-user calls),
    /// "api" (per-user calls) or "credential_report" (the report only).
    pub strategy: Option<String>,
    /// Days after which an unused (or never used) password or active key is flagged (CIS: 45).
    pub unused_days: Option<u32>,
    /// Days after which an active key is flagged as due for rotation (CIS: 90).
    pub key_max_age_days: Option<u32>,
    /// After SIGINT or SIGTERM, seconds the running accounts get to finish before they are closed as
    /// partial (0: at once). Schedulers send SIGKILL some time after SIGTERM (Kubernetes and ECS: 30 s).
    pub shutdown_grace_secs: Option<u64>,
    /// Keep the events of every service LookupEvents returns for the event names, not IAM's alone.
    pub all_event_sources: Option<bool>,
    /// Longest one AWS call may take, its SDK retries included, in seconds (each attempt gets a third).
    pub call_timeout_secs: Option<u64>,
    /// Longest one account's audit may take, in seconds; past it the account is `partial` (`Timeout`).
    pub account_budget_secs: Option<u64>,
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

    /// Precedence: `self` (the command line) over `file`, field by field.
    pub fn or(self, file: Config) -> Config {
        macro_rules! merge {
            ($($f:ident),* $(,)?) => { Config { $($f: self.$f.or(file.$f)),* } };
        }
        merge!(
            profile,
            role,
            roles,
            management_as_caller,
            format,
            include_accounts,
            exclude_accounts,
            include_ous,
            exclude_ous,
            ou_paths,
            max_pages,
            external_id,
            session_name,
            session_duration_secs,
            region,
            output_dir,
            start_date,
            end_date,
            days,
            concurrency,
            user_concurrency,
            iam_rate,
            iam_burst,
            cloudtrail_rate,
            cloudtrail_burst,
            regions,
            event_names,
            max_attempts,
            initial_backoff_ms,
            max_backoff_ms,
            legacy_values,
            escape_formulas,
            channel_capacity,
            max_in_flight,
            strategy,
            unused_days,
            key_max_age_days,
            shutdown_grace_secs,
            all_event_sources,
            call_timeout_secs,
            account_budget_secs,
        )
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

/// The resolved configuration the engine runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub profile: Option<String>,
    pub role: String,
    /// The roles tried in order (`role` first when `roles` is not set).
    pub roles: Vec<String>,
    /// Audit the management account as the caller when no role can be assumed there.
    pub management_as_caller: bool,
    pub format: Format,
    /// Account filters: ids or name globs. An empty include list includes every account.
    pub include_accounts: Vec<String>,
    pub exclude_accounts: Vec<String>,
    /// OU filters: OU or root ids, or globs over the OU path. Each entry covers the OUs below it.
    pub include_ous: Vec<String>,
    pub exclude_ous: Vec<String>,
    /// Read the OU tree for `ou_path` and the OU filters.
    pub ou_paths: bool,
    /// Pages read at most from one listing.
    pub max_pages: usize,
    pub external_id: Option<String>,
    pub session_name: String,
    pub session_duration: Duration,
    pub region: String,
    pub output_dir: PathBuf,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Start of the run, UTC: the file stamp and the reference for key ages.
    pub started_at: DateTime<Utc>,
    pub concurrency: usize,
    pub user_concurrency: usize,
    pub iam_rate: u32,
    pub iam_burst: u32,
    pub cloudtrail_rate: u32,
    pub cloudtrail_burst: u32,
    pub regions: Vec<String>,
    pub event_names: Vec<String>,
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub values: Values,
    pub escape_formulas: bool,
    pub channel_capacity: usize,
    /// A fixed cap on the requests in flight; `None`: derived from the rates and the observed latency.
    pub max_in_flight: Option<usize>,
    pub strategy: Strategy,
    /// Thresholds of the risk flags.
    pub thresholds: crate::risk::Thresholds,
    /// After a signal, how long running accounts may go on.
    pub shutdown_grace: Duration,
    /// Keep other services' events (default: IAM's only).
    pub all_event_sources: bool,
    /// One AWS call, its SDK attempts included.
    pub call_timeout: Duration,
    /// One account's whole audit.
    pub account_budget: Duration,
    /// Send every call to this endpoint with these static credentials instead of the configured profile:
    /// how `demo` and in-process tests reach the simulator. Not a config key.
    pub endpoint_override: Option<EndpointOverride>,
    /// Continue the interrupted run of this stamp in `output_dir` (`--resume`). Not a config key.
    pub resume_stamp: Option<String>,
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

fn positive<T: PartialOrd + Default + Copy + std::fmt::Display>(
    key: &'static str,
    v: Option<T>,
    default: T,
) -> Result<T, ConfigError> {
    let v = v.unwrap_or(default);
    if v <= T::default() {
        return Err(invalid(key, format!("must be greater than 0, got {v}")));
    }
    Ok(v)
}

/// Parse `YYYY-MM-DD` as a UTC date.
pub fn parse_date(key: &'static str, s: &str) -> Result<NaiveDate, ConfigError> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
        invalid(
            key,
            format!("'{s}' is not a date; use YYYY-MM-DD (UTC), e.g. 2026-03-05"),
        )
    })
}

/// The CloudTrail window: `--days` and `--start-date` conflict; `--end-date` is inclusive and defaults to
/// now; the default window is the whole of LookupEvents' 90 days.
pub fn resolve_window(
    start_date: Option<&str>,
    end_date: Option<&str>,
    days: Option<u32>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ConfigError> {
    if start_date.is_some() && days.is_some() {
        return Err(invalid(
            "days",
            "conflicts with start_date: give either a start date or a number of days",
        ));
    }
    let end = match end_date {
        Some(s) => {
            let d = parse_date("end_date", s)?;
            let next_midnight = d
                .succ_opt()
                .ok_or_else(|| invalid("end_date", format!("'{s}' is out of range")))?
                .and_hms_opt(0, 0, 0)
                .expect("midnight exists")
                .and_utc();
            next_midnight.min(now)
        }
        None => now,
    };
    let start = match (start_date, days) {
        (Some(s), _) => parse_date("start_date", s)?
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc(),
        (None, Some(0)) => return Err(invalid("days", "must be at least 1")),
        (None, Some(n)) => end - ChronoDuration::days(i64::from(n)),
        (None, None) => end - ChronoDuration::days(LOOKUP_HISTORY_DAYS),
    };
    if start > now {
        return Err(invalid(
            "start_date",
            format!("{} is in the future", start.format("%Y-%m-%d")),
        ));
    }
    if start >= end {
        return Err(invalid(
            "end_date",
            format!(
                "the window is empty: start {} is not before end {}",
                start.format("%Y-%m-%d"),
                end.format("%Y-%m-%dT%H:%M:%SZ")
            ),
        ));
    }
    Ok((start, end))
}

impl Settings {
    /// Apply the defaults and validate. `now` is the run's start time.
    pub fn resolve(c: Config, now: DateTime<Utc>) -> Result<Settings, ConfigError> {
        let roles: Vec<String> = match (&c.roles, c.role.as_deref().map(str::trim)) {
            (Some(list), _) => list.iter().map(|r| r.trim().to_string()).collect(),
            (None, Some(r)) if !r.is_empty() => vec![r.to_string()],
            _ => Vec::new(),
        };
        if roles.is_empty() || roles.iter().any(String::is_empty) {
            return Err(invalid(
                "role",
                "is required: pass --role NAME (e.g. IAMAuditRole or AWSControlTowerExecution), --roles A,B, or set role or roles in the config file",
            ));
        }
        if let Some(bad) = roles
            .iter()
            .find(|r| r.contains(':') && !r.starts_with("arn:"))
        {
            return Err(invalid("role", format!("'{bad}' is not a role name")));
        }
        let role = roles[0].clone();
        let session_name = c.session_name.unwrap_or_else(|| "iam-audit".into());
        // STS: RoleSessionName is 2-64 chars of [\w+=,.@-].
        let valid_session = (2..=64).contains(&session_name.len())
            && session_name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "_+=,.@-".contains(ch));
        if !valid_session {
            return Err(invalid(
                "session_name",
                format!("'{session_name}' must be 2-64 characters of letters, digits and _+=,.@-"),
            ));
        }
        let session_secs = c.session_duration_secs.unwrap_or(3600);
        if !(900..=43200).contains(&session_secs) {
            return Err(invalid(
                "session_duration_secs",
                format!("must be between 900 and 43200 seconds (STS limits), got {session_secs}"),
            ));
        }
        let (start, end) =
            resolve_window(c.start_date.as_deref(), c.end_date.as_deref(), c.days, now)?;
        if now - start > ChronoDuration::days(LOOKUP_HISTORY_DAYS) + ChronoDuration::days(1) {
            tracing::warn!(
                "start date {} is more than {LOOKUP_HISTORY_DAYS} days ago; CloudTrail LookupEvents only returns the last {LOOKUP_HISTORY_DAYS} days",
                start.format("%Y-%m-%d")
            );
        }
        // IAM's events are recorded in its partition's home region (us-east-1 in aws, cn-north-1 in
        // aws-cn, us-gov-west-1 in aws-us-gov).
        let home = iam_home_region(partition_of(c.region.as_deref().unwrap_or("us-east-1")));
        let regions = c.regions.unwrap_or_else(|| vec![home.to_string()]);
        if regions.is_empty() || regions.iter().any(|r| !valid_region(r)) {
            return Err(invalid(
                "regions",
                format!("{regions:?} must be a non-empty list of region names such as us-east-1"),
            ));
        }
        let event_names = c
            .event_names
            .unwrap_or_else(|| DEFAULT_EVENT_NAMES.iter().map(|s| s.to_string()).collect());
        if event_names.iter().any(|e| e.trim().is_empty()) {
            return Err(invalid("event_names", "event names must not be empty"));
        }
        let values = match c.legacy_values.as_deref() {
            None | Some("en") => Values::English,
            Some("es") => Values::LegacySpanish,
            Some(other) => {
                return Err(invalid(
                    "legacy_values",
                    format!("'{other}' is not supported; use \"es\" for the seed script's Spanish values or \"en\""),
                ))
            }
        };
        let strategy = match c.strategy.as_deref() {
            None | Some("auto") => Strategy::Auto,
            Some("api") => Strategy::Api,
            Some("credential_report") => Strategy::CredentialReport,
            Some(other) => {
                return Err(invalid(
                    "strategy",
                    format!(
                    "'{other}' is not a strategy; use \"auto\", \"api\" or \"credential_report\""
                ),
                ))
            }
        };
        let region = c.region.unwrap_or_else(|| "us-east-1".into());
        if !valid_region(&region) {
            return Err(invalid(
                "region",
                format!("'{region}' is not a region name"),
            ));
        }
        let initial_backoff =
            Duration::from_millis(positive("initial_backoff_ms", c.initial_backoff_ms, 1000)?);
        let max_backoff =
            Duration::from_millis(positive("max_backoff_ms", c.max_backoff_ms, 20_000)?);
        if max_backoff < initial_backoff {
            return Err(invalid(
                "max_backoff_ms",
                "must not be smaller than initial_backoff_ms",
            ));
        }
        let include_ous = c.include_ous.unwrap_or_default();
        let exclude_ous = c.exclude_ous.unwrap_or_default();
        let ou_paths = c.ou_paths.unwrap_or(true);
        for (key, list) in [("include_ous", &include_ous), ("exclude_ous", &exclude_ous)] {
            if list.iter().any(|e| e.trim().is_empty()) {
                return Err(invalid(key, "entries must not be empty"));
            }
        }
        let ou_filters = !include_ous.is_empty() || !exclude_ous.is_empty();
        if !ou_paths && ou_filters {
            return Err(invalid(
                "ou_paths",
                "the OU filters (include_ous, exclude_ous) need the OU tree: drop --no-ou-paths (ou_paths = false) or filter by account",
            ));
        }
        Ok(Settings {
            profile: c.profile.filter(|p| !p.is_empty()),
            role,
            roles,
            management_as_caller: c.management_as_caller.unwrap_or(true),
            include_accounts: c.include_accounts.unwrap_or_default(),
            exclude_accounts: c.exclude_accounts.unwrap_or_default(),
            include_ous,
            exclude_ous,
            ou_paths,
            max_pages: positive("max_pages", c.max_pages, 100_000)?,
            format: match c.format.as_deref() {
                None | Some("csv") => Format::Csv,
                Some("jsonl") => Format::Jsonl,
                Some(other) => {
                    return Err(invalid(
                        "format",
                        format!("'{other}' is not a format; use \"csv\" or \"jsonl\""),
                    ))
                }
            },
            external_id: c.external_id.filter(|e| !e.is_empty()),
            session_name,
            session_duration: Duration::from_secs(session_secs),
            region,
            output_dir: c.output_dir.unwrap_or_else(|| PathBuf::from(".")),
            start,
            end,
            started_at: now,
            concurrency: positive("concurrency", c.concurrency, 64)?,
            user_concurrency: positive("user_concurrency", c.user_concurrency, 4)?,
            iam_rate: positive("iam_rate", c.iam_rate, 10)?,
            iam_burst: positive("iam_burst", c.iam_burst, 5)?,
            cloudtrail_rate: positive("cloudtrail_rate", c.cloudtrail_rate, 2)?,
            cloudtrail_burst: positive("cloudtrail_burst", c.cloudtrail_burst, 1)?,
            regions,
            event_names,
            max_attempts: positive("max_attempts", c.max_attempts, 10)?,
            initial_backoff,
            max_backoff,
            values,
            escape_formulas: c.escape_formulas.unwrap_or(true),
            channel_capacity: positive("channel_capacity", c.channel_capacity, 1024)?,
            max_in_flight: match c.max_in_flight {
                Some(n) => Some(positive("max_in_flight", Some(n), n)?),
                None => None,
            },
            strategy,
            thresholds: crate::risk::Thresholds {
                unused_days: i64::from(positive("unused_days", c.unused_days, 45)?),
                key_max_age_days: i64::from(positive("key_max_age_days", c.key_max_age_days, 90)?),
            },
            shutdown_grace: Duration::from_secs(c.shutdown_grace_secs.unwrap_or(10)),
            all_event_sources: c.all_event_sources.unwrap_or(false),
            call_timeout: Duration::from_secs(positive(
                "call_timeout_secs",
                c.call_timeout_secs,
                60,
            )?),
            account_budget: Duration::from_secs(positive(
                "account_budget_secs",
                c.account_budget_secs,
                3600,
            )?),
            endpoint_override: None,
            resume_stamp: None,
        })
    }

    /// Whether an OU filter is set (it needs the OU tree).
    pub fn ou_filters(&self) -> bool {
        !self.include_ous.is_empty() || !self.exclude_ous.is_empty()
    }

    /// The ARNs of every role to try in an account of `partition` (read from the account's ARN), in
    /// order. A full ARN is kept as given, partition and path included, with the account's id.
    pub fn role_arns(&self, account_id: &str, partition: &str) -> Vec<String> {
        self.roles
            .iter()
            .map(|r| role_arn(r, account_id, partition))
            .collect()
    }
}

/// `*` and `?` glob, case-sensitive, over characters.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A role's ARN in an account: a name takes the account's partition; a full ARN keeps its own.
fn role_arn(role: &str, account_id: &str, partition: &str) -> String {
    if let Some(rest) = role.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        if let [given_partition, "iam", "", _, resource] = parts.as_slice() {
            return format!("arn:{given_partition}:iam::{account_id}:{resource}");
        }
    }
    format!("arn:{partition}:iam::{account_id}:role/{role}")
}

impl Settings {
    /// One attempt of a call: a third of the call's timeout, at least a second, so that a stalled attempt
    /// leaves time for the SDK to retry.
    pub fn attempt_timeout(&self) -> Duration {
        (self.call_timeout / 3)
            .max(Duration::from_secs(1))
            .min(self.call_timeout)
    }

    /// The `YYYYMMDD_HHMMSS` stamp of the output files, as the seed script writes it.
    pub fn stamp(&self) -> String {
        self.started_at.format("%Y%m%d_%H%M%S").to_string()
    }
}

/// The AWS partition of a region.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else {
        "aws"
    }
}

/// The region where a partition's IAM (a global service) records its CloudTrail events.
pub fn iam_home_region(partition: &str) -> &'static str {
    match partition {
        "aws-cn" => "cn-north-1",
        "aws-us-gov" => "us-gov-west-1",
        "aws-iso" => "us-iso-east-1",
        "aws-iso-b" => "us-isob-east-1",
        _ => "us-east-1",
    }
}

fn valid_region(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 32
        && r.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 5, 15, 30, 22).unwrap()
    }

    fn base() -> Config {
        Config {
            role: Some("IAMAuditRole".into()),
            ..Config::default()
        }
    }

    #[test]
    fn glob_matches_star_and_question_mark() {
        assert!(glob("*a*b?", "xxaYYbZ") && !glob("a*", "ba") && glob("*", ""));
        assert!(glob("prod-legacy?", "prod-legacy1") && !glob("prod-legacy?", "prod-legacy12"));
    }

    #[test]
    fn ou_filters_need_the_ou_tree() {
        let c = Config {
            include_ous: Some(vec!["Root/Prod".into()]),
            ou_paths: Some(false),
            ..base()
        };
        let e = Settings::resolve(c, now()).unwrap_err().to_string();
        assert_eq!(e, "ou_paths: the OU filters (include_ous, exclude_ous) need the OU tree: drop --no-ou-paths (ou_paths = false) or filter by account");
        let c = Config {
            exclude_ous: Some(vec![" ".into()]),
            ..base()
        };
        let e = Settings::resolve(c, now()).unwrap_err().to_string();
        assert_eq!(e, "exclude_ous: entries must not be empty");
        let s = Settings::resolve(base(), now()).unwrap();
        assert!(s.ou_paths && s.max_pages == 100_000);
        let c = Config {
            max_pages: Some(0),
            ..base()
        };
        let e = Settings::resolve(c, now()).unwrap_err().to_string();
        assert_eq!(e, "max_pages: must be greater than 0, got 0");
    }

    #[test]
    fn strategy_and_thresholds() {
        let s = Settings::resolve(base(), now()).unwrap();
        assert_eq!(s.strategy, Strategy::Auto);
        assert_eq!(
            (s.thresholds.unused_days, s.thresholds.key_max_age_days),
            (45, 90)
        );
        let c = Config {
            strategy: Some("credential_report".into()),
            unused_days: Some(30),
            ..base()
        };
        let s = Settings::resolve(c, now()).unwrap();
        assert_eq!(s.strategy, Strategy::CredentialReport);
        assert_eq!(s.thresholds.unused_days, 30);
        let bad = Config {
            strategy: Some("report".into()),
            ..base()
        };
        assert_eq!(
            Settings::resolve(bad, now()).unwrap_err().to_string(),
            "strategy: 'report' is not a strategy; use \"auto\", \"api\" or \"credential_report\""
        );
        let zero = Config {
            key_max_age_days: Some(0),
            ..base()
        };
        assert_eq!(
            Settings::resolve(zero, now()).unwrap_err().to_string(),
            "key_max_age_days: must be greater than 0, got 0"
        );
    }

    #[test]
    fn default_window_is_lookupevents_history() {
        let s = Settings::resolve(base(), now()).unwrap();
        assert_eq!(s.end, now());
        assert_eq!(s.start, now() - ChronoDuration::days(90));
        assert_eq!(s.stamp(), "20260305_153022");
    }

    #[test]
    fn start_and_end_dates_are_utc_days_with_inclusive_end() {
        let (start, end) =
            resolve_window(Some("2026-02-18"), Some("2026-02-20"), None, now()).unwrap();
        assert_eq!(start.to_rfc3339(), "2026-02-18T00:00:00+00:00");
        assert_eq!(end.to_rfc3339(), "2026-02-21T00:00:00+00:00");
    }

    #[test]
    fn end_date_today_is_capped_at_now() {
        let (_, end) = resolve_window(Some("2026-02-18"), Some("2026-03-05"), None, now()).unwrap();
        assert_eq!(end, now());
    }

    #[test]
    fn days_conflicts_with_start_date() {
        let err = resolve_window(Some("2026-02-18"), None, Some(7), now()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "days: conflicts with start_date: give either a start date or a number of days"
        );
    }

    #[test]
    fn bad_dates_name_the_key_and_the_format() {
        let err = resolve_window(Some("18/02/2026"), None, None, now()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "start_date: '18/02/2026' is not a date; use YYYY-MM-DD (UTC), e.g. 2026-03-05"
        );
        let err = resolve_window(Some("2026-02-30"), None, None, now()).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("start_date: '2026-02-30' is not a date"));
    }

    #[test]
    fn empty_or_future_windows_are_errors() {
        let err = resolve_window(Some("2026-03-10"), None, None, now()).unwrap_err();
        assert_eq!(err.to_string(), "start_date: 2026-03-10 is in the future");
        let err = resolve_window(Some("2026-03-01"), Some("2026-02-01"), None, now()).unwrap_err();
        assert!(err.to_string().starts_with("end_date: the window is empty"));
        assert!(resolve_window(None, None, Some(0), now()).is_err());
    }

    #[test]
    fn days_counts_back_from_end() {
        let (start, end) = resolve_window(None, None, Some(7), now()).unwrap();
        assert_eq!(end - start, ChronoDuration::days(7));
    }

    #[test]
    fn cli_wins_over_file_which_wins_over_default() {
        let cli = Config {
            concurrency: Some(3),
            ..Config::default()
        };
        let file = Config {
            concurrency: Some(9),
            iam_rate: Some(4),
            role: Some("FromFile".into()),
            ..Config::default()
        };
        let s = Settings::resolve(cli.or(file), now()).unwrap();
        assert_eq!(s.concurrency, 3);
        assert_eq!(s.iam_rate, 4);
        assert_eq!(s.role, "FromFile");
        assert_eq!(s.cloudtrail_rate, 2);
        assert_eq!(s.user_concurrency, 4);
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::from_toml("role = \"R\"\nconcurency = 3\n").unwrap_err();
        assert!(err.contains("unknown field `concurency`"), "{err}");
    }

    #[test]
    fn bad_values_are_named() {
        let err = Config::from_toml("concurrency = \"many\"").unwrap_err();
        assert!(err.contains("concurrency"), "{err}");
        let c = Config {
            concurrency: Some(0),
            ..base()
        };
        assert_eq!(
            Settings::resolve(c, now()).unwrap_err().to_string(),
            "concurrency: must be greater than 0, got 0"
        );
        let c = Config {
            legacy_values: Some("fr".into()),
            ..base()
        };
        assert!(Settings::resolve(c, now())
            .unwrap_err()
            .to_string()
            .starts_with("legacy_values: 'fr' is not supported"));
    }

    #[test]
    fn debug_output_redacts_the_secret_key() {
        let mut s = Settings::resolve(base(), now()).unwrap();
        s.endpoint_override = Some(EndpointOverride {
            url: "http://127.0.0.1:1".into(),
            access_key_id: "AKIAEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG".into(),
        });
        let text = format!("{s:?}");
        assert!(!text.contains("wJalrXUtnFEMI"), "{text}");
        assert!(
            text.contains("secret_access_key: \"** redacted **\""),
            "{text}"
        );
    }

    #[test]
    fn role_is_required() {
        let err = Settings::resolve(Config::default(), now()).unwrap_err();
        assert!(err.to_string().starts_with("role: is required"));
    }

    #[test]
    fn role_arn_uses_partition_and_accepts_a_full_arn() {
        let s = Settings::resolve(base(), now()).unwrap();
        assert_eq!(
            s.role_arns("222222222222", "aws")[0],
            "arn:aws:iam::222222222222:role/IAMAuditRole"
        );
        let c = Config {
            role: Some("arn:aws:iam::111111111111:role/path/Audit".into()),
            ..Config::default()
        };
        let s = Settings::resolve(c, now()).unwrap();
        assert_eq!(
            s.role_arns("222222222222", "aws")[0],
            "arn:aws:iam::222222222222:role/path/Audit"
        );
        // A full ARN keeps its partition.
        let c = Config {
            role: Some("arn:aws-us-gov:iam::111111111111:role/Audit".into()),
            ..Config::default()
        };
        let s = Settings::resolve(c, now()).unwrap();
        assert_eq!(
            s.role_arns("222222222222", "aws")[0],
            "arn:aws-us-gov:iam::222222222222:role/Audit"
        );
        // A name takes the account's partition.
        assert_eq!(
            Settings::resolve(base(), now())
                .unwrap()
                .role_arns("222222222222", "aws-cn")[0],
            "arn:aws-cn:iam::222222222222:role/IAMAuditRole"
        );
    }

    #[test]
    fn cloudtrail_defaults_to_the_partitions_iam_home_region() {
        let region = |r: &str| {
            Settings::resolve(
                Config {
                    region: Some(r.into()),
                    ..base()
                },
                now(),
            )
            .unwrap()
            .regions
        };
        assert_eq!(region("us-east-1"), ["us-east-1"]);
        assert_eq!(region("cn-northwest-1"), ["cn-north-1"]);
        assert_eq!(region("us-gov-east-1"), ["us-gov-west-1"]);
    }
}
