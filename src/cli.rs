//! The command line (binary only; the library never sees clap or indicatif). Flags mirror the keys of
//! `iam_audit::Config` one-to-one; `into_config` builds the CLI side of the `cli.or(file)` merge. Progress
//! is drawn here: indicatif bars on a TTY, one plain line per account otherwise.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};
use iam_audit::report::{AccountRow, AuditStatus};
use iam_audit::stats::CallCounts;
use iam_audit::{Config, Observer};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Audit IAM access keys, console passwords, MFA and IAM lifecycle events across an AWS Organization.
#[derive(Debug, Parser)]
#[command(
    name = "iam-audit",
    version,
    args_conflicts_with_subcommands = true,
    term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub audit: AuditArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Audit every ACTIVE account of the organization (the default command).
    Audit(Box<AuditArgs>),
    /// Check that the role can be assumed and can read IAM and CloudTrail, per account; no audit.
    Check(Box<CheckArgs>),
    /// Run the whole engine against an embedded simulated organization: no AWS account needed.
    #[cfg(feature = "sim")]
    Demo(DemoArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), generated from these flags, to stdout.
    Man,
}

/// Who to be and which role to assume: the flags `audit` and `check` share.
#[derive(Debug, Args, Clone)]
pub struct Target {
    /// Named AWS profile (SSO profiles included) for the management account [default: the standard
    /// credential chain: environment, AWS_PROFILE, SSO, instance metadata]
    #[arg(long, value_name = "P")]
    pub profile: Option<String>,
    /// Name of the audit role to assume in each member account, e.g. IAMAuditRole or
    /// AWSControlTowerExecution (required here or in the config file)
    #[arg(long, value_name = "R", conflicts_with = "roles")]
    pub role: Option<String>,
    /// Roles to try in order in each account, comma-separated (e.g. IAMAuditRole,AWSControlTowerExecution);
    /// the one that worked is the accounts report's role_used
    #[arg(long, value_name = "R1,R2", value_delimiter = ',')]
    pub roles: Option<Vec<String>>,
    /// Do not audit the management account with the caller's own credentials when no role can be
    /// assumed there (it is then skipped)
    #[arg(long)]
    pub no_management_as_caller: bool,
    /// ExternalId for AssumeRole, when the role's trust policy requires one
    #[arg(long, value_name = "ID")]
    pub external_id: Option<String>,
    /// Session name of the assumed-role sessions [default: iam-audit]
    #[arg(long, value_name = "NAME")]
    pub session_name: Option<String>,
    /// Region of the global services (Organizations, STS, IAM) [default: us-east-1]
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
}

impl Target {
    /// These flags as the command line's side of a config.
    fn to_config(&self) -> Config {
        Config {
            profile: self.profile.clone(),
            role: self.role.clone(),
            roles: self.roles.clone(),
            management_as_caller: self.no_management_as_caller.then_some(false),
            external_id: self.external_id.clone(),
            session_name: self.session_name.clone(),
            region: self.region.clone(),
            ..Config::default()
        }
    }
}

/// Flags of `iam-audit check`.
#[derive(Debug, Args, Clone)]
pub struct CheckArgs {
    #[command(flatten)]
    pub target: Target,
    /// Check only this account id
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,
    /// TOML config file (see config.example.toml); flags override it
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Regions whose CloudTrail access is checked, comma-separated [default: us-east-1]
    #[arg(long, value_name = "R1,R2", value_delimiter = ',')]
    pub regions: Option<Vec<String>>,
    /// Accounts checked at once [default: 64]
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    #[command(flatten)]
    pub display: Display,
}

/// Size and shape of the simulated organization of `iam-audit demo`.
#[cfg(feature = "sim")]
#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Accounts in the simulated organization (every 12th is SUSPENDED)
    #[arg(long, default_value_t = 36)]
    pub accounts: usize,
    /// Most IAM users in one account (each account gets 2..=N)
    #[arg(long, default_value_t = 25)]
    pub users: usize,
    /// CloudTrail events per account
    #[arg(long, default_value_t = 60)]
    pub events: usize,
    /// Simulated API latency in milliseconds (plus up to 10 ms of jitter)
    #[arg(long, default_value_t = 15)]
    pub latency_ms: u64,
    /// Accounts whose audit role refuses AssumeRole, and accounts denying LookupEvents (the first N
    /// ACTIVE accounts each)
    #[arg(long, default_value_t = 2)]
    pub denied: usize,
    /// Seed of the generated organization
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Accounts audited at once
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Directory for the four CSV reports
    #[arg(long, value_name = "DIR", default_value = "iam-audit-demo")]
    pub output_dir: PathBuf,
    /// A scenario file (TOML, see README: The simulator) describing the organization and its faults;
    /// replaces the size flags above
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// An iam-audit config file (see config.example.toml) for the engine, e.g. other rates
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub display: Display,
}

/// Output and logging flags (CLI-only).
#[derive(Debug, Args, Clone)]
pub struct Display {
    /// Never draw progress bars; print one line per account instead.
    #[arg(long)]
    pub no_progress: bool,
    /// More log detail (-v debug, -vv trace of iam-audit's own modules).
    #[arg(short, long, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only errors and warnings on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args, Clone)]
pub struct AuditArgs {
    #[command(flatten)]
    pub target: Target,
    /// Directory for the four CSV reports [default: .]
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Continue the latest interrupted run in DIR, into its files: accounts already audited are kept,
    /// the others audited again (their earlier rows removed). Pass the run's flags again.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// TOML config file (see config.example.toml); flags override it
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// First day of the CloudTrail window, YYYY-MM-DD UTC [default: 90 days ago]
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub start_date: Option<String>,
    /// Last day of the CloudTrail window, inclusive, YYYY-MM-DD UTC [default: now]
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub end_date: Option<String>,
    /// CloudTrail window as the last N days (conflicts with --start-date)
    #[arg(long, value_name = "N", conflicts_with = "start_date")]
    pub days: Option<u32>,
    /// Accounts audited at once [default: 64]
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Users audited at once inside one account [default: 4]
    #[arg(long, value_name = "N")]
    pub user_concurrency: Option<usize>,
    /// Lifetime of each assumed-role session in seconds, 900-43200 [default: 3600]
    #[arg(long, value_name = "SECS")]
    pub session_duration_secs: Option<u64>,
    /// Regions whose CloudTrail event history is searched, comma-separated [default: us-east-1]
    #[arg(long, value_name = "R1,R2", value_delimiter = ',')]
    pub regions: Option<Vec<String>>,
    /// CloudTrail event names to look up, comma-separated [default: DeleteUser, DeleteAccessKey,
    /// DeleteLoginProfile, CreateAccessKey, CreateUser]
    #[arg(long, value_name = "E1,E2", value_delimiter = ',')]
    pub event_names: Option<Vec<String>>,
    /// IAM calls per second per account [default: 10]
    #[arg(long, value_name = "N")]
    pub iam_rate: Option<u32>,
    /// IAM calls allowed at once above the rate [default: 5]
    #[arg(long, value_name = "N")]
    pub iam_burst: Option<u32>,
    /// LookupEvents calls per second per account and region [default: 2]
    #[arg(long, value_name = "N")]
    pub cloudtrail_rate: Option<u32>,
    /// LookupEvents calls allowed at once above the rate [default: 1]
    #[arg(long, value_name = "N")]
    pub cloudtrail_burst: Option<u32>,
    /// Attempts per AWS call, first included (adaptive retries) [default: 10]
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,
    /// First retry backoff in milliseconds [default: 1000]
    #[arg(long, value_name = "MS")]
    pub initial_backoff_ms: Option<u64>,
    /// Longest retry backoff in milliseconds [default: 20000]
    #[arg(long, value_name = "MS")]
    pub max_backoff_ms: Option<u64>,
    /// A fixed cap on the HTTP requests in flight across all accounts [default: twice what the
    /// rates need at the observed network latency, at most 4096]
    #[arg(long, value_name = "N")]
    pub max_in_flight: Option<usize>,
    /// Audit only these accounts: 12-digit ids or name globs, comma-separated (e.g. 'prod-*,111122223333')
    #[arg(long, value_name = "ID|GLOB,...", value_delimiter = ',')]
    pub include_accounts: Option<Vec<String>>,
    /// Never audit these accounts (ids or name globs); wins over --include-accounts
    #[arg(long, value_name = "ID|GLOB,...", value_delimiter = ',')]
    pub exclude_accounts: Option<Vec<String>>,
    /// Audit only the accounts under these OUs, and the OUs below them: OU or root ids (ou-…, r-…) or
    /// globs over the OU path, comma-separated (e.g. 'Root/Workloads/Prod,ou-ab12-34cd56ef'); adds to
    /// --include-accounts
    #[arg(long, value_name = "ID|PATH,...", value_delimiter = ',')]
    pub include_ous: Option<Vec<String>>,
    /// Never audit the accounts under these OUs (ids or path globs); wins over the includes
    #[arg(long, value_name = "ID|PATH,...", value_delimiter = ',')]
    pub exclude_ous: Option<Vec<String>>,
    /// Do not read the OU tree: the accounts report's ou_path stays empty and the OU filters are refused
    #[arg(long)]
    pub no_ou_paths: bool,
    /// The reports' format: csv, or jsonl (one JSON object per row, the same fields) [default: csv]
    #[arg(long, value_name = "FORMAT", value_parser = ["csv", "jsonl"])]
    pub format: Option<String>,
    /// How the IAM inventory is read: auto (the credential report where the role may generate it,
    /// per-user calls where not), api (per-user calls) or credential_report [default: auto]
    #[arg(long, value_name = "STRATEGY", value_parser = ["auto", "api", "credential_report"])]
    pub strategy: Option<String>,
    /// Days after which an unused (or never used) password or active key is flagged [default: 45]
    #[arg(long, value_name = "DAYS")]
    pub unused_days: Option<u32>,
    /// Days after which an active access key is flagged for rotation [default: 90]
    #[arg(long, value_name = "DAYS")]
    pub key_max_age_days: Option<u32>,
    /// Longest one AWS call may take, its SDK retries included (each attempt gets a third) [default: 60]
    #[arg(long, value_name = "SECS")]
    pub call_timeout_secs: Option<u64>,
    /// Longest one account's audit may take; past it the account is partial, with a Timeout error
    /// [default: 3600]
    #[arg(long, value_name = "SECS")]
    pub account_budget_secs: Option<u64>,
    /// Keep the events of every service LookupEvents returns for the event names (Identity Center,
    /// ElastiCache, ... also have CreateUser/DeleteUser); by default IAM's only
    #[arg(long)]
    pub all_event_sources: bool,
    /// After SIGINT or SIGTERM, seconds running accounts get to finish before they are closed as
    /// partial [default: 10]
    #[arg(long, value_name = "SECS")]
    pub shutdown_grace_secs: Option<u64>,
    /// "es" writes the old script's Spanish values (Configurada, No configurada, Nunca, Nunca utilizada)
    #[arg(long, value_name = "LANG", value_parser = ["en", "es"])]
    pub legacy_values: Option<String>,
    /// Do not prefix formula-like cells (=, +, -, @, TAB, CR) with ' in the CSV files
    #[arg(long)]
    pub no_escape_formulas: bool,
    #[command(flatten)]
    pub display: Display,
}

impl AuditArgs {
    /// The command line's side of the `cli.or(file)` merge.
    pub fn to_config(&self) -> Config {
        Config {
            session_duration_secs: self.session_duration_secs,
            output_dir: self.output_dir.clone(),
            start_date: self.start_date.clone(),
            end_date: self.end_date.clone(),
            days: self.days,
            concurrency: self.concurrency,
            user_concurrency: self.user_concurrency,
            iam_rate: self.iam_rate,
            iam_burst: self.iam_burst,
            cloudtrail_rate: self.cloudtrail_rate,
            cloudtrail_burst: self.cloudtrail_burst,
            regions: self.regions.clone(),
            event_names: self.event_names.clone(),
            max_attempts: self.max_attempts,
            initial_backoff_ms: self.initial_backoff_ms,
            max_backoff_ms: self.max_backoff_ms,
            legacy_values: self.legacy_values.clone(),
            escape_formulas: self.no_escape_formulas.then_some(false),
            channel_capacity: None,
            max_in_flight: self.max_in_flight,
            strategy: self.strategy.clone(),
            format: self.format.clone(),
            include_accounts: self.include_accounts.clone(),
            exclude_accounts: self.exclude_accounts.clone(),
            include_ous: self.include_ous.clone(),
            exclude_ous: self.exclude_ous.clone(),
            ou_paths: self.no_ou_paths.then_some(false),
            unused_days: self.unused_days,
            key_max_age_days: self.key_max_age_days,
            shutdown_grace_secs: self.shutdown_grace_secs,
            all_event_sources: self.all_event_sources.then_some(true),
            call_timeout_secs: self.call_timeout_secs,
            account_budget_secs: self.account_budget_secs,
            ..self.target.to_config()
        }
    }
}

/// Set up tracing on stderr, routed through the progress bars (when any) so lines never tear.
///
/// An allow-list caps what reaches the log, whatever RUST_LOG says: iam-audit's own modules at any level,
/// every other crate (the AWS SDK, hyper, rustls, ...) at `error`, or `info` with -v. Their debug and trace
/// output can carry signed headers and session tokens, and a crate we did not think of must not be able
/// to leak them.
pub fn init_logging(display: &Display, bars: Option<MultiProgress>) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};
    let ours = match (display.quiet, display.verbose) {
        (true, _) => "warn",
        (false, 0) => "iam_audit=info,warn",
        (false, 1) => "iam_audit=debug,warn",
        (false, _) => "iam_audit=trace,info",
    };
    let base = std::env::var("RUST_LOG").unwrap_or_else(|_| ours.to_string());
    let wanted = EnvFilter::try_new(&base).unwrap_or_else(|_| EnvFilter::new(ours));
    // Without -v the SDK's own warnings (e.g. a retried 500) are left out: the accounts report and our
    // per-account lines already carry what failed, once and on one line.
    let others = if display.verbose == 0 {
        LevelFilter::ERROR
    } else {
        LevelFilter::INFO
    };
    let allowed = Targets::new()
        .with_target("iam_audit", LevelFilter::TRACE)
        .with_default(others);
    let writer = BarWriter(bars);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(move || writer.clone())
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(wanted)
        .with_filter(allowed);
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// Writes log lines to stderr, suspending the bars while it does.
#[derive(Clone)]
struct BarWriter(Option<MultiProgress>);

impl Write for BarWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &self.0 {
            Some(m) => m.suspend(|| std::io::stderr().write_all(buf))?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Progress as indicatif bars (TTY) or one line per account.
pub struct Progress {
    bars: Option<(MultiProgress, ProgressBar)>,
    quiet: bool,
    done: std::sync::atomic::AtomicUsize,
    total: std::sync::atomic::AtomicUsize,
    /// The live lines (calls per second; the slowest accounts in flight), and their ticker's stop flag.
    live_lines: std::sync::Mutex<Vec<ProgressBar>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Progress {
    pub fn new(display: &Display) -> Progress {
        let tty = std::io::stderr().is_terminal();
        let bars = (tty && !display.no_progress && !display.quiet).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8));
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg}").expect("static template"),
            );
            bar.enable_steady_tick(Duration::from_millis(250));
            bar.set_message("listing accounts…");
            (multi, bar)
        });
        Progress {
            bars,
            quiet: display.quiet,
            done: Default::default(),
            total: Default::default(),
            live_lines: Default::default(),
            stop: Default::default(),
        }
    }

    pub fn multi(&self) -> Option<MultiProgress> {
        self.bars.as_ref().map(|(m, _)| m.clone())
    }

    pub fn finish(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for line in self.live_lines.lock().expect("live lines").drain(..) {
            line.finish_and_clear();
        }
        if let Some((_, bar)) = &self.bars {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Progress {
    /// On a terminal, two live lines under the bar, redrawn every second: calls per second, throttles and
    /// retries; and the accounts in flight the longest, with their users read so far.
    fn live(&self, live: Arc<iam_audit::progress::Live>) {
        let Some((multi, bar)) = &self.bars else {
            return;
        };
        let accounts = bar.clone();
        let line = || {
            let b = multi.add(ProgressBar::new_spinner());
            b.set_style(ProgressStyle::with_template("  {msg}").expect("static template"));
            b
        };
        let (rate, slow) = (line(), line());
        self.live_lines
            .lock()
            .expect("live lines")
            .extend([rate.clone(), slow.clone()]);
        let stop = self.stop.clone();
        tokio::spawn(async move {
            let mut last = (live.stats.snapshot(), std::time::Instant::now());
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                let now = (live.stats.snapshot(), std::time::Instant::now());
                let secs = (now.1 - last.1).as_secs_f64().max(1e-3);
                rate.set_message(format!(
                    "{:.1} accounts/min · {:.0} calls/s · {} throttled · {} retried after 5xx · {} AssumeRole · {} accounts in flight",
                    accounts.per_sec() * 60.0,
                    (now.0.calls - last.0.calls) as f64 / secs,
                    now.0.throttled,
                    now.0.server_errors,
                    now.0.assume_role,
                    live.in_flight()
                ));
                let slowest = live.slowest(3);
                slow.set_message(if slowest.is_empty() {
                    String::new()
                } else {
                    format!("slowest: {}", slowest.join(" · "))
                });
                last = now;
            }
        });
    }

    fn accounts_listed(&self, _active: usize, total: usize) {
        self.total
            .store(total, std::sync::atomic::Ordering::Relaxed);
        if let Some((_, bar)) = &self.bars {
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} accounts {pos}/{len} [{wide_bar}] {percent}% ETA {eta} · {msg}",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            bar.set_length(total as u64);
            bar.set_message("auditing");
        } else if !self.quiet {
            eprintln!("organization: {total} accounts ({_active} active)");
        }
    }

    fn account_finished(&self, row: &AccountRow, calls: CallCounts) {
        let done = self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let total = self.total.load(std::sync::atomic::Ordering::Relaxed);
        let line = account_line(row);
        match &self.bars {
            Some((multi, bar)) => {
                bar.inc(1);
                bar.set_message(format!(
                    "{} calls, {} throttled",
                    calls.calls, calls.throttled
                ));
                if matches!(
                    row.audit_status,
                    AuditStatus::Partial | AuditStatus::Skipped
                ) {
                    let _ = multi.println(format!("  {line}"));
                }
            }
            None if !self.quiet => eprintln!("[{done}/{total}] {line}"),
            None => {}
        }
    }
}

fn account_line(row: &AccountRow) -> String {
    let mut line = format!(
        "{} ({}): {}",
        row.account_id,
        row.account_name,
        row.audit_status.as_str()
    );
    if row.audit_status != AuditStatus::NotActive {
        line.push_str(&format!(
            ", {} users, {} keys, {} events, {:.1}s",
            row.users, row.keys, row.events, row.duration_s
        ));
    } else {
        line.push_str(&format!(" ({})", row.account_status));
    }
    if !row.error.is_empty() {
        line.push_str(&format!(" — {}", row.error));
    }
    line
}

/// Load `--config` (if any) under the flags and resolve; a usage error is printed and gives `Err(2)`.
fn settings_from(cli: Config, config: Option<&PathBuf>) -> Result<iam_audit::Settings, i32> {
    let file = match config {
        Some(path) => Config::from_file(path).map_err(|e| {
            eprintln!("error: {e}");
            2
        })?,
        None => Config::default(),
    };
    iam_audit::Settings::resolve(cli.or(file), chrono::Utc::now()).map_err(|e| {
        eprintln!("error: {e}");
        2
    })
}

/// `iam-audit check`: one line per account on stdout; exit 0 when every account is ready for an audit.
pub async fn check(args: CheckArgs) -> i32 {
    init_logging(&args.display, None);
    let cli = Config {
        regions: args.regions.clone(),
        concurrency: args.concurrency,
        // One quick attempt is enough to see a denial; transient faults still get a few.
        max_attempts: Some(3),
        initial_backoff_ms: Some(200),
        ..args.target.to_config()
    };
    let mut settings = match settings_from(cli, args.config.as_ref()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    // One day of history is enough to see whether LookupEvents is allowed.
    settings.start = settings.end - chrono::Duration::days(1);
    let rows = match iam_audit::check::check(settings, args.account.clone()).await {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("error: {e}");
            return e.exit_code();
        }
    };
    let show = |r: &Result<(), iam_audit::retry::Failure>| match r {
        Ok(()) => "ok".to_string(),
        Err(f) => f.to_string(),
    };
    let mut ready = 0;
    for row in &rows {
        if row.ok() {
            ready += 1;
        }
        let mut line = format!(
            "{} ({}): sts:AssumeRole {}",
            row.account.id,
            row.account.name,
            show(&row.assume_role)
        );
        if row.assume_role.is_ok() {
            line.push_str(&format!("; iam:ListUsers {}", show(&row.iam)));
            for (region, r) in &row.cloudtrail {
                line.push_str(&format!("; cloudtrail:LookupEvents {region} {}", show(r)));
            }
        }
        println!("{line}");
    }
    if !args.display.quiet {
        eprintln!("{ready} of {} accounts are ready for an audit", rows.len());
    }
    if ready == rows.len() {
        0
    } else {
        3
    }
}

/// Run an audit from parsed flags; returns the exit code.
pub async fn audit(args: AuditArgs) -> i32 {
    let progress = Arc::new(Progress::new(&args.display));
    init_logging(&args.display, progress.multi());
    let file = match &args.config {
        Some(path) => match Config::from_file(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        },
        None => Config::default(),
    };
    let mut config = args.to_config().or(file);
    // A resumed run is the interrupted run again: its files, its stamp, and its start time (key ages and
    // the CloudTrail window are as of the first start).
    let mut now = chrono::Utc::now();
    let mut resume_stamp = None;
    if let Some(dir) = &args.resume {
        if let Some(out) = &config.output_dir {
            let same = match (std::fs::canonicalize(out), std::fs::canonicalize(dir)) {
                (Ok(a), Ok(b)) => a == b,
                _ => out == dir,
            };
            if !same {
                eprintln!(
                    "error: --resume {} and --output-dir {} differ; a run is resumed into its own directory (pass the same DIR to both, or --resume alone)",
                    dir.display(),
                    out.display()
                );
                return 2;
            }
        }
        config.output_dir = Some(dir.clone());
        match iam_audit::report::latest_run(dir) {
            Ok(Some((stamp, format, paths))) => {
                // The run is continued in its own format.
                let found = match format {
                    iam_audit::config::Format::Csv => "csv",
                    iam_audit::config::Format::Jsonl => "jsonl",
                };
                if config.format.as_deref().is_some_and(|f| f != found) {
                    eprintln!(
                        "error: --resume {}: the run to resume ({}) was written as {found}; pass --format {found} or leave --format out",
                        dir.display(),
                        paths.accounts.display()
                    );
                    return 2;
                }
                config.format = Some(found.to_string());
                now = iam_audit::report::stamp_time(&stamp).unwrap_or(now);
                resume_stamp = Some(stamp);
            }
            Ok(None) => {
                eprintln!(
                    "error: --resume {}: no run of iam-audit to resume there (no accounts_<stamp>.csv or .jsonl with its three sibling reports)",
                    dir.display()
                );
                return 2;
            }
            Err(e) => {
                eprintln!("error: --resume {}: {e}", dir.display());
                return 2;
            }
        }
    }
    let mut settings = match iam_audit::Settings::resolve(config, now) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    settings.resume_stamp = resume_stamp;
    run_with_progress(settings, progress, args.display.quiet).await
}

/// Exit code of a run stopped by SIGINT (design §2).
pub const EXIT_SIGINT: i32 = 130;
/// Exit code of a run stopped by SIGTERM.
pub const EXIT_SIGTERM: i32 = 143;

/// SIGINT and SIGTERM, watched from before the run starts (a signal before the watch would kill the
/// process with nothing flushed).
struct Signals {
    int: Option<tokio::signal::unix::Signal>,
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn watch() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        Signals {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
        }
    }

    /// The next SIGINT or SIGTERM, as its exit code.
    async fn next(&mut self) -> i32 {
        async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            _ = recv(&mut self.int) => EXIT_SIGINT,
            _ = recv(&mut self.term) => EXIT_SIGTERM,
        }
    }
}

/// Run the engine with SIGINT and SIGTERM wired to the shutdown, print the summary, return the exit code.
///
/// The first signal stops starting accounts and gives the running ones the grace period; the second ends
/// the grace (they are closed as partial, the files still flushed); a third exits at once. A run stopped
/// by a signal exits 130 (SIGINT) or 143 (SIGTERM), whatever it found.
async fn run_with_progress(
    settings: iam_audit::Settings,
    progress: Arc<Progress>,
    quiet: bool,
) -> i32 {
    let shutdown = iam_audit::Shutdown::default();
    let signalled = Arc::new(std::sync::atomic::AtomicI32::new(0));
    let grace = settings.shutdown_grace;
    let (on_signal, code) = (shutdown.clone(), signalled.clone());
    let mut signals = Signals::watch();
    tokio::spawn(async move {
        let first = signals.next().await;
        code.store(first, std::sync::atomic::Ordering::SeqCst);
        let name = if first == EXIT_SIGTERM {
            "SIGTERM"
        } else {
            "SIGINT"
        };
        tracing::warn!(
            "{name}: no new accounts are started; running ones get {} s to finish, then are closed as partial; the reports are flushed (signal again to stop them now)",
            grace.as_secs()
        );
        on_signal.stop_starting.cancel();
        tokio::select! {
            _ = tokio::time::sleep(grace) => {}
            _ = signals.next() => {
                tracing::warn!("second signal: running accounts are closed as partial now; the reports are flushed (a third signal quits without flushing)");
            }
        }
        on_signal.abort.cancel();
        signals.next().await;
        std::process::exit(first);
    });
    let result = iam_audit::run(settings, progress.clone(), shutdown).await;
    progress.finish();
    let signal_code = signalled.load(std::sync::atomic::Ordering::SeqCst);
    match result {
        Ok(summary) => {
            if !quiet {
                eprintln!("{summary}");
            }
            if signal_code != 0 {
                signal_code
            } else {
                summary.exit_code()
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

/// `iam-audit demo`: start the simulator on loopback, audit it with the real engine, print where the
/// reports are.
#[cfg(feature = "sim")]
pub async fn demo(args: DemoArgs) -> i32 {
    use iam_audit::sim::{Faults, Scenario, Sim};
    let progress = Arc::new(Progress::new(&args.display));
    init_logging(&args.display, progress.multi());
    let scenario = match &args.scenario {
        // A scenario file describes the whole simulated AWS, faults included.
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| Scenario::from_toml(&t))
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: scenario {}: {e}", path.display());
                return 2;
            }
        },
        None => Scenario {
            seed: args.seed,
            accounts: args.accounts,
            suspended_every: 12,
            users_min: 2.min(args.users),
            users_max: args.users,
            events_per_account: args.events,
            faults: Faults {
                latency_ms: args.latency_ms,
                jitter_ms: 10.min(args.latency_ms),
                iam_rate: 10.0,
                iam_burst: 10.0,
                cloudtrail_rate: 2.0,
                cloudtrail_burst: 2.0,
                log_calls: false,
                ..Faults::default()
            },
            ..Scenario::default()
        },
    };
    let org = scenario.generate();
    let active: Vec<&str> = org
        .accounts
        .iter()
        .filter(|a| a.status == "ACTIVE")
        .map(|a| a.id.as_str())
        .collect();
    let mut faults = scenario.faults.clone();
    if args.scenario.is_none() {
        // The first ACTIVE accounts deny AssumeRole, the next ones LookupEvents.
        let denied = |skip| {
            active
                .iter()
                .skip(skip)
                .take(args.denied)
                .map(|id| id.to_string())
                .collect()
        };
        faults.deny_assume_role = denied(0);
        faults.deny_lookup_events = denied(args.denied);
    }
    let org_summary = (org.accounts.len(), active.len());
    let sim = match Sim::start(org, faults.clone()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot start the simulator on 127.0.0.1: {e}");
            return 1;
        }
    };
    if !args.display.quiet {
        let active = org_summary.1;
        eprintln!(
            "demo: a simulated organization of {} accounts ({active} active) on {} ({} ms latency, IAM {} req/s and LookupEvents {} req/s per account, {} accounts denying AssumeRole, {} denying LookupEvents)",
            org_summary.0,
            sim.endpoint(),
            faults.latency_ms,
            faults.iam_rate,
            faults.cloudtrail_rate,
            faults.deny_assume_role.len(),
            faults.deny_lookup_events.len(),
        );
    }
    let config = Config {
        role: Some("IAMAuditRole".into()),
        output_dir: Some(args.output_dir.clone()),
        concurrency: Some(args.concurrency),
        max_attempts: Some(10),
        initial_backoff_ms: Some(200),
        ..Config::default()
    };
    let mut settings = match settings_from(config, args.config.as_ref()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    settings.endpoint_override = Some(iam_audit::config::EndpointOverride {
        url: sim.endpoint(),
        access_key_id: "AKIADEMOMANAGEMENT01".into(),
        secret_access_key: "demo-secret-not-a-real-key".into(),
    });
    run_with_progress(settings, progress, args.display.quiet).await
}

/// `iam-audit completions SHELL`: the completion script, from the clap definitions.
pub fn completions(shell: clap_complete::Shell) -> i32 {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut cmd, "iam-audit", &mut std::io::stdout());
    0
}

/// `iam-audit man`: the man page, from the clap definitions.
pub fn man() -> i32 {
    let cmd = <Cli as clap::CommandFactory>::command();
    match clap_mangen::Man::new(cmd).render(&mut std::io::stdout()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
