//! What a person sees while a run goes: tracing on stderr (routed through the bars so lines never tear,
//! and capped by an allow-list so no SDK internals leak), and the progress as indicatif bars on a TTY or
//! one plain line per account otherwise. `Progress` is the engine's `Observer`.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iam_audit::observe::{Observer, UserCounts};
use iam_audit::record::{AccountRow, AuditStatus};
use iam_audit::stats::{CallCounts, CallStats};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::args::Display;

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
    /// The accounts in flight.
    live: Arc<Live>,
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
            live: Arc::new(Live::default()),
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

impl Progress {
    /// On a terminal, two live lines under the bar, redrawn every second: calls per second, throttles and
    /// retries; and the accounts in flight the longest, with their users read so far.
    fn show_live(&self, stats: Arc<CallStats>) {
        let Some((multi, bar)) = &self.bars else {
            return;
        };
        let accounts = bar.clone();
        let live = self.live.clone();
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
            let mut last = (stats.snapshot(), std::time::Instant::now());
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                let now = (stats.snapshot(), std::time::Instant::now());
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
}

impl Observer for Progress {
    fn audit_started(&self, stats: &Arc<CallStats>) {
        self.show_live(stats.clone());
        if let Some((_, bar)) = &self.bars {
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} accounts {pos}/{len} [{wide_bar}] {percent}% ETA {eta} · {msg}",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            bar.set_message("listing and auditing");
        }
    }

    fn accounts_found(&self, found: usize) {
        self.total.store(found, Ordering::Relaxed);
        if let Some((_, bar)) = &self.bars {
            bar.set_length(found as u64);
        }
    }

    fn accounts_listed(&self, active: usize, total: usize) {
        self.total.store(total, Ordering::Relaxed);
        if let Some((_, bar)) = &self.bars {
            bar.set_length(total as u64);
            bar.set_message("auditing");
        } else if !self.quiet {
            eprintln!("organization: {total} accounts ({active} active)");
        }
    }

    fn account_started(&self, id: &str, name: &str, users: &Arc<UserCounts>) {
        self.live.start(id, name, users.clone());
    }

    fn account_finished(&self, row: &AccountRow, calls: CallCounts) {
        self.live.end(&row.account_id);
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

/// The accounts in flight, for the live lines.
#[derive(Default)]
pub struct Live {
    accounts: Mutex<HashMap<String, Arc<LiveAccount>>>,
}

/// One account in flight.
pub struct LiveAccount {
    pub name: String,
    pub started: Instant,
    pub users: Arc<UserCounts>,
}

impl Live {
    /// An account starts; `users` fills in as its users are read.
    pub fn start(&self, id: &str, name: &str, users: Arc<UserCounts>) -> Arc<LiveAccount> {
        let a = Arc::new(LiveAccount {
            name: if name.is_empty() {
                id.to_string()
            } else {
                name.to_string()
            },
            started: Instant::now(),
            users,
        });
        self.accounts
            .lock()
            .expect("live accounts")
            .insert(id.to_string(), a.clone());
        a
    }

    pub fn end(&self, id: &str) {
        self.accounts.lock().expect("live accounts").remove(id);
    }

    /// The `n` accounts in flight the longest: `Prod-EU 412/980 users (5m12s)`.
    pub fn slowest(&self, n: usize) -> Vec<String> {
        let mut all: Vec<Arc<LiveAccount>> = self
            .accounts
            .lock()
            .expect("live accounts")
            .values()
            .cloned()
            .collect();
        all.sort_by_key(|a| a.started);
        all.iter()
            .take(n)
            .map(|a| {
                let secs = a.started.elapsed().as_secs();
                format!(
                    "{} {}/{} users ({}m{:02}s)",
                    a.name,
                    a.users.done.load(Ordering::Relaxed),
                    a.users.listed.load(Ordering::Relaxed),
                    secs / 60,
                    secs % 60
                )
            })
            .collect()
    }

    pub fn in_flight(&self) -> usize {
        self.accounts.lock().expect("live accounts").len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_view_names_the_accounts_in_flight_the_longest() {
        let live = Live::default();
        let eu = live.start("111111111111", "Prod-EU", Arc::default());
        std::thread::sleep(std::time::Duration::from_millis(5));
        let us = live.start("222222222222", "", Arc::default());
        eu.users.listed.store(980, Ordering::Relaxed);
        eu.users.done.store(412, Ordering::Relaxed);
        us.users.listed.store(3, Ordering::Relaxed);
        assert_eq!(live.in_flight(), 2);
        assert_eq!(
            live.slowest(3),
            [
                "Prod-EU 412/980 users (0m00s)",
                "222222222222 0/3 users (0m00s)"
            ]
        );
        live.end("111111111111");
        assert_eq!(live.slowest(1), ["222222222222 0/3 users (0m00s)"]);
    }
}
