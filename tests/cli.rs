//! The command line as a user meets it: exit codes, error messages that say what to do, nothing written on
//! a usage error, and the documentation (README, config.example.toml) kept in step with `--help`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use iam_audit::sim::{Faults, Scenario, Sim};

use crate::support::*;

fn repo_file(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).expect(name)
}

/// The fenced `lang` block between a document's `<!-- NAME-start -->` and `<!-- NAME-end -->` markers.
fn doc_block(doc: &str, name: &str, lang: &str) -> String {
    let start = doc
        .find(&format!("<!-- {name}-start -->"))
        .expect("start marker");
    let end = doc
        .find(&format!("<!-- {name}-end -->"))
        .expect("end marker");
    doc[start..end]
        .split_once(&format!("```{lang}\n"))
        .and_then(|(_, rest)| rest.rsplit_once("```"))
        .map(|(block, _)| block.to_string())
        .expect("a fenced block between the markers")
}

fn help() -> String {
    let out = std::process::Command::new(BIN)
        .arg("--help")
        .output()
        .expect("--help");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

fn long_flags(help: &str) -> BTreeSet<String> {
    help.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
        .filter_map(|w| w.strip_prefix("--"))
        .map(|w| w.split(['=', '<']).next().unwrap().to_string())
        .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .collect()
}

// Story: config.example.toml documents every key of the one definition, states each default exactly as
// the definition gives it, sets nothing itself, and every line of it parses with our own parser; every flag
// of `--help` is a key or listed there as CLI-only.
#[test]
fn example_config_states_every_key_and_default() {
    let example = repo_file("config.example.toml");
    let parsed = iam_audit::Config::from_toml(&example).expect("config.example.toml parses");
    assert_eq!(
        parsed,
        iam_audit::Config::default(),
        "the example sets nothing"
    );
    // Every commented `key = value` line, uncommented, parses (days conflicts with start_date only when
    // resolved, so the whole file parses as one).
    let uncommented: String = example
        .lines()
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| {
            l.split_once(" = ")
                .is_some_and(|(k, _)| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        })
        .collect::<Vec<_>>()
        .join("\n");
    iam_audit::Config::from_toml(&uncommented).expect("every documented key, uncommented, parses");
    for key in iam_audit::config::keys() {
        let line = format!("\n# {} = ", key.name);
        assert!(
            example.contains(&line),
            "config.example.toml lacks `{}`",
            key.name
        );
        if let Some(toml) = key.default.as_ref().and_then(|d| d.toml.as_ref()) {
            assert!(
                example.contains(&format!("{line}{toml}\n")),
                "config.example.toml must state `{} = {toml}`, the default",
                key.name
            );
        }
    }
    let cli_only = ["config", "resume", "no-progress", "verbose", "quiet"];
    for flag in long_flags(&help()) {
        if flag == "help" || flag == "version" {
            continue;
        }
        if cli_only.contains(&flag.as_str()) {
            assert!(
                example.contains(&format!("--{flag}")),
                "--{flag} is not listed as CLI-only"
            );
            continue;
        }
        assert!(
            iam_audit::config::keys()
                .iter()
                .any(|k| k.long() == Some(flag.as_str())),
            "--{flag} is no key"
        );
    }
}

// Story: every `[default: …]` of `--help` comes from the one definition of its key, and the README's flag
// table agrees with it (docs/configuration.md's key table is generated from it).
#[test]
fn every_default_comes_from_the_one_definition() {
    // Each option's entry of `--help`: from its line to the next option's, on one line.
    let mut entries: Vec<String> = Vec::new();
    for line in help().lines() {
        let t = line.trim_start();
        if t.starts_with("--") || (t.starts_with('-') && t.get(2..4) == Some(", ")) {
            entries.push(String::new());
        }
        if let Some(e) = entries.last_mut() {
            e.push(' ');
            e.push_str(t);
        }
    }
    let entries: Vec<String> = entries
        .iter()
        .map(|e| e.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let readme = repo_file("README.md");
    for key in iam_audit::config::keys() {
        let Some(default) = &key.default else {
            continue;
        };
        if let Some(long) = key.long() {
            if key.kind != iam_audit::config::Kind::Switch {
                let entry = entries
                    .iter()
                    .find(|e| e.starts_with(&format!("--{long} ")))
                    .unwrap_or_else(|| panic!("--{long} in --help"));
                assert!(
                    entry.contains(&format!("[default: {}]", default.help)),
                    "--{long}: {entry}"
                );
            }
        }
        // The README's table lists the flags people use most: those it lists agree.
        if let Some(long) = key.long() {
            if let Some(row) = readme
                .lines()
                .find(|l| l.starts_with(&format!("| `--{long}")))
            {
                let cell = row.split('|').nth(3).unwrap().trim().trim_matches('`');
                assert_eq!(cell, default.help, "README: --{long}");
            }
        }
    }
}

/// A generated block of a document between `<!-- NAME-start -->` and `<!-- NAME-end -->` must read
/// `want`; `IAM_AUDIT_BLESS=1 cargo test` writes it there instead.
#[track_caller]
fn generated_block(path: &str, name: &str, want: &str) {
    let doc = repo_file(path);
    let (start, end) = (
        format!("<!-- {name}-start -->\n"),
        format!("<!-- {name}-end -->"),
    );
    let a = doc.find(&start).expect("start marker") + start.len();
    let b = doc.find(&end).expect("end marker");
    let want = format!("{}\n", want.trim_end());
    if doc[a..b] == want {
        return;
    }
    if std::env::var_os("IAM_AUDIT_BLESS").is_some() {
        let updated = format!("{}{want}{}", &doc[..a], &doc[b..]);
        std::fs::write(Path::new(env!("CARGO_MANIFEST_DIR")).join(path), updated).unwrap();
        return;
    }
    assert_eq!(
        &doc[a..b],
        want,
        "update the {name} block of {path} (IAM_AUDIT_BLESS=1 cargo test does)"
    );
}

// Story: docs/configuration.md shows the real `--help`.
#[test]
fn docs_help_block_matches_help() {
    generated_block(
        "docs/configuration.md",
        "help",
        &format!("```text\n{}```", help()),
    );
}

// Story: docs/configuration.md's table of every key is the one definition's: name, default, flag, help.
#[test]
fn docs_key_table_is_the_definition() {
    let mut table = String::from("| key | default | flag | what it sets |\n|---|---|---|---|\n");
    for k in iam_audit::config::keys() {
        let default = k
            .default
            .as_ref()
            .map_or("—".to_string(), |d| format!("`{}`", d.help));
        let flag = k
            .long()
            .map_or("file only".to_string(), |l| format!("`--{l}`"));
        let help = k.help.replace('|', "\\|");
        table.push_str(&format!("| `{}` | {default} | {flag} | {help} |\n", k.name));
    }
    generated_block("docs/configuration.md", "keys", &table);
}

async fn expect_usage_error(args: &[&str], env: &[(&str, &str)], message: &str) {
    let out_dir = tempfile::tempdir().unwrap();
    let dir = out_dir.path().join("reports");
    let mut full = args.to_vec();
    full.extend_from_slice(&["--output-dir", dir.to_str().unwrap()]);
    let out = run_bin(&full, env, &dir).await;
    assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
    assert!(
        out.stderr.contains(message),
        "{args:?}: expected {message:?} in:\n{}",
        out.stderr
    );
    assert!(!dir.exists(), "nothing is written on a usage error");
}

// Story: a typo or a bad value is reported with its name and what to do; exit 2, nothing written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bad_key = dir.path().join("bad.toml");
    std::fs::write(&bad_key, "role = \"IAMAuditRole\"\nconcurency = 4\n").unwrap();
    let bad_value = dir.path().join("bad_value.toml");
    std::fs::write(
        &bad_value,
        "role = \"IAMAuditRole\"\nlegacy_values = \"fr\"\n",
    )
    .unwrap();
    let env = [
        FAKE_KEY,
        FAKE_SECRET,
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
    ];
    expect_usage_error(
        &["--config", bad_key.to_str().unwrap()],
        &env,
        "unknown field `concurency`",
    )
    .await;
    expect_usage_error(
        &["--config", bad_value.to_str().unwrap()],
        &env,
        "error: legacy_values: 'fr' is not supported; use \"es\"",
    )
    .await;
    expect_usage_error(
        &["--config", "/nonexistent/iam-audit.toml"],
        &env,
        "error: cannot read config file /nonexistent/iam-audit.toml",
    )
    .await;
    expect_usage_error(
        &["--role", "IAMAuditRole", "--start-date", "2026-13-01"],
        &env,
        "error: start_date: '2026-13-01' is not a date; use YYYY-MM-DD (UTC), e.g. 2026-03-05",
    )
    .await;
    expect_usage_error(
        &[
            "--role",
            "IAMAuditRole",
            "--start-date",
            "2026-01-01",
            "--days",
            "3",
        ],
        &env,
        "cannot be used with",
    )
    .await;
    expect_usage_error(&[], &env, "error: role: is required: pass --role NAME").await;
    expect_usage_error(
        &["--role", "IAMAuditRole", "--concurrency", "0"],
        &env,
        "error: concurrency: must be greater than 0, got 0",
    )
    .await;
    expect_usage_error(
        &["--role", "IAMAuditRole", "--profile", "no-such-profile"],
        &[("AWS_ENDPOINT_URL", "http://127.0.0.1:9")],
        "error: AWS profile 'no-such-profile' was not found",
    )
    .await;
}

// Story: setup failures are fatal (exit 1) with a message that says what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_failures_exit_1_with_advice() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let under_file = file.join("reports");
    let out = run_bin(
        &["--role", "R", "--output-dir", under_file.to_str().unwrap()],
        &[
            FAKE_KEY,
            FAKE_SECRET,
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ],
        &under_file,
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "error: cannot write the reports to {}",
            under_file.display()
        )) && out
            .stderr
            .contains("Pass --output-dir with a writable directory"),
        "{}",
        out.stderr
    );

    let dir = tmp.path().join("out");
    let out = run_bin(
        &["--role", "R", "--output-dir", dir.to_str().unwrap()],
        &[("AWS_ENDPOINT_URL", "http://127.0.0.1:9")],
        &dir,
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("error: no AWS credentials for the management account"),
        "{}",
        out.stderr
    );

    // A caller that may not list the organization's accounts.
    let sim = Sim::start(
        Scenario {
            accounts: 2,
            ..Scenario::default()
        }
        .generate(),
        Faults {
            deny_list_accounts: true,
            ..Faults::default()
        },
    )
    .await
    .unwrap();
    let endpoint = sim.endpoint();
    let out = run_bin(
        &["--role", "R", "--output-dir", dir.to_str().unwrap()],
        &[FAKE_KEY, FAKE_SECRET, ("AWS_ENDPOINT_URL", &endpoint)],
        &dir,
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("error: cannot list the organization's accounts (AccessDeniedException: You don't have permissions to access this resource.). Run from the management account or a delegated administrator with organizations:ListAccounts"),
        "{}",
        out.stderr
    );
    assert!(
        out.files.is_empty(),
        "no empty reports are left behind: {:?}",
        out.files
    );
}

// Story: `iam-audit audit ...` (explicit subcommand) works like the default, and without a TTY each account
// gets one plain line on stderr, then the summary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_subcommand_prints_a_line_per_account() {
    let org = Scenario {
        accounts: 3,
        suspended_every: 3,
        users_min: 2,
        users_max: 2,
        events_per_account: 3,
        ..Scenario::default()
    }
    .generate();
    let sim = Sim::start(org.clone(), Faults::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let endpoint = sim.endpoint();
    let out = run_bin(
        &[
            "audit",
            "--role",
            "IAMAuditRole",
            "--output-dir",
            dir.path().to_str().unwrap(),
        ],
        &[FAKE_KEY, FAKE_SECRET, ("AWS_ENDPOINT_URL", &endpoint)],
        dir.path(),
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines[0], "organization: 3 accounts (2 active)");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("[1/3] 100000000002 (account-0002): not_active (SUSPENDED)")),
        "{}",
        out.stderr
    );
    assert_eq!(lines.iter().filter(|l| l.starts_with('[')).count(), 3);
    assert!(out
        .stderr
        .contains("accounts: 3 (2 audited, 0 partial, 0 skipped, 1 not active)"));
    assert_eq!(out.files.len(), 9);
    // No secret reaches the output: not the management secret, not the simulator's session secrets.
    assert!(
        !out.stderr.contains(FAKE_SECRET.1)
            && !out.stderr.contains("simsecret")
            && !out.stderr.contains("simtoken")
    );
}

// Story: -vv debug logging never prints credentials, session tokens or signatures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_logs_carry_no_secrets() {
    let org = Scenario {
        accounts: 2,
        suspended_every: 0,
        users_min: 2,
        users_max: 2,
        events_per_account: 2,
        ..Scenario::default()
    }
    .generate();
    let sim = Sim::start(org, Faults::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let endpoint = sim.endpoint();
    let out = run_bin(
        &[
            "--role",
            "IAMAuditRole",
            "--output-dir",
            dir.path().to_str().unwrap(),
            "-vv",
        ],
        &[
            FAKE_KEY,
            FAKE_SECRET,
            ("AWS_ENDPOINT_URL", &endpoint),
            ("RUST_LOG", "trace"),
        ],
        dir.path(),
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    for secret in [
        FAKE_SECRET.1,
        "simsecret",
        "simtoken",
        "Signature=",
        "x-amz-security-token",
    ] {
        assert!(!out.stderr.contains(secret), "{secret} leaked into the log");
    }
    // RUST_LOG=trace reaches only iam-audit's own modules, which log nothing at trace level: every other
    // crate is held at info by the allow-list.
    assert!(
        !out.stderr.contains(" TRACE "),
        "another crate's trace output reached the log:\n{}",
        out.stderr
            .lines()
            .filter(|l| l.contains(" TRACE "))
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let files: String = out
        .files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert!(!files.contains("simsecret") && !files.contains("simtoken"));
}

// Story: `check` tells, per account, whether the audit could assume the role and read IAM and CloudTrail,
// without auditing; exit 3 when some account is not ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_what_each_account_denies() {
    let org = Scenario {
        accounts: 4,
        suspended_every: 4,
        users_min: 1,
        users_max: 1,
        ..Scenario::default()
    }
    .generate();
    let faults = Faults {
        deny_assume_role: vec![org.accounts[0].id.clone()],
        deny_lookup_events: vec![org.accounts[1].id.clone()],
        ..Faults::default()
    };
    let sim = Sim::start(org, faults).await.unwrap();
    let endpoint = sim.endpoint();
    let home = tempfile::tempdir().unwrap();
    let out = bin_command(
        &["check", "--role", "IAMAuditRole"],
        &[FAKE_KEY, FAKE_SECRET, ("AWS_ENDPOINT_URL", &endpoint)],
        home.path(),
    )
    .output()
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(
        lines[0],
        "100000000000 (account-0000): sts:AssumeRole AccessDenied: User: arn:aws:iam::999999999999:user/auditor is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::100000000000:role/IAMAuditRole (sts:AssumeRole arn:aws:iam::100000000000:role/IAMAuditRole)"
    );
    assert!(lines[1].starts_with("100000000001 (account-0001): sts:AssumeRole ok; iam:ListUsers ok; cloudtrail:LookupEvents us-east-1 AccessDeniedException: "), "{}", lines[1]);
    assert_eq!(lines[2], "100000000002 (account-0002): sts:AssumeRole ok; iam:ListUsers ok; cloudtrail:LookupEvents us-east-1 ok");
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 of 3 accounts are ready for an audit"));
    let actions: BTreeSet<String> = sim.calls().iter().map(|c| c.action.clone()).collect();
    assert_eq!(
        actions,
        [
            "cloudtrail:LookupEvents",
            "iam:ListUsers",
            "organizations:ListAccounts",
            "sts:AssumeRole"
        ]
        .into_iter()
        .map(String::from)
        .collect()
    );
}

/// Start an audit of `org` in the background, interrupt it with `signals` (spaced by `gap`) once its first
/// users' keys are being read, and return its exit code, stderr and accounts report.
async fn interrupted_run(
    org: iam_audit::sim::SimOrg,
    extra: &[&str],
    signals: &[&str],
    gap: std::time::Duration,
) -> (Option<i32>, String, Vec<BTreeMap<String, String>>) {
    let faults = Faults {
        latency_ms: 20,
        ..Faults::default()
    };
    let sim = Sim::start(org, faults).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let endpoint = sim.endpoint();
    let home = tempfile::tempdir().unwrap();
    let mut args = vec![
        "--role",
        "IAMAuditRole",
        "--concurrency",
        "2",
        "--no-progress",
        "--output-dir",
        dir.path().to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let child = bin_command(
        &args,
        &[FAKE_KEY, FAKE_SECRET, ("AWS_ENDPOINT_URL", &endpoint)],
        home.path(),
    )
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let pid = child.id().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !sim.calls().iter().any(|c| c.action == "iam:ListAccessKeys") {
        assert!(
            std::time::Instant::now() < deadline,
            "the audit never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for (i, sig) in signals.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(gap).await;
        }
        let status = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the run ends soon after the signals")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let file = |prefix: &str| {
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
            .unwrap()
    };
    // Every file is complete CSV with its header.
    read_csv(&file("iam_audit_report_"), &iam_audit::report::KEY_COLUMNS);
    read_csv(&file("users_"), &iam_audit::report::USER_COLUMNS);
    read_csv(
        &file("cloudtrail_events_"),
        &iam_audit::report::EVENT_COLUMNS,
    );
    let rows = read_csv(&file("accounts_"), &iam_audit::report::ACCOUNT_COLUMNS);
    (out.status.code(), stderr, rows)
}

fn interrupt_org() -> iam_audit::sim::SimOrg {
    Scenario {
        accounts: 12,
        suspended_every: 0,
        users_min: 20,
        users_max: 20,
        events_per_account: 10,
        ..Scenario::default()
    }
    .generate()
}

// Story: Ctrl-C in the middle of a run stops it early without losing what was read: every account is in
// the accounts report (unstarted ones `skipped`, running ones `partial` once the grace is over), the files
// are complete CSV, and the exit code says SIGINT (130).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_flushes_and_reports_every_account() {
    let (code, stderr, rows) = interrupted_run(
        interrupt_org(),
        &["--shutdown-grace-secs", "0"],
        &["INT"],
        std::time::Duration::ZERO,
    )
    .await;
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        stderr.contains("SIGINT: no new accounts are started; running ones get 0 s to finish"),
        "{stderr}"
    );
    assert_eq!(rows.len(), 12, "every account is reported");
    assert!(rows.iter().any(|r| r["audit_status"] == "skipped"
        && r["error"] == "Cancelled: the run was interrupted before the account was started"));
    assert!(rows.iter().any(|r| r["audit_status"] == "partial"
        && r["error"].contains("Cancelled: the run was interrupted and its grace period ended")));
}

// Story: a scheduler's SIGTERM gives the running accounts the grace period to finish (they end `audited`),
// starts no other, and exits 143 with every account named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_running_accounts_finish_within_the_grace() {
    let (code, stderr, rows) = interrupted_run(
        interrupt_org(),
        &[
            "--shutdown-grace-secs",
            "120",
            "--iam-rate",
            "100",
            "--iam-burst",
            "20",
        ],
        &["TERM"],
        std::time::Duration::ZERO,
    )
    .await;
    assert_eq!(code, Some(143), "{stderr}");
    assert_eq!(rows.len(), 12);
    let audited = rows
        .iter()
        .filter(|r| r["audit_status"] == "audited")
        .count();
    let skipped = rows
        .iter()
        .filter(|r| r["audit_status"] == "skipped")
        .count();
    assert!(audited >= 1, "the running accounts finished: {rows:?}");
    assert_eq!(audited + skipped, 12, "none cut short: {rows:?}");
}

// Story: a second SIGTERM ends a long grace at once: the running accounts are closed as partial, the reports
// are still flushed, and the run exits 143.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_ends_the_grace_and_still_flushes() {
    // Within interrupted_run's 60 s, against an hour of grace.
    let (code, stderr, rows) = interrupted_run(
        interrupt_org(),
        &["--shutdown-grace-secs", "3600", "--iam-rate", "2"],
        &["TERM", "TERM"],
        std::time::Duration::from_millis(500),
    )
    .await;
    assert_eq!(code, Some(143), "{stderr}");
    assert!(
        stderr.contains("second signal: running accounts are closed as partial now"),
        "{stderr}"
    );
    assert_eq!(rows.len(), 12);
    assert!(rows.iter().any(|r| r["audit_status"] == "partial"));
}

// Story: the scenario shown in docs/simulator.md is a valid scenario file.
#[test]
fn docs_scenario_parses() {
    let block = doc_block(&repo_file("docs/simulator.md"), "scenario", "toml");
    let s = iam_audit::sim::Scenario::from_toml(&block).expect("the scenario parses");
    assert_eq!(s.faults.deny_assume_role, vec!["100000000001".to_string()]);
    assert_eq!(s.accounts, 30);
    assert!(iam_audit::sim::Scenario::from_toml("acounts = 3")
        .unwrap_err()
        .contains("unknown field `acounts`"));
}

// Story: the reports are the organization's credential inventory. They are created new and private (0600) in
// a private new directory (0700); a name already taken (a second run in the same second, or a planted
// symlink) moves the run to the next suffix, and nothing is written through the symlink.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_are_private_and_never_clobber_or_follow_a_symlink() {
    use std::os::unix::fs::PermissionsExt;
    let org = Scenario::sized(5, 2, 2, 2).generate();
    let sim = Sim::start(org, Faults::default()).await.unwrap();
    let base = tempfile::tempdir().unwrap();
    let out_dir = base.path().join("reports").join("weekly");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::remove_dir(&out_dir).unwrap();
    std::fs::remove_dir(base.path().join("reports")).unwrap();
    // A symlink squatting the key report's name for each of the next 20 seconds' stamps, pointing at a
    // file the run must not touch. The directory is created by the planter, so make it exist first.
    let victim = base.path().join("victim.txt");
    std::fs::write(&victim, "do not overwrite\n").unwrap();
    let planted_dir = base.path().join("planted");
    std::fs::create_dir(&planted_dir).unwrap();
    let now = chrono::Utc::now();
    for s in 0..20 {
        let stamp = (now + chrono::Duration::seconds(s)).format("%Y%m%d_%H%M%S");
        std::os::unix::fs::symlink(
            &victim,
            planted_dir.join(format!("iam_audit_report_{stamp}.csv")),
        )
        .unwrap();
    }
    let endpoint = sim.endpoint();
    let run = |dir: std::path::PathBuf| {
        let endpoint = endpoint.clone();
        async move {
            run_bin(
                &[
                    "--role",
                    "IAMAuditRole",
                    "--no-progress",
                    "--output-dir",
                    dir.to_str().unwrap(),
                ],
                &[FAKE_KEY, FAKE_SECRET, ("AWS_ENDPOINT_URL", &endpoint)],
                &dir,
            )
            .await
        }
    };
    // A new directory, created private.
    let out = run(out_dir.clone()).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    for d in [base.path().join("reports"), out_dir.clone()] {
        let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", d.display());
    }
    assert_eq!(out.files.len(), 9);
    // The findings' history beside them is as private.
    let history: Vec<std::path::PathBuf> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("/.iam-audit-history_"))
        .collect();
    assert_eq!(history.len(), 1, "{history:?}");
    for f in out.files.iter().chain(&history) {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
    // The planted directory: the run takes the next suffix, and the victim is untouched.
    let out = run(planted_dir.clone()).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "do not overwrite\n"
    );
    let reports: Vec<String> = std::fs::read_dir(&planted_dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            (!e.file_type().unwrap().is_symlink())
                .then(|| e.file_name().to_string_lossy().to_string())
        })
        .collect();
    assert_eq!(
        reports.len(),
        10,
        "nine reports and the history: {reports:?}"
    );
    assert!(
        reports.iter().all(|n| n.ends_with("_2.csv")
            || n.ends_with("_2.ocsf.jsonl")
            || n.ends_with("_2.jsonl")
            || n.ends_with("_2.html")),
        "{reports:?}"
    );
    assert!(
        out.stderr.contains("_2.csv"),
        "the summary names the suffixed files: {}",
        out.stderr
    );
    for n in &reports {
        let mode = std::fs::metadata(planted_dir.join(n))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{n}");
    }
}

// Story: a scheduled run killed by its scheduler (SIGTERM) at a random moment is finished with --resume into
// the same files, CSV or JSON lines; the result has exactly the rows of an uninterrupted run, none twice. The moments are drawn
// from a seeded generator, so a failure can be replayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_after_an_interruption_gives_the_rows_of_an_uninterrupted_run() {
    use rand::{Rng, SeedableRng};
    let org = Scenario {
        seed: 73,
        accounts: 8,
        suspended_every: 5,
        users_min: 6,
        users_max: 6,
        events_per_account: 30,
        now: chrono::Utc::now().timestamp() - 30,
        ..Scenario::default()
    }
    .generate();
    let faults = Faults {
        latency_ms: 10,
        ..Faults::default()
    };
    // No formula escaping, so that the JSON-lines attempt has the CSV's values.
    let flags = [
        "--concurrency",
        "2",
        "--no-progress",
        "--iam-rate",
        "50",
        "--iam-burst",
        "10",
        "--no-escape-formulas",
    ];
    let run = |sim_endpoint: String, dir: std::path::PathBuf, extra: Vec<String>| async move {
        let mut args: Vec<String> = ["--role", "IAMAuditRole", "--output-dir"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.push(dir.to_str().unwrap().to_string());
        args.extend(flags.iter().map(|s| s.to_string()));
        args.extend(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_bin(
            &args,
            &[FAKE_KEY, FAKE_SECRET, ("AWS_ENDPOINT_URL", &sim_endpoint)],
            &dir,
        )
        .await
    };
    let reference_sim = Sim::start(org.clone(), faults.clone()).await.unwrap();
    let reference = tempfile::tempdir().unwrap();
    let out = run(
        reference_sim.endpoint(),
        reference.path().to_path_buf(),
        vec![],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let expected = report_rows(reference.path());
    assert_eq!(expected[3].len(), 8);

    let mut rng = rand::rngs::StdRng::seed_from_u64(20261123);
    // The last attempt writes JSON lines; the resume finds the format from the files.
    for attempt in 0..4 {
        let delay = std::time::Duration::from_millis(rng.random_range(100..4000));
        let sim = Sim::start(org.clone(), faults.clone()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        let mut args = vec![
            "--role",
            "IAMAuditRole",
            "--shutdown-grace-secs",
            "0",
            "--output-dir",
        ];
        args.push(dir.path().to_str().unwrap());
        args.extend(flags);
        if attempt == 3 {
            args.extend(["--format", "jsonl"]);
        }
        let endpoint = sim.endpoint();
        let child = bin_command(
            &args,
            &[FAKE_KEY, FAKE_SECRET, ("AWS_ENDPOINT_URL", &endpoint)],
            home.path(),
        )
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
        let pid = child.id().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !sim.calls().iter().any(|c| c.action.starts_with("iam:")) {
            assert!(
                std::time::Instant::now() < deadline,
                "the audit never started"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        tokio::time::sleep(delay).await;
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let first =
            tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
                .await
                .unwrap()
                .unwrap();
        let code = first.status.code();
        assert!(
            code == Some(143) || code == Some(0),
            "attempt {attempt} ({delay:?}): {code:?} {}",
            String::from_utf8_lossy(&first.stderr)
        );
        let dir_path = dir.path().to_path_buf();
        let resumed = run(
            endpoint.clone(),
            dir_path.clone(),
            vec!["--resume".into(), dir_path.to_str().unwrap().to_string()],
        )
        .await;
        assert_eq!(
            resumed.code, 0,
            "attempt {attempt} ({delay:?}): {}",
            resumed.stderr
        );
        assert_eq!(
            report_rows(dir.path()),
            expected,
            "attempt {attempt}: interrupted after {delay:?} (exit {code:?}), then resumed"
        );
        // The summary page says what part of the run it counts.
        if let Some(n) = resumed
            .stderr
            .split("; ")
            .find_map(|p| p.strip_suffix(" done before the resume"))
        {
            assert!(
                resumed.summary_html.contains(&format!(
                    "This run was resumed: {n} accounts were finished before the resume"
                )),
                "attempt {attempt}"
            );
        }
        // The page counts the whole run, the accounts finished before the resume included.
        if code == Some(143) {
            assert!(
                resumed
                    .summary_html
                    .contains(&format!(": {} accounts in ", expected[3].len())),
                "attempt {attempt}: the page does not count every account"
            );
        }
    }
}

// Story: a pipeline takes JSON lines: --format jsonl writes the same four reports, one JSON object per row
// with the CSV's columns as keys and the same values (formula escaping is for spreadsheets, so CSV only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonl_has_the_rows_of_the_csv() {
    let org = Scenario::sized(83, 2, 4, 6).generate();
    let fast = [
        "--iam-rate",
        "200",
        "--iam-burst",
        "50",
        "--no-progress",
        "--role",
        "IAMAuditRole",
    ];
    let sim = Sim::start(org.clone(), Faults::default()).await.unwrap();
    let csv_dir = tempfile::tempdir().unwrap();
    let mut args = fast.to_vec();
    args.extend([
        "--no-escape-formulas",
        "--output-dir",
        csv_dir.path().to_str().unwrap(),
    ]);
    let endpoint = sim.endpoint();
    let csv = run_bin(
        &args,
        &[FAKE_KEY, FAKE_SECRET, ("AWS_ENDPOINT_URL", &endpoint)],
        csv_dir.path(),
    )
    .await;
    assert_eq!(csv.code, 0, "{}", csv.stderr);
    let sim = Sim::start(org.clone(), Faults::default()).await.unwrap();
    let json_dir = tempfile::tempdir().unwrap();
    let mut args = fast.to_vec();
    args.extend([
        "--format",
        "jsonl",
        "--output-dir",
        json_dir.path().to_str().unwrap(),
    ]);
    let endpoint = sim.endpoint();
    let json = run_bin(
        &args,
        &[FAKE_KEY, FAKE_SECRET, ("AWS_ENDPOINT_URL", &endpoint)],
        json_dir.path(),
    )
    .await;
    assert_eq!(json.code, 0, "{}", json.stderr);
    let read = |prefix: &str| -> Vec<BTreeMap<String, String>> {
        let path = json
            .files
            .iter()
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
            .unwrap();
        assert!(path.to_string_lossy().ends_with(".jsonl"));
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<BTreeMap<String, String>>(l)
                    .expect("a JSON object of strings")
            })
            .collect()
    };
    let strip = |rows: &[BTreeMap<String, String>]| -> Vec<BTreeMap<String, String>> {
        let mut v: Vec<_> = rows
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.remove("duration_s");
                r.remove("credential_report_time");
                r
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(json.files.len(), 9);
    assert_eq!(strip(&read("iam_audit_report_")), strip(&csv.keys));
    assert_eq!(strip(&read("users_")), strip(&csv.users));
    assert_eq!(strip(&read("cloudtrail_events_")), strip(&csv.events));
    assert_eq!(strip(&read("accounts_")), strip(&csv.accounts));
    assert!(!csv.keys.is_empty() && !csv.events.is_empty());
}

// Story: shells complete the flags, and `man` shows the page, both generated from the same definitions.
#[test]
fn completions_and_man_page_come_from_the_flags() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(BIN).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let bash = run(&["completions", "bash"]);
    for flag in [
        "--resume",
        "--strategy",
        "--account-budget-secs",
        "--format",
    ] {
        assert!(bash.contains(flag), "bash completion lacks {flag}");
    }
    assert!(run(&["completions", "zsh"]).contains("#compdef iam-audit"));
    let man = run(&["man"]);
    assert!(
        man.contains(".TH iam-audit 1"),
        "{}",
        &man[..200.min(man.len())]
    );
    assert!(man.contains("completions"));
}

// Story: the disk fills up mid-run (a file-size limit on the process stands for it): the run exits 1, its
// message names every account that did not reach the accounts report, and every file ends on a whole row
// (cut back to the last account written), so `--resume` can finish it.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_mid_run_exits_1_naming_every_account_not_written() {
    let org = Scenario::sized(3, 30, 6, 40).generate();
    let sim = Sim::start(org.clone(), Faults::default()).await.unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let endpoint = sim.endpoint();
    let mut cmd = bin_command(
        &[
            "--role",
            "IAMAuditRole",
            "--output-dir",
            out_dir.path().to_str().unwrap(),
            "--no-progress",
            "--iam-rate",
            "200",
            "--iam-burst",
            "50",
            "--concurrency",
            "2",
        ],
        &[FAKE_KEY, FAKE_SECRET, ("AWS_ENDPOINT_URL", &endpoint)],
        home.path(),
    );
    // SAFETY: two async-signal-safe libc calls in the child, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // A write past the limit then fails with EFBIG instead of killing the process.
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: 24_000,
                rlim_max: 24_000,
            };
            libc::setrlimit(libc::RLIMIT_FSIZE, &limit);
            Ok(())
        });
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(300), cmd.output())
        .await
        .expect("the run ends")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let prefix = format!(
        "error: cannot write the reports to {}: ",
        out_dir.path().display()
    );
    assert!(stderr.contains(&prefix), "{stderr}");
    let named: BTreeSet<String> = stderr
        .split(" were not written: ")
        .nth(1)
        .and_then(|rest| rest.split(". Free space").next())
        .expect("the unwritten accounts are named")
        .split(", ")
        .map(str::to_string)
        .collect();
    let mut files: Vec<_> = std::fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().contains("/.iam-audit-history_"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 9, "{files:?}");
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let name = f.to_string_lossy();
        if name.ends_with(".ocsf.jsonl") {
            // Whole findings only: every line parses.
            assert!(bytes.is_empty() || bytes.ends_with(b"\n"), "{name}");
            for line in String::from_utf8(bytes).unwrap().lines() {
                serde_json::from_str::<serde_json::Value>(line).expect("a whole finding");
            }
            continue;
        }
        if name.ends_with(".html") {
            continue; // the page is written whole at the end, or not at all
        }
        assert!(
            bytes.ends_with(b"\r\n"),
            "{} ends on a whole row",
            f.display()
        );
        let mut r = csv::Reader::from_path(f).unwrap();
        let width = r.headers().unwrap().len();
        for rec in r.records() {
            assert_eq!(rec.unwrap().len(), width, "{}", f.display());
        }
    }
    let accounts_file = files
        .iter()
        .find(|f| {
            f.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("accounts_")
        })
        .unwrap();
    let written: BTreeSet<String> = read_csv(accounts_file, &iam_audit::report::ACCOUNT_COLUMNS)
        .into_iter()
        .map(|r| r["account_id"].clone())
        .collect();
    let all: BTreeSet<String> = org.accounts.iter().map(|a| a.id.clone()).collect();
    assert!(
        !named.is_empty() && named.is_disjoint(&written),
        "{named:?} {written:?}"
    );
    assert_eq!(
        written.union(&named).cloned().collect::<BTreeSet<_>>(),
        all,
        "every account is either in the accounts report or named"
    );
    assert!(
        stderr.contains(&format!(
            "({} accounts); {} were not written",
            written.len(),
            named.len()
        )),
        "{stderr}"
    );
}
