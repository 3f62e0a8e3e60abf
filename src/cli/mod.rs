//! The binary's face: the command line (`args`), what a person sees while a run goes (`display`), the
//! signals (`signals`) and the demo (`demo`). The library never sees any of it; this calls
//! `iam_audit::run` and turns its outcome into an exit code.

pub mod args;
#[cfg(feature = "sim")]
pub mod demo;
mod display;
pub mod exceptions;
#[cfg(feature = "lambda")]
pub mod lambda;
mod signals;

use std::path::PathBuf;
use std::sync::Arc;

use iam_audit::Config;

use args::{AuditArgs, CheckArgs, Cli, DiffArgs};
use display::{init_logging, Progress};

/// Load `--config` (if any) under the flags and resolve; a usage error is printed and gives `Err(2)`.
pub(crate) fn settings_from(
    cli: Config,
    config: Option<&PathBuf>,
) -> Result<iam_audit::Settings, i32> {
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
        // One quick attempt is enough to see a denial; transient faults still get a few.
        max_attempts: Some(3),
        initial_backoff_ms: Some(200),
        ..args.settings.config.clone()
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
            if let Some(r) = &row.security_hub {
                let said = match r {
                    Ok(text) => text.clone(),
                    Err(f) => f.to_string(),
                };
                line.push_str(&format!("; securityhub:BatchImportFindings {said}"));
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
    let mut config = args.settings.config.clone().or(file);
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
        // The latest run in the directory, or under the S3 prefix.
        let found = if dir.to_string_lossy().starts_with("s3://") {
            let prelim = match iam_audit::Settings::resolve(config.clone(), now) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return 2;
                }
            };
            match iam_audit::run::latest_remote_run(&prelim).await {
                Ok(found) => Ok(found),
                Err(e) => {
                    eprintln!("error: {e}");
                    return e.exit_code();
                }
            }
        } else {
            iam_audit::report::latest_run(dir)
                .map(|r| r.map(|(stamp, format, _)| (stamp, format)))
                .map_err(|e| e.to_string())
        };
        match found {
            Ok(Some((stamp, format))) => {
                // The run is continued in its own format.
                let found = format.as_str();
                if config.format.as_deref().is_some_and(|f| f != found) {
                    eprintln!(
                        "error: --resume {}: the run to resume ({stamp}) was written as {found}; pass --format {found} or leave --format out",
                        dir.display(),
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

/// `iam-audit diff OLD NEW`: compare two runs on disk; the changes on stdout, a summary line on stderr.
/// Exit 0 when it compared, 2 when a run cannot be found, 1 when one cannot be read.
pub fn diff(args: DiffArgs) -> i32 {
    use iam_audit::report::{compare, digest, files, table::Table};
    let find = |which: &str, p: &PathBuf| match files::find_run(p) {
        Ok(Some(run)) => Ok(run),
        Ok(None) => {
            eprintln!(
                "error: {which} {}: no run of iam-audit there (a directory, a report file, or DIR/STAMP)",
                p.display()
            );
            Err(2)
        }
        Err(e) => {
            eprintln!("error: {which} {}: {e}", p.display());
            Err(1)
        }
    };
    let (old, new) = match (find("OLD", &args.old), find("NEW", &args.new)) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(c), _) | (_, Err(c)) => return c,
    };
    let format = if args.format == "jsonl" {
        iam_audit::config::Format::Jsonl
    } else {
        iam_audit::config::Format::Csv
    };
    // The scratch files go beside the newer run: its directory is the user's, and private.
    let scratch = new
        .2
        .accounts
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .to_path_buf();
    let result = (|| {
        let mut out = Table::to_writer(
            Box::new(std::io::stdout().lock()),
            format,
            &compare::CHANGE_COLUMNS,
        )?;
        let digest = digest::diff_runs(&old.2, old.1, &new.2, new.1, &scratch, |c| {
            let cells = c.cells();
            let cells: Vec<&dyn std::fmt::Display> =
                cells.iter().map(|c| c as &dyn std::fmt::Display).collect();
            out.row(&cells)
        })?;
        out.flush()?;
        Ok::<_, std::io::Error>(digest)
    })();
    match result {
        Ok(d) => {
            eprintln!(
                "{} → {} ({}): {} new findings, {} resolved",
                old.0,
                new.0,
                apart(&old.0, &new.0),
                d.new_findings,
                d.resolved_findings
            );
            0
        }
        Err(e) => {
            eprintln!("error: cannot compare {} and {}: {e}", old.0, new.0);
            1
        }
    }
}

/// How far apart two runs started, from their stamps: `7 days 3 h apart`, `2 h 5 min apart`,
/// `40 s apart`; `NEW started 2 days before OLD` when they are the wrong way round.
fn apart(old: &str, new: &str) -> String {
    let (Some(a), Some(b)) = (
        iam_audit::report::stamp_time(old),
        iam_audit::report::stamp_time(new),
    ) else {
        return "start times unknown".into();
    };
    let secs = (b - a).num_seconds();
    let (d, h, m, s) = (
        secs.abs() / 86_400,
        secs.abs() % 86_400 / 3600,
        secs.abs() % 3600 / 60,
        secs.abs() % 60,
    );
    let span = match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, _) => format!("{m} min {s} s"),
        (0, _, _) => format!("{h} h {m} min"),
        (1, _, _) => format!("1 day {h} h"),
        _ => format!("{d} days {h} h"),
    };
    if secs < 0 {
        format!("NEW started {span} before OLD")
    } else {
        format!("{span} apart")
    }
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

/// Run the engine with SIGINT and SIGTERM wired to the shutdown, print the summary, return the exit code.
///
/// The first signal stops starting accounts and gives the running ones the grace period; the second ends
/// the grace (they are closed as partial, the files still flushed); a third exits at once. A run stopped
/// by a signal exits 130 (SIGINT) or 143 (SIGTERM), whatever it found.
pub(crate) async fn run_with_progress(
    settings: iam_audit::Settings,
    progress: Arc<Progress>,
    quiet: bool,
) -> i32 {
    let shutdown = iam_audit::Shutdown::default();
    let signalled = signals::watch(shutdown.clone(), settings.shutdown_grace());
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

#[cfg(test)]
mod tests {
    #[test]
    fn diff_says_how_far_apart_the_runs_started() {
        assert_eq!(
            super::apart("20261129_060000", "20261206_083000"),
            "7 days 2 h apart"
        );
        assert_eq!(
            super::apart("20261206_060000", "20261206_083005"),
            "2 h 30 min apart"
        );
        assert_eq!(
            super::apart("20261206_083000", "20261205_083000"),
            "NEW started 1 day 0 h before OLD"
        );
        assert_eq!(super::apart("x", "20261205_083000"), "start times unknown");
    }
}
