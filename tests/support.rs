//! Test harness: moto (a real server, installed into a venv under target/ on first use), the simulator
//! (in-process, on loopback), and running the `iam-audit` binary exactly as a user does, with an isolated
//! environment (no real profile, no instance metadata, only the endpoints given).

use std::collections::{BTreeMap, BTreeSet};

use iam_audit::sim::{Call, Faults, Sim, SimOrg};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_iam-audit");

/// The Python environment the tests run outside tools from (moto, the OCSF validators, botocore): the
/// directory `IAM_AUDIT_TEST_VENV` names, or target/test-venv, made from tests/tools/requirements.txt on
/// first use and made again when that file changes.
pub fn test_venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        venv(
            "test-venv",
            "tests/tools/requirements.txt",
            "IAM_AUDIT_TEST_VENV",
        )
    })
}

/// The linters of the deployment recipes (cfn-lint, checkov, kubernetes-validate, check-jsonschema,
/// hadolint), in a venv of their own (checkov pins its own boto3): `IAM_AUDIT_LINT_VENV`, or
/// target/lint-venv from tests/tools/lint-requirements.txt.
pub fn lint_venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        venv(
            "lint-venv",
            "tests/tools/lint-requirements.txt",
            "IAM_AUDIT_LINT_VENV",
        )
    })
}

fn venv(name: &str, requirements: &str, override_var: &str) -> PathBuf {
    if let Ok(p) = std::env::var(override_var) {
        return PathBuf::from(p);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let requirements = manifest.join(requirements);
    let wanted = std::fs::read_to_string(&requirements).expect("the venv's requirements file");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| manifest.join("target"));
    let venv = target.join(name);
    let stamp = venv.join("requirements.installed");
    if std::fs::read_to_string(&stamp).is_ok_and(|have| have == wanted) {
        return venv;
    }
    let ok = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet", "-r"])
            .arg(&requirements)
            .status()
            .is_ok_and(|s| s.success());
    assert!(
        ok,
        "the integration tests need the Python tools of {r}, and they could not be installed into {v}. \
         Install them with `python3 -m venv {v} && {v}/bin/pip install -r {r}`, or point {override_var} at \
         a venv that has them.",
        v = venv.display(),
        r = requirements.display(),
    );
    std::fs::write(&stamp, &wanted).expect("the venv's requirements stamp");
    venv
}

/// The test venv's python, for the outside validators in tests/tools/.
pub fn python() -> PathBuf {
    test_venv().join("bin").join("python")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A moto server of our own on a free loopback port; killed (by PID) on drop.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    /// Every finding moto's Security Hub holds (GetFindings, every page): Id → (RecordState,
    /// FirstObservedAt).
    pub fn security_hub_findings(&self) -> BTreeMap<String, (String, String)> {
        let got = self.python(
            "c = boto3.client('securityhub', endpoint_url=MOTO)\n\
             out = {}\n\
             kw = {'MaxResults': 100}\n\
             for _ in range(1000):\n\
             \x20   r = c.get_findings(**kw)\n\
             \x20   out.update({f['Id']: (f['RecordState'], f['FirstObservedAt']) for f in r['Findings']})\n\
             \x20   if not r.get('NextToken'): break\n\
             \x20   kw['NextToken'] = r['NextToken']\n\
             print(json.dumps(out))",
            &[],
        );
        serde_json::from_str(&got).unwrap()
    }

    pub fn start() -> Moto {
        Moto::start_with(&[], &[])
    }

    /// A moto whose accounts hold AWS's managed policies, as AWS's do (moto loads them only when asked,
    /// and that costs each account's IAM backend time): a seed can attach a quarantine policy, and the
    /// audit sees it attached (ListEntitiesForPolicy).
    pub fn start_with_managed_policies() -> Moto {
        Moto::start_with(&[], &[("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")])
    }

    /// A moto that records every request it gets (method, URL, headers, body) as JSON lines in `path`:
    /// moto's own recorder, so what our requests carried is read by a tool we did not write.
    /// (tests/tools/moto_recording.py: moto_server, its recorder writing one request at a time.)
    pub fn start_recording(path: &Path) -> Moto {
        let launcher = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/moto_recording.py");
        Moto::start_with(
            &[launcher.to_str().expect("a UTF-8 path")],
            &[
                ("MOTO_ENABLE_RECORDING", "True"),
                (
                    "MOTO_RECORDER_FILEPATH",
                    path.to_str().expect("a UTF-8 path"),
                ),
            ],
        )
    }

    /// moto_server, or the test venv's python running `launcher` with moto_server's arguments.
    fn start_with(launcher: &[&str], env: &[(&str, &str)]) -> Moto {
        let server = match launcher {
            [] => test_venv().join("bin").join("moto_server"),
            _ => python(),
        };
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new(&server)
                .args(launcher)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .envs(env.iter().copied())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start moto_server");
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Moto {
                        child,
                        endpoint: format!("http://127.0.0.1:{port}"),
                    };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break; // port taken between our probe and its bind: try another
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("moto_server did not start on 127.0.0.1");
    }
}

impl Moto {
    /// Run a Python script with boto3 against this moto (its endpoint in `MOTO`, test credentials,
    /// region us-east-1 unless the script names another, `extra` variables); its stdout, trimmed. A script
    /// that fails fails the test with its stderr.
    pub fn python(&self, script: &str, extra: &[(&str, &str)]) -> String {
        let out = Command::new(python())
            .args([
                "-c",
                &format!("import boto3, os, json\nMOTO = os.environ['MOTO']\n{script}"),
            ])
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("MOTO", &self.endpoint)
            .envs(extra.iter().copied())
            .output()
            .expect("run the test venv's python");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a run of the binary left behind.
pub struct RunOutput {
    pub code: i32,
    pub stderr: String,
    pub keys: Vec<BTreeMap<String, String>>,
    pub users: Vec<BTreeMap<String, String>>,
    pub events: Vec<BTreeMap<String, String>>,
    pub accounts: Vec<BTreeMap<String, String>>,
    pub files: Vec<PathBuf>,
    pub keys_text: String,
    pub changes: Vec<BTreeMap<String, String>>,
    /// The OCSF findings file, parsed line by line (and its path, for the outside validator).
    pub findings: Vec<serde_json::Value>,
    pub findings_path: Option<PathBuf>,
    pub summary_html: String,
}

/// Read a CSV file into rows keyed by column, checking the header is exactly `columns`.
pub fn read_csv(path: &Path, columns: &[&str]) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(path).expect("open csv");
    let header: Vec<String> = r
        .headers()
        .expect("header")
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(header, columns, "header of {}", path.display());
    r.records()
        .map(|rec| {
            let rec = rec.expect("csv record");
            header
                .iter()
                .cloned()
                .zip(rec.iter().map(str::to_string))
                .collect()
        })
        .collect()
}

/// `iam-audit ARGS` with an isolated environment: empty AWS config files in `home`, no instance
/// metadata, and only the given variables.
pub fn bin_command(args: &[&str], env: &[(&str, &str)], home: &Path) -> tokio::process::Command {
    std::fs::write(home.join("config"), "").expect("empty aws config");
    std::fs::write(home.join("credentials"), "").expect("empty aws credentials");
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Run `iam-audit ARGS` with only the given AWS environment. Returns the exit code, stderr and the parsed
/// reports found in `out_dir` (if any).
pub async fn run_bin(args: &[&str], env: &[(&str, &str)], out_dir: &Path) -> RunOutput {
    let home = tempfile::tempdir().expect("home");
    let mut cmd = bin_command(args, env, home.path());
    let out = tokio::time::timeout(Duration::from_secs(300), cmd.output())
        .await
        .expect("iam-audit finished within 5 minutes")
        .expect("run iam-audit");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    // The reports (the findings' history, a dotfile, is the run's state, not a report).
    let mut files: Vec<PathBuf> = std::fs::read_dir(out_dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    !p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    // The latest run's own files (stamps sort by time), not a symlink planted beside them.
    let find = |prefix: &str, suffix: &str| {
        files
            .iter()
            .rev()
            .find(|p| {
                p.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    n.starts_with(prefix) && n.ends_with(suffix)
                }) && !p
                    .symlink_metadata()
                    .is_ok_and(|m| m.file_type().is_symlink())
            })
            .cloned()
    };
    let (mut keys, mut users, mut events, mut accounts, mut keys_text) =
        (vec![], vec![], vec![], vec![], String::new());
    if let Some(p) = find("iam_audit_report_", ".csv") {
        keys_text = std::fs::read_to_string(&p).expect("read key report");
        keys = read_csv(&p, &iam_audit::report::KEY_COLUMNS);
    }
    if let Some(p) = find("users_", ".csv") {
        users = read_csv(&p, &iam_audit::report::USER_COLUMNS);
    }
    if let Some(p) = find("cloudtrail_events_", ".csv") {
        events = read_csv(&p, &iam_audit::report::EVENT_COLUMNS);
    }
    if let Some(p) = find("accounts_", ".csv") {
        accounts = read_csv(&p, &iam_audit::report::ACCOUNT_COLUMNS);
    }
    let changes = find("changes_", ".csv")
        .map(|p| read_csv(&p, &iam_audit::report::CHANGE_COLUMNS))
        .unwrap_or_default();
    let findings_path = find("findings_", ".ocsf.jsonl");
    let findings = findings_path
        .as_ref()
        .map(|p| {
            std::fs::read_to_string(p)
                .expect("read findings")
                .lines()
                .map(|l| serde_json::from_str(l).expect("every findings line is JSON"))
                .collect()
        })
        .unwrap_or_default();
    let summary_html = find("summary_", ".html")
        .map(|p| std::fs::read_to_string(p).expect("read summary page"))
        .unwrap_or_default();
    RunOutput {
        code: out.status.code().unwrap_or(-1),
        stderr,
        keys,
        users,
        events,
        accounts,
        files,
        keys_text,
        changes,
        findings,
        findings_path,
        summary_html,
    }
}

/// Validate an OCSF findings file with the outside validators (tests/tools/validate_ocsf.py: a JSON Schema
/// generated from the official OCSF 1.6.0 schema, and pydantic-ocsf's 1.6.0 models). Returns the
/// validator's last line ("N events, 0 invalid"); fails the test with every complaint otherwise.
pub fn assert_valid_ocsf(path: &Path) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/validate_ocsf.py");
    let out = Command::new(python())
        .arg(script)
        .arg(path)
        .output()
        .expect("run the OCSF validator");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{} is not valid OCSF 1.6.0:\n{}{}",
        path.display(),
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines().last().unwrap_or_default().to_string()
}

/// Management credentials that only a fake AWS accepts.
pub const FAKE_KEY: (&str, &str) = ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE");
pub const FAKE_SECRET: (&str, &str) = (
    "AWS_SECRET_ACCESS_KEY",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
);

/// A row as `column=value` pairs, for readable comparisons.
pub fn row(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Keep only the given columns of each row and sort, for order-insensitive comparison.
pub fn project(rows: &[BTreeMap<String, String>], cols: &[&str]) -> Vec<BTreeMap<String, String>> {
    let mut out: Vec<_> = rows
        .iter()
        .map(|r| {
            cols.iter()
                .map(|c| (c.to_string(), r.get(*c).cloned().unwrap_or_default()))
                .collect()
        })
        .collect();
    out.sort();
    out
}

/// Rows equal as sets of rows; on a difference, only the differing rows are shown.
#[track_caller]
pub fn assert_same_rows(got: &[BTreeMap<String, String>], expected: &[BTreeMap<String, String>]) {
    let mut g: Vec<_> = got.to_vec();
    let mut e: Vec<_> = expected.to_vec();
    g.sort();
    e.sort();
    if g != e {
        let extra: Vec<_> = g.iter().filter(|r| !e.contains(r)).collect();
        let missing: Vec<_> = e.iter().filter(|r| !g.contains(r)).collect();
        panic!(
            "rows differ ({} got, {} expected)\nunexpected:\n{extra:#?}\nmissing:\n{missing:#?}",
            g.len(),
            e.len()
        );
    }
}

// --- auditing the simulator ---

/// Design §1: the read-only actions, and the optional ones (credential report, root checks, centralized
/// root access, the other long-term credentials).
pub const ALLOWED: [&str; 21] = [
    "organizations:ListAccounts",
    "organizations:ListRoots",
    "organizations:ListOrganizationalUnitsForParent",
    "organizations:ListAccountsForParent",
    "sts:AssumeRole",
    "iam:ListUsers",
    "iam:ListAccessKeys",
    "iam:GetAccessKeyLastUsed",
    "iam:ListMFADevices",
    "iam:GetLoginProfile",
    "cloudtrail:LookupEvents",
    "iam:GenerateCredentialReport",
    "iam:GetCredentialReport",
    "iam:GetAccountSummary",
    "iam:ListVirtualMFADevices",
    "iam:ListOrganizationsFeatures",
    "iam:ListServiceSpecificCredentials",
    "iam:ListSigningCertificates",
    "iam:ListSSHPublicKeys",
    // Which users AWS quarantined (compromised-key quarantine policies).
    "iam:ListEntitiesForPolicy",
    // The root user of a member account without a usable role (--root-audit, centralized root access).
    "sts:AssumeRoot",
];

pub async fn audit(sim: &Sim, extra: &[&str]) -> (RunOutput, tempfile::TempDir) {
    let out_dir = tempfile::tempdir().unwrap();
    let out = audit_in(sim, out_dir.path(), extra).await;
    (out, out_dir)
}

/// Audit `sim` into `dir`, which may hold earlier runs (the latest run's files are read back).
pub async fn audit_in(sim: &Sim, dir: &Path, extra: &[&str]) -> RunOutput {
    let mut args = vec![
        "--role",
        "IAMAuditRole",
        "--output-dir",
        dir.to_str().unwrap(),
        "--no-progress",
    ];
    args.extend_from_slice(extra);
    let endpoint = sim.endpoint();
    run_bin(
        &args,
        &[FAKE_KEY, FAKE_SECRET, ("AWS_ENDPOINT_URL", &endpoint)],
        dir,
    )
    .await
}

/// The key rows the simulated org should give, as (account, key id, status, password, mfa, last used).
pub fn expected_keys(
    org: &SimOrg,
    skip: &[String],
) -> BTreeSet<(String, String, String, String, String, String)> {
    let mut out = BTreeSet::new();
    for a in org
        .accounts
        .iter()
        .filter(|a| a.status == "ACTIVE" && !skip.contains(&a.id))
    {
        for u in &a.users {
            let mfa = if u.mfa.iter().any(|s| !s.contains(":mfa/")) {
                "Hardware"
            } else if u.mfa.is_empty() {
                "None"
            } else {
                "Virtual"
            };
            for k in &u.keys {
                out.insert((
                    a.id.clone(),
                    k.id.clone(),
                    if k.active { "Active" } else { "Inactive" }.to_string(),
                    if u.login_profile {
                        "Configured"
                    } else {
                        "Not configured"
                    }
                    .to_string(),
                    mfa.to_string(),
                    k.last_used
                        .as_ref()
                        .map(|(t, _, _)| {
                            chrono::DateTime::from_timestamp(*t, 0)
                                .unwrap()
                                .format("%Y-%m-%dT%H:%M:%SZ")
                                .to_string()
                        })
                        .unwrap_or_else(|| "Never used".into()),
                ));
            }
        }
    }
    out
}

pub fn got_keys(out: &RunOutput) -> BTreeSet<(String, String, String, String, String, String)> {
    out.keys
        .iter()
        .map(|k| {
            (
                k["account_id"].clone(),
                k["access_key_id"].clone(),
                k["status"].clone(),
                k["password_status"].clone(),
                k["mfa_status"].clone(),
                k["last_used_date"].clone(),
            )
        })
        .collect()
}

pub fn expected_event_ids(org: &SimOrg, skip: &[String]) -> BTreeSet<(String, String)> {
    org.accounts
        .iter()
        .filter(|a| a.status == "ACTIVE" && !skip.contains(&a.id))
        .flat_map(|a| {
            a.events
                .iter()
                .filter(|e| e.source == "iam.amazonaws.com")
                .map(move |e| (a.id.clone(), e.id.clone()))
        })
        .collect()
}

pub fn got_event_ids(out: &RunOutput) -> BTreeSet<(String, String)> {
    out.events
        .iter()
        .map(|e| (e["account_id"].clone(), e["event_id"].clone()))
        .collect()
}

pub fn assert_read_only(calls: &[Call]) {
    let used: BTreeSet<&str> = calls.iter().map(|c| c.action.as_str()).collect();
    for a in &used {
        assert!(
            ALLOWED.contains(a),
            "the audit called {a}, outside the least-privilege policy"
        );
    }
}

/// Start the simulator with `org` and `faults`, audit it with fast client rates (the simulator's quotas,
/// if any, still apply) and `extra` flags, and check from its call log that the run only read. The
/// simulator is returned for more assertions on its log.
pub async fn fast_audit(
    org: &SimOrg,
    faults: Faults,
    extra: &[&str],
) -> (Sim, RunOutput, tempfile::TempDir) {
    let sim = Sim::start(org.clone(), faults).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = fast_audit_in(&sim, dir.path(), extra).await;
    (sim, out, dir)
}

/// `fast_audit` of a running simulator into `dir`, which may hold earlier runs.
pub async fn fast_audit_in(sim: &Sim, dir: &Path, extra: &[&str]) -> RunOutput {
    let mut args = vec!["--iam-rate", "200", "--iam-burst", "50"];
    args.extend_from_slice(extra);
    let out = audit_in(sim, dir, &args).await;
    assert_read_only(&sim.calls());
    out
}

/// One request a `Receiver` got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// How a `Receiver` answers its n-th request: status, headers, body.
pub type Answerer =
    std::sync::Arc<dyn Fn(usize, &Received) -> (u16, Vec<(String, String)>, String) + Send + Sync>;

/// A webhook receiver of our own on 127.0.0.1: it answers each request with the next `(status,
/// Retry-After)` of its script (the last one repeats) and keeps what it got. Stops when dropped.
pub struct Receiver {
    pub url_base: String,
    got: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(script: &[(u16, Option<&str>)]) -> Receiver {
        let script: Vec<(u16, Option<String>)> = script
            .iter()
            .map(|(s, r)| (*s, r.map(str::to_string)))
            .collect();
        Receiver::start_with(std::sync::Arc::new(move |n: usize, _: &Received| {
            let (status, retry_after) = &script[(n - 1).min(script.len() - 1)];
            let headers = retry_after
                .iter()
                .map(|r| ("retry-after".to_string(), r.clone()))
                .collect();
            (*status, headers, "ok".to_string())
        }))
        .await
    }

    /// A receiver answering the n-th request (from 1) with what `answer` says: status, headers, body.
    pub async fn start_with(answer: Answerer) -> Receiver {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url_base = format!("http://{}", listener.local_addr().unwrap());
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Received>::new()));
        let got2 = got.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (got, answer) = (got2.clone(), answer.clone());
                tokio::spawn(async move {
                    let mut reader = BufReader::new(stream);
                    // Requests on one connection, one after the other (keep-alive), at most 100.
                    for _ in 0..100 {
                        let mut line = String::new();
                        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let method = line.split_whitespace().next().unwrap_or("").to_string();
                        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                        let mut headers = BTreeMap::new();
                        loop {
                            let mut h = String::new();
                            if reader.read_line(&mut h).await.unwrap_or(0) == 0 {
                                return;
                            }
                            let h = h.trim_end();
                            if h.is_empty() {
                                break;
                            }
                            if let Some((k, v)) = h.split_once(':') {
                                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                            }
                        }
                        let len: usize = headers
                            .get("content-length")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        let mut body = vec![0u8; len];
                        if reader.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        let received = Received {
                            method,
                            path,
                            headers,
                            body: String::from_utf8_lossy(&body).into_owned(),
                        };
                        let n = {
                            let mut g = got.lock().unwrap();
                            g.push(received.clone());
                            g.len()
                        };
                        let (status, extra, body) = answer(n, &received);
                        let extra: String =
                            extra.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
                        // A HEAD answer has no body.
                        let body = if received.method == "HEAD" {
                            String::new()
                        } else {
                            body
                        };
                        let answer = format!(
                            "HTTP/1.1 {status} X\r\ncontent-length: {}\r\n{extra}\r\n{body}",
                            body.len()
                        );
                        if reader.get_mut().write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Receiver {
            url_base,
            got,
            task,
        }
    }

    pub fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Validate ASFF findings with botocore's own parameter validation of BatchImportFindings
/// (tests/tools/validate_asff.py). Returns its verdict ("N findings, 0 invalid").
pub fn assert_valid_asff(findings: &[serde_json::Value]) -> String {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("asff.json");
    std::fs::write(&path, serde_json::to_vec(findings).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/validate_asff.py");
    let out = Command::new(python())
        .arg(script)
        .arg(&path)
        .output()
        .expect("run the ASFF validator");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "the ASFF findings fail botocore's validation:\n{}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines().last().unwrap_or_default().to_string()
}

/// The rows of the four reports in `dir`, without the columns that differ from run to run, sorted (so a
/// row written twice shows).
/// A report's rows, CSV or JSON lines (each line an object with exactly the report's columns).
pub fn read_report(path: &Path, columns: &[&str]) -> Vec<BTreeMap<String, String>> {
    if path.extension().is_some_and(|e| e == "jsonl") {
        let want: BTreeSet<&str> = columns.iter().copied().collect();
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| {
                let row: BTreeMap<String, String> =
                    serde_json::from_str(l).expect("a JSON object of strings");
                assert_eq!(
                    row.keys().map(String::as_str).collect::<BTreeSet<_>>(),
                    want
                );
                row
            })
            .collect()
    } else {
        read_csv(path, columns)
    }
}

/// The four tables of the one run in `dir` (nine files), sorted, without the cells that vary between
/// two runs of the same organization (durations, report times); no finding written twice.
pub fn report_rows(dir: &Path) -> Vec<Vec<BTreeMap<String, String>>> {
    let files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    assert_eq!(files.len(), 9, "{files:?}");
    // No finding twice: the resume rewrote the findings file with the done accounts' findings only.
    let findings = files
        .iter()
        .find(|p| p.to_string_lossy().ends_with(".ocsf.jsonl"))
        .unwrap();
    let uids: Vec<String> = std::fs::read_to_string(findings)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["finding_info"]["uid"].as_str().unwrap().to_string()
        })
        .collect();
    let unique: std::collections::BTreeSet<&String> = uids.iter().collect();
    assert_eq!(unique.len(), uids.len(), "a finding written twice");
    let find = |prefix: &str| {
        files
            .iter()
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
            .unwrap()
            .clone()
    };
    let strip = |rows: Vec<BTreeMap<String, String>>| {
        let mut rows: Vec<_> = rows
            .into_iter()
            .map(|mut r| {
                r.remove("duration_s");
                r.remove("credential_report_time");
                r
            })
            .collect();
        rows.sort();
        rows
    };
    vec![
        strip(read_report(
            &find("iam_audit_report_"),
            &iam_audit::report::KEY_COLUMNS,
        )),
        strip(read_report(
            &find("users_"),
            &iam_audit::report::USER_COLUMNS,
        )),
        strip(read_report(
            &find("cloudtrail_events_"),
            &iam_audit::report::EVENT_COLUMNS,
        )),
        strip(read_report(
            &find("accounts_"),
            &iam_audit::report::ACCOUNT_COLUMNS,
        )),
    ]
}

/// The rows of one of a run's files other than the four reports (`credentials_`, `key_history_`), by
/// prefix, checked against its columns.
pub fn rows_of(out: &RunOutput, prefix: &str, columns: &[&str]) -> Vec<BTreeMap<String, String>> {
    let path = out
        .files
        .iter()
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .unwrap_or_else(|| panic!("no {prefix} file among {:?}", out.files));
    read_report(path, columns)
}

/// What a `FaultProxy` does with one request.
pub enum Fault {
    /// Forward it to the server as it came.
    Forward,
    /// Answer it instead: status and body (S3's XML error, say).
    Answer(u16, String),
    /// Never answer (a network that dropped the request, a process killed while it waited).
    Hang,
}

/// How a `FaultProxy` treats its n-th request (from 1).
pub type FaultPlan = std::sync::Arc<dyn Fn(usize, &Received) -> Fault + Send + Sync>;

/// A proxy of our own on 127.0.0.1 in front of a server (moto): each request is forwarded byte for byte
/// (one connection each), unless the plan answers or holds it. Keeps the requests it got, in order.
pub struct FaultProxy {
    pub url_base: String,
    got: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    pub async fn start(upstream: &str, plan: FaultPlan) -> FaultProxy {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url_base = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Received>::new()));
        let got2 = got.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (got, plan, upstream) = (got2.clone(), plan.clone(), upstream.clone());
                tokio::spawn(async move {
                    let mut reader = BufReader::new(stream);
                    let mut head = String::new();
                    if reader.read_line(&mut head).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let mut headers = BTreeMap::new();
                    let mut raw_headers = Vec::new();
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let line = h.trim_end().to_string();
                        if line.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':') {
                            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                        }
                        raw_headers.push(line);
                    }
                    assert!(
                        !headers.contains_key("transfer-encoding"),
                        "the fault proxy forwards bodies of a known length only: {head}"
                    );
                    let len: usize = headers
                        .get("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0u8; len];
                    if reader.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let received = Received {
                        method: head.split_whitespace().next().unwrap_or("").to_string(),
                        path: head.split_whitespace().nth(1).unwrap_or("").to_string(),
                        headers,
                        body: String::new(),
                    };
                    let n = {
                        let mut g = got.lock().unwrap();
                        g.push(received.clone());
                        g.len()
                    };
                    let client = reader.get_mut();
                    match plan(n, &received) {
                        Fault::Hang => {
                            tokio::time::sleep(Duration::from_secs(600)).await;
                        }
                        Fault::Answer(status, text) => {
                            let answer = format!(
                                "HTTP/1.1 {status} X\r\ncontent-type: application/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                                text.len()
                            );
                            let _ = client.write_all(answer.as_bytes()).await;
                        }
                        Fault::Forward => {
                            let Ok(mut up) = tokio::net::TcpStream::connect(&upstream).await else {
                                return;
                            };
                            let mut request = head.into_bytes();
                            for h in raw_headers
                                .iter()
                                .filter(|h| !h.to_ascii_lowercase().starts_with("connection:"))
                            {
                                request.extend_from_slice(h.as_bytes());
                                request.extend_from_slice(b"\r\n");
                            }
                            request.extend_from_slice(b"connection: close\r\n\r\n");
                            request.extend_from_slice(&body);
                            if up.write_all(&request).await.is_err() {
                                return;
                            }
                            let mut answer = Vec::new();
                            if up.read_to_end(&mut answer).await.is_err() {
                                return;
                            }
                            let _ = client.write_all(&answer).await;
                        }
                    }
                    let _ = client.shutdown().await;
                });
            }
        });
        FaultProxy {
            url_base,
            got,
            task,
        }
    }

    pub fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
