//! The command line's definitions. The settings' flags are not written here: `SettingFlags` builds them
//! from the one definition of each key (`iam_audit::config::keys()`: its flag, help and default), and
//! hands their values to the library as a `Config`, the command line's side of the `cli.or(file)` merge.

use std::path::PathBuf;

use clap::builder::PossibleValuesParser;
use clap::{Arg, ArgAction, ArgMatches, Args, FromArgMatches, Parser, Subcommand};
use iam_audit::config::{keys, Exposure, Key, Kind};
use iam_audit::Config;

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
    /// Compare two runs already on disk (no AWS call): the changes report on stdout.
    Diff(DiffArgs),
    /// Exceptions files (docs/exceptions.md)
    #[command(subcommand)]
    Exceptions(ExceptionsCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), generated from these flags, to stdout.
    Man,
}

#[derive(Debug, Args, Clone)]
pub struct AuditArgs {
    /// TOML config file (see config.example.toml); flags override it
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Continue the latest interrupted run in DIR, into its files: accounts already audited are kept,
    /// the others audited again (their earlier rows removed). Pass the run's flags again
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    #[command(flatten)]
    pub settings: SettingFlags<false>,
    #[command(flatten)]
    pub display: Display,
}

/// Flags of `iam-audit check`.
#[derive(Debug, Args, Clone)]
pub struct CheckArgs {
    /// Check only this account id
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,
    /// TOML config file (see config.example.toml); flags override it
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: SettingFlags<true>,
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
    /// Weeks the organization has lived: each deletes, creates and changes a few users and keys
    /// [default: the number of earlier runs in --output-dir, so a second demo has changes to report]
    #[arg(long, value_name = "N")]
    pub epoch: Option<u32>,
    /// Accounts audited at once
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Directory for the reports
    #[arg(long, value_name = "DIR", default_value = "iam-audit-demo")]
    pub output_dir: PathBuf,
    /// A scenario file (TOML, see docs/simulator.md) describing the organization and its faults;
    /// replaces the size flags above
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// An iam-audit config file (see config.example.toml) for the engine, e.g. other rates
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub display: Display,
}

/// The two runs `iam-audit diff` compares.
#[derive(Debug, Args, Clone)]
pub struct DiffArgs {
    /// The earlier run: a directory (its latest run), a report file of the run, or DIR/STAMP
    #[arg(value_name = "OLD")]
    pub old: PathBuf,
    /// The later run, named the same ways
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
    /// The changes' format on stdout: csv or jsonl
    #[arg(long, value_name = "FORMAT", value_parser = ["csv", "jsonl"], default_value = "csv")]
    pub format: String,
}

/// `iam-audit exceptions …`.
#[derive(Debug, Subcommand)]
pub enum ExceptionsCommand {
    /// Validate an exceptions file without auditing anything: each rule, when it expires, what it
    /// matches; exit 2 naming the line and field of the first thing wrong
    Check(ExceptionsCheckArgs),
}

/// Flags of `iam-audit exceptions check`.
#[derive(Debug, Args, Clone)]
pub struct ExceptionsCheckArgs {
    /// The exceptions file (YAML, or a Prowler mutelist)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The owner of every rule converted from a Prowler mutelist
    #[arg(long, value_name = "EMAIL")]
    pub exceptions_owner: Option<String>,
    /// The expiry of every rule converted from a Prowler mutelist, YYYY-MM-DD
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub exceptions_expires: Option<String>,
    /// The reason of a Prowler mutelist entry without a Description
    #[arg(long, value_name = "TEXT")]
    pub exceptions_reason: Option<String>,
    /// The longest a rule may live, in days from today
    #[arg(long, value_name = "DAYS", default_value_t = 365)]
    pub exceptions_horizon_days: u32,
    /// Rules expiring within this many days are named as expiring
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    pub exceptions_warn_days: u32,
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

/// The settings given as flags: every key of the table with a flag (of `check` too when `CHECK`).
#[derive(Debug, Clone, Default)]
pub struct SettingFlags<const CHECK: bool> {
    pub config: Config,
}

/// The keys that are flags of this command.
fn flag_keys(check: bool) -> impl Iterator<Item = &'static Key> {
    keys().iter().filter(move |k| match &k.spec.exposure {
        Exposure::Flag { check: c, .. } => !check || *c,
        Exposure::FileOnly => false,
    })
}

/// The clap argument of a key, its id the key's name.
fn arg(k: &'static Key) -> Arg {
    let Exposure::Flag {
        long,
        value_name,
        conflicts,
        choices,
        ..
    } = &k.spec.exposure
    else {
        unreachable!("file-only keys have no flag")
    };
    let mut a = Arg::new(k.name)
        .long(long.as_str())
        .help(k.flag_help.as_str());
    a = match k.kind {
        Kind::Switch => a.action(ArgAction::SetTrue),
        Kind::Int => a
            .value_name(*value_name)
            .value_parser(clap::value_parser!(u64)),
        Kind::Text if !choices.is_empty() => a
            .value_name(*value_name)
            .value_parser(PossibleValuesParser::new(choices.iter())),
        Kind::Text => a.value_name(*value_name),
        Kind::List => a
            .value_name(*value_name)
            .value_delimiter(',')
            .action(ArgAction::Append),
    };
    if let Some(other) = conflicts {
        a = a.conflicts_with(*other);
    }
    a
}

impl<const CHECK: bool> Args for SettingFlags<CHECK> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        flag_keys(CHECK).fold(cmd, |cmd, k| cmd.arg(arg(k)))
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl<const CHECK: bool> FromArgMatches for SettingFlags<CHECK> {
    /// The given flags as a TOML table, read by the same `Config` as the file.
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        use toml::Value;
        let mut table = toml::Table::new();
        for k in flag_keys(CHECK) {
            let id = k.name;
            let value = match k.kind {
                Kind::Int => m
                    .get_one::<u64>(id)
                    .map(|v| Value::Integer(i64::try_from(*v).unwrap_or(i64::MAX))),
                Kind::Text => m.get_one::<String>(id).map(|v| Value::String(v.clone())),
                Kind::List => m
                    .get_many::<String>(id)
                    .map(|vs| Value::Array(vs.map(|v| Value::String(v.clone())).collect())),
                Kind::Switch => {
                    let negated = matches!(
                        k.spec.exposure,
                        Exposure::Flag {
                            negated: Some(_),
                            ..
                        }
                    );
                    m.get_flag(id).then_some(Value::Boolean(!negated))
                }
            };
            if let Some(v) = value {
                table.insert(id.to_string(), v);
            }
        }
        let config = Config::from_table(table)
            .map_err(|e| clap::Error::raw(clap::error::ErrorKind::ValueValidation, e))?;
        Ok(SettingFlags { config })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Story: flags reach the same Config the file gives: values, lists, switches both ways, and a
    // number too large for its key is an error naming it.
    #[test]
    fn flags_become_the_command_lines_config() {
        let cli = Cli::try_parse_from([
            "iam-audit",
            "--role",
            "R",
            "--concurrency",
            "7",
            "--regions",
            "us-east-1,eu-west-1",
            "--no-ou-paths",
            "--all-event-sources",
        ])
        .unwrap();
        let c = cli.audit.settings.config;
        assert_eq!(c.role.as_deref(), Some("R"));
        assert_eq!(c.concurrency, Some(7));
        assert_eq!(
            c.regions,
            Some(vec!["us-east-1".to_string(), "eu-west-1".to_string()])
        );
        assert_eq!(
            (c.ou_paths, c.all_event_sources, c.escape_formulas),
            (Some(false), Some(true), None)
        );
        let e = Cli::try_parse_from(["iam-audit", "--iam-rate", "99999999999"]).unwrap_err();
        assert!(e.to_string().contains("iam_rate"), "{e}");
        let e = Cli::try_parse_from(["iam-audit", "--strategy", "report"]).unwrap_err();
        assert!(
            e.to_string()
                .contains("possible values: auto, api, credential_report"),
            "{e}"
        );
        let check = Cli::try_parse_from(["iam-audit", "check", "--role", "R", "--regions", "a"]);
        assert!(check.is_ok());
        assert!(Cli::try_parse_from(["iam-audit", "check", "--strategy", "api"]).is_err());
    }

    /// Every `iam-audit …` (and `cargo run -- …`) command of the README's and docs/'s shell blocks.
    fn documented_commands() -> Vec<(String, Vec<String>)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut docs = vec![root.join("README.md")];
        for e in std::fs::read_dir(root.join("docs")).unwrap() {
            docs.push(e.unwrap().path());
        }
        let mut out = Vec::new();
        for doc in docs {
            let text = std::fs::read_to_string(&doc).unwrap();
            for block in text.split("```sh\n").skip(1) {
                let block = block.split("```").next().unwrap().replace("\\\n", " ");
                for line in block.lines() {
                    let line = line.split(" #").next().unwrap().trim();
                    let args = line
                        .strip_prefix("iam-audit ")
                        .or_else(|| line.strip_prefix("cargo run -- "));
                    if let Some(args) = args {
                        let mut words = vec!["iam-audit".to_string()];
                        words.extend(
                            args.split_whitespace()
                                .map(|w| w.trim_matches('\'').to_string()),
                        );
                        out.push((format!("{}: {line}", doc.display()), words));
                    }
                }
            }
        }
        out
    }

    // Story: every command the README and docs/ show parses with these flags.
    #[test]
    fn documented_commands_parse() {
        let commands = documented_commands();
        assert!(commands.len() >= 3, "{commands:?}");
        for (place, words) in commands {
            if let Err(e) = Cli::try_parse_from(&words) {
                panic!("{place}: {e}");
            }
        }
    }
}
