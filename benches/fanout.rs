//! Whole-organization runs over loopback HTTP against the simulator (design §6). The simulator runs in this
//! process; the auditor is the real `iam-audit` binary in a child process, so its peak RSS and CPU time are
//! its own (from wait4's rusage). Prints one table row per scenario.
//!
//! `cargo bench` runs the thirteen scenarios of docs/performance.md's table (the last three the moonshot
//! at 100 and 250 ms and the slow server), then `compare-10k` (two audits of 10,000 × 20 a week apart and
//! `iam-audit diff` of them; about 25 minutes in all); `IAM_AUDIT_BENCH=quick cargo bench` the first six;
//! `IAM_AUDIT_BENCH=far,small-2k-c500 cargo bench` those alone (the names after the first thirteen are only
//! run by name). Each row states the auditor's CPU per call as a ratio to a bare-SDK reference's, measured
//! in the same run (`reference`; `IAM_AUDIT_BENCH_NO_REFERENCE=1` skips it).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use iam_audit::sim::{Faults, Scenario, Sim, SimOrg};

#[path = "cases.rs"]
mod cases;
#[path = "reference.rs"]
mod reference;

use cases::{floor, scale, Case};

struct Outcome {
    /// Time to generate the simulated organization.
    generated: Duration,
    /// CPU time of this process (the simulator) during the run.
    sim_cpu: f64,
    wall: Duration,
    floor: Option<f64>,
    calls: u64,
    /// IAM calls of the member accounts, and their users.
    iam_calls: u64,
    users: usize,
    throttled: u64,
    /// Seen by the simulator: the most calls at once, and the connections opened.
    peak_in_flight: usize,
    connections: u64,
    max_rss_kb: i64,
    /// The largest anonymous resident memory seen (heap and stacks, without the binary's mapped pages).
    max_anon_kb: i64,
    /// CPU time of the auditor: user, system.
    cpu_user: f64,
    cpu_sys: f64,
    code: i32,
    /// Per ACTIVE account, from the call log: GenerateCredentialReport, GetCredentialReport and
    /// ListMFADevices calls.
    report_calls: (f64, f64, f64),
    /// The bare-SDK reference's CPU seconds per call against the same organization in this run (see
    /// `reference`), and the calls it made; `None` when it was not run.
    reference: Option<(f64, usize)>,
    /// The way out (`Case::out`): objects and bytes under the prefix, BatchImportFindings calls and the
    /// findings they carried, alerts received.
    way_out: Option<(usize, u64, usize, usize, u64)>,
}

/// CPU seconds used so far by this process (the simulator and its runtime).
fn self_cpu() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let cpu = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    cpu(usage.ru_utime) + cpu(usage.ru_stime)
}

fn run(case: &Case, rt: &tokio::runtime::Runtime) -> Outcome {
    let out = tempfile::tempdir().expect("output dir");
    run_in(case, rt, 0, out.path(), true)
}

/// One audit of the scenario's organization as it is in week `epoch`, into `out`.
fn run_in(
    case: &Case,
    rt: &tokio::runtime::Runtime,
    epoch: u32,
    out: &Path,
    with_reference: bool,
) -> Outcome {
    let scenario = Scenario {
        seed: 42,
        accounts: case.accounts,
        suspended_every: 0,
        users_min: case.users,
        users_max: case.users,
        events_per_account: case.events,
        event_regions: vec!["us-east-1".into()],
        now: 0,
        epoch,
        faults: Faults {
            latency_ms: case.latency_ms,
            jitter_ms: case.jitter_ms,
            report_delay_ms: case.report_ms,
            serve_at_once: case.serve_at_once,
            iam_rate: case.quota.0,
            iam_burst: case.quota.0,
            cloudtrail_rate: case.quota.1,
            cloudtrail_burst: case.quota.1,
            // The call log: the reference replays it; IAM_AUDIT_BENCH_LOG=FILE also writes it there.
            log_calls: true,
            ..Faults::default()
        },
    };
    let t = Instant::now();
    let org = scenario.generate();
    let generated = t.elapsed();
    let users: usize = org.accounts.iter().map(|a| a.users.len()).sum();
    let mut faults = scenario.faults.clone();
    if case.minimal {
        let all: Vec<String> = org.accounts.iter().map(|a| a.id.clone()).collect();
        faults.deny_credential_report = all.clone();
        faults.deny_root_checks = all.clone();
        faults.deny_other_credentials = all;
        faults.deny_ou_tree = true;
    }
    let floor = floor(
        &org,
        if case.minimal {
            "minimal"
        } else {
            case.strategy
        },
        scenario.faults.report_delay_ms as f64 / 1000.0,
        case.quota.0,
        case.quota.1,
        case.concurrency,
    );
    let sim_cpu_before = self_cpu();
    let sim = rt
        .block_on(Sim::start(org.clone(), faults))
        .expect("simulator");
    let home = tempfile::tempdir().expect("home");
    std::fs::write(home.path().join("config"), "").unwrap();
    std::fs::write(home.path().join("credentials"), "").unwrap();
    let concurrency = case.concurrency.to_string();
    let hook = format!("{}/webhook", sim.endpoint());
    let prefix = format!("s3://reports/{}/", case.name);
    let mut args = vec![
        "--role",
        "IAMAuditRole",
        "--output-dir",
        if case.out {
            prefix.as_str()
        } else {
            out.to_str().unwrap()
        },
        "--no-progress",
        "-q",
        "--concurrency",
        &concurrency,
        "--strategy",
        case.strategy,
    ];
    args.extend_from_slice(case.flags);
    if case.out {
        args.extend([
            "--security-hub",
            "--notify",
            hook.as_str(),
            "--notify-format",
            "json",
        ]);
    }
    // IAM_AUDIT_BENCH_FLAGS="--max-in-flight 256": more flags for every case (an experiment).
    let extra = std::env::var("IAM_AUDIT_BENCH_FLAGS").unwrap_or_default();
    args.extend(extra.split_whitespace());
    let started = Instant::now();
    // IAM_AUDIT_BENCH_WRAPPER="valgrind --tool=callgrind": profile the auditor (the numbers are then the
    // profiler's).
    let wrapper = std::env::var("IAM_AUDIT_BENCH_WRAPPER").unwrap_or_default();
    let mut words: Vec<String> = wrapper.split_whitespace().map(str::to_string).collect();
    // IAM_AUDIT_BENCH_BIN=path: another build of the auditor (a saved earlier build, for an A/B run
    // against the same simulator on the same machine).
    words.push(
        std::env::var("IAM_AUDIT_BENCH_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_iam-audit").to_string()),
    );
    #[allow(clippy::zombie_processes)] // reaped by wait4 below, which also gives its rusage
    let child = Command::new(&words[0])
        .args(&words[1..])
        .args(&args)
        .env_clear()
        .env("HOME", home.path())
        .env("AWS_CONFIG_FILE", home.path().join("config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            home.path().join("credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "bench-secret")
        .env("AWS_ENDPOINT_URL", sim.endpoint())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        // The staging directory of an upload to S3.
        .env("TMPDIR", out)
        // Allocator tuning knobs pass through (MIMALLOC_PURGE_DELAY=0, ...).
        .envs(std::env::vars().filter(|(k, _)| k.starts_with("MIMALLOC_")))
        .stdin(Stdio::null())
        .spawn()
        .expect("start iam-audit");
    let m = measure(child, started);
    let (wall, code, usage, max_rss_kb, max_anon_kb) =
        (m.wall, m.code, m.usage, m.max_rss_kb, m.max_anon_kb);
    let cpu = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let (calls, throttled) = sim.counts();
    let (peak_in_flight, connections) = sim.concurrency();
    let sim_cpu = self_cpu() - sim_cpu_before;
    let log = sim.calls();
    let iam_calls = sim.iam_calls();
    let active = org
        .accounts
        .iter()
        .filter(|a| a.status == "ACTIVE")
        .count()
        .max(1) as f64;
    let per_account =
        |action: &str| log.iter().filter(|c| c.action == action).count() as f64 / active;
    let report_calls = (
        per_account("iam:GenerateCredentialReport"),
        per_account("iam:GetCredentialReport"),
        per_account("iam:ListMFADevices"),
    );
    let way_out = case.out.then(|| {
        let keys = sim.s3().keys("reports", &format!("{}/", case.name));
        let bytes: u64 = keys
            .iter()
            .filter_map(|k| sim.s3().object("reports", k))
            .map(|b| b.len() as u64)
            .sum();
        let imports: Vec<_> = log
            .iter()
            .filter(|c| c.action == "securityhub:BatchImportFindings")
            .collect();
        let findings: usize = imports
            .iter()
            .filter_map(|c| c.detail.strip_prefix("Findings=")?.parse::<usize>().ok())
            .sum();
        (
            keys.len(),
            bytes,
            imports.len(),
            findings,
            sim.s3().webhooks.load(std::sync::atomic::Ordering::Relaxed),
        )
    });
    drop(sim);
    if let Some(path) = std::env::var_os("IAM_AUDIT_BENCH_LOG") {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("call log file"));
        writeln!(
            f,
            "at_ms\taccount\taction\tregion\toutcome\tin_flight\tdetail"
        )
        .unwrap();
        for c in &log {
            writeln!(
                f,
                "{:.1}\t{}\t{}\t{}\t{}\t{}\t{}",
                c.at_ms, c.account, c.action, c.region, c.outcome, c.in_flight, c.detail
            )
            .unwrap();
        }
    }
    let reference = (with_reference && std::env::var_os("IAM_AUDIT_BENCH_NO_REFERENCE").is_none())
        .then(|| run_reference(case, rt, org, &scenario.faults, &log, home.path()));
    Outcome {
        generated,
        sim_cpu,
        wall,
        floor,
        calls,
        iam_calls,
        users,
        throttled,
        peak_in_flight,
        connections,
        max_rss_kb,
        max_anon_kb,
        cpu_user: cpu(usage.ru_utime),
        cpu_sys: cpu(usage.ru_stime),
        code,
        reference,
        report_calls,
        way_out,
    }
}

/// The bare-SDK reference (see `reference`): the auditor's calls of up to
/// `IAM_AUDIT_BENCH_REFERENCE_ACCOUNTS` accounts (2,000) made again by plain SDK clients in a child
/// process, against a simulator of the same organization and latency without quotas. Its CPU seconds
/// per call, and the calls.
fn run_reference(
    case: &Case,
    rt: &tokio::runtime::Runtime,
    org: SimOrg,
    faults: &Faults,
    log: &[iam_audit::sim::Call],
    home: &Path,
) -> (f64, usize) {
    let accounts = std::env::var("IAM_AUDIT_BENCH_REFERENCE_ACCOUNTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000);
    let dir = tempfile::tempdir().expect("plan dir");
    let plan = dir.path().join("plan.tsv");
    reference::write_plan(&plan, log, accounts);
    let unpaced = Faults {
        iam_rate: 0.0,
        cloudtrail_rate: 0.0,
        log_calls: false,
        serve_at_once: 0,
        ..faults.clone()
    };
    let sim = rt.block_on(Sim::start(org, unpaced)).expect("simulator");
    #[allow(clippy::zombie_processes)] // reaped by wait4 in `measure`
    let child = Command::new(std::env::current_exe().expect("the bench binary"))
        .env_clear()
        .env("IAM_AUDIT_BENCH_REFERENCE", &plan)
        .env(
            "IAM_AUDIT_BENCH_REFERENCE_CONCURRENCY",
            case.concurrency.min(500).to_string(),
        )
        .env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "bench-secret")
        .env("AWS_ENDPOINT_URL", sim.endpoint())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the reference");
    let mut child = child;
    let out = child.stdout.take();
    let m = measure(child, Instant::now());
    let mut text = String::new();
    if let Some(mut o) = out {
        use std::io::Read;
        let _ = o.read_to_string(&mut text);
    }
    let made: usize = text.trim().parse().unwrap_or(0);
    let cpu = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let seconds = cpu(m.usage.ru_utime) + cpu(m.usage.ru_stime);
    (seconds / made.max(1) as f64, made)
}

/// What a child cost until it exited.
struct Measured {
    wall: Duration,
    code: i32,
    usage: libc::rusage,
    max_rss_kb: i64,
    max_anon_kb: i64,
}

/// Wait for `child`, polling its peak memory.
fn measure(child: std::process::Child, started: Instant) -> Measured {
    // wait4 gives this child's own CPU time. Not its peak RSS: ru_maxrss also counts the moment between
    // fork and exec, when the child still maps this process (and its simulated organization). The peak is
    // read instead from the child's VmHWM (reset by exec), polled every 20 ms until it exits.
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let mut max_rss_kb = 0i64;
    let mut max_anon_kb = 0i64;
    loop {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            let field = |name: &str| {
                status
                    .lines()
                    .find(|l| l.starts_with(name))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<i64>().ok())
            };
            if let Some(kb) = field("VmHWM:") {
                max_rss_kb = max_rss_kb.max(kb);
            }
            if let Some(kb) = field("RssAnon:") {
                max_anon_kb = max_anon_kb.max(kb);
            }
        }
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        assert_eq!(r, 0, "wait4");
        std::thread::sleep(Duration::from_millis(20));
    }
    let wall = started.elapsed();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Measured {
        wall,
        code,
        usage,
        max_rss_kb,
        max_anon_kb,
    }
}

fn main() {
    // The bare-SDK reference, run by the bench itself as a child (see `reference`).
    if let Some(plan) = std::env::var_os("IAM_AUDIT_BENCH_REFERENCE") {
        let concurrency = std::env::var("IAM_AUDIT_BENCH_REFERENCE_CONCURRENCY")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(64);
        reference::run(Path::new(&plan), concurrency);
        return;
    }
    // `cargo bench` passes --bench; nothing else to parse.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (cases, compare) = cases::selected();
    println!(
        "| scenario | accounts × users | strategy | latency | quotas (IAM, LookupEvents /s) | concurrency | wall | floor | efficiency | calls | IAM calls per user | throttled | peak RSS | peak anon | CPU user + sys | calls per CPU-s | CPU per call vs bare SDK | exit |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut sim_lines = Vec::new();
    // IAM_AUDIT_BENCH_REPEAT=3: each scenario three times, every run's row then the median of each column.
    let repeat: usize = std::env::var("IAM_AUDIT_BENCH_REPEAT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
        .max(1);
    for case in &cases {
        let runs: Vec<Outcome> = (0..repeat).map(|_| run(case, &rt)).collect();
        if repeat > 1 {
            for o in &runs {
                print_row(case, o, "");
            }
        }
        let o = median(runs);
        print_row(case, &o, if repeat > 1 { " (median)" } else { "" });
        // Design §6: the quota-bound shape has at most 1% of its calls throttled (judged here, not in a
        // test: it depends on how evenly a loaded machine delivers the calls).
        if case.name == "quota-bound" {
            let share = 100.0 * o.throttled as f64 / o.calls.max(1) as f64;
            sim_lines.push(format!(
                "{}: {share:.2}% of calls throttled (target: at most 1%, {})",
                case.name,
                if share <= 1.0 { "met" } else { "NOT met" }
            ));
        }
        if let Some((objects, bytes, imports, findings, alerts)) = o.way_out {
            sim_lines.push(format!(
                "{}: {objects} objects ({:.1} MB) under the prefix; {imports} BatchImportFindings calls carrying {findings} findings; {alerts} alert",
                case.name,
                bytes as f64 / 1e6
            ));
        }
        if case.strategy != "api" {
            let (generate, get, mfa) = o.report_calls;
            sim_lines.push(format!(
                "{}: per account {generate:.2} GenerateCredentialReport (target: at most 1.5), {get:.2} GetCredentialReport, {mfa:.2} ListMFADevices",
                case.name
            ));
        }
        sim_lines.push(format!(
            "{}: organization generated in {:.2} s; simulator served {:.0} calls per CPU-second; at most {} calls at once over {} connections",
            case.name,
            o.generated.as_secs_f64(),
            o.calls as f64 / o.sim_cpu.max(1e-9),
            o.peak_in_flight,
            o.connections,
        ));
    }
    // Design: comparing two 10,000-account × 20-user runs stays bounded and fast. Two audits of the same
    // organization a week apart into one directory (the second compares itself with the first as it
    // runs), then `iam-audit diff` of the two on disk.
    if compare {
        let case = scale("compare-10k", 10_000);
        let dir = tempfile::tempdir().expect("output dir");
        let week1 = run_in(&case, &rt, 0, dir.path(), false);
        print_row(&case, &week1, " (week 1)");
        std::thread::sleep(Duration::from_millis(1100));
        let week2 = run_in(&case, &rt, 1, dir.path(), false);
        print_row(&case, &week2, " (week 2, compared with week 1)");
        let mut accounts: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("accounts_")
            })
            .collect();
        accounts.sort();
        assert_eq!(accounts.len(), 2, "two runs");
        let diffed = dir.path().join("diff.csv");
        let started = Instant::now();
        #[allow(clippy::zombie_processes)] // reaped by wait4 in `measure`
        let child = Command::new(env!("CARGO_BIN_EXE_iam-audit"))
            .arg("diff")
            .args(&accounts)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&diffed).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("start iam-audit diff");
        let m = measure(child, started);
        let rows = std::fs::read_to_string(&diffed)
            .unwrap()
            .lines()
            .count()
            .saturating_sub(1);
        let cpu = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        sim_lines.push(format!(
            "compare-10k: iam-audit diff of the two runs (10,000 accounts × 20 users each): {:.2} s wall, {:.2} CPU-s, peak RSS {:.1} MB, {rows} change rows, exit {}",
            m.wall.as_secs_f64(),
            cpu(m.usage.ru_utime) + cpu(m.usage.ru_stime),
            m.max_rss_kb as f64 / 1024.0,
            m.code
        ));
    }
    println!();
    for line in sim_lines {
        println!("{line}");
    }
}

/// The median of each measure over repeated runs of one scenario.
fn median(mut runs: Vec<Outcome>) -> Outcome {
    fn mid<T: Copy + PartialOrd>(v: &mut [T]) -> T {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    }
    macro_rules! m {
        ($f:ident) => {
            mid(&mut runs.iter().map(|o| o.$f).collect::<Vec<_>>())
        };
    }
    let o = Outcome {
        generated: m!(generated),
        sim_cpu: m!(sim_cpu),
        wall: m!(wall),
        floor: runs[0].floor,
        calls: m!(calls),
        iam_calls: m!(iam_calls),
        users: m!(users),
        throttled: m!(throttled),
        peak_in_flight: m!(peak_in_flight),
        connections: m!(connections),
        max_rss_kb: m!(max_rss_kb),
        max_anon_kb: m!(max_anon_kb),
        cpu_user: m!(cpu_user),
        cpu_sys: m!(cpu_sys),
        code: runs.iter().map(|o| o.code).max().unwrap_or(0),
        report_calls: runs[runs.len() / 2].report_calls,
        way_out: runs[runs.len() / 2].way_out,
        reference: {
            let mut r: Vec<(f64, usize)> = runs.iter().filter_map(|o| o.reference).collect();
            r.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
            r.get(r.len() / 2).copied()
        },
    };
    runs.clear();
    o
}

/// One table row.
fn print_row(case: &Case, o: &Outcome, note: &str) {
    let quotas = if case.quota.0 > 0.0 {
        format!("{}, {}", case.quota.0, case.quota.1)
    } else {
        "none".into()
    };
    let (floor, eff) = match o.floor {
        Some(f) => (
            format!("{f:.1} s"),
            format!("{:.2}", f / o.wall.as_secs_f64()),
        ),
        None => ("—".into(), "—".into()),
    };
    println!(
            "| {}{note} | {} × {} | {} | {} ms | {} | {} | {:.1} s | {} | {} | {} | {:.2} | {} ({:.2}%) | {:.1} MB | {:.1} MB | {:.1} s + {:.1} s | {:.0} | {} | {} |",
            case.name,
            case.accounts,
            case.users,
            case.strategy,
            case.latency_ms,
            quotas,
            case.concurrency,
            o.wall.as_secs_f64(),
            floor,
            eff,
            o.calls,
            o.iam_calls as f64 / o.users.max(1) as f64,
            o.throttled,
            100.0 * o.throttled as f64 / o.calls.max(1) as f64,
            o.max_rss_kb as f64 / 1024.0,
            o.max_anon_kb as f64 / 1024.0,
            o.cpu_user,
            o.cpu_sys,
            o.calls as f64 / (o.cpu_user + o.cpu_sys).max(1e-9),
            match o.reference {
                Some((per_call, made)) if per_call > 0.0 => format!(
                    "{:.2} ({:.0} µs / {:.0} µs a call; reference: {made} calls)",
                    (o.cpu_user + o.cpu_sys) / o.calls.max(1) as f64 / per_call,
                    (o.cpu_user + o.cpu_sys) / o.calls.max(1) as f64 * 1e6,
                    per_call * 1e6
                ),
                _ => "—".into(),
            },
            o.code,
        );
}
