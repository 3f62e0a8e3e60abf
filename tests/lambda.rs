//! The Lambda mode as AWS runs it: the binary started with `AWS_LAMBDA_RUNTIME_API` pointing at a fake
//! Runtime API of ours, each invocation with a short deadline, the reports in moto's S3. A 300-account
//! simulated organization takes several invocations; each but the last answers `incomplete` with the
//! prefix to resume; the joined reports have exactly the rows of one uninterrupted run, and no account's
//! users were listed twice.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use iam_audit::sim::{Faults, Scenario, Sim};

use crate::support::*;

/// Each invocation's time: the deadline is this far from when it is handed out.
const INVOCATION_MS: u64 = 4000;

#[tokio::test(flavor = "multi_thread")]
async fn an_organization_finishes_over_several_invocations() {
    let moto = Moto::start();
    moto.python(
        "boto3.client('s3', endpoint_url=MOTO).create_bucket(Bucket='audit-reports')",
        &[],
    );
    let org = Scenario {
        seed: 51,
        accounts: 300,
        users_min: 1,
        users_max: 4,
        events_per_account: 2,
        ..Scenario::default()
    }
    .generate();
    let faults = Faults {
        latency_ms: 20,
        report_delay_ms: 20,
        ..Faults::default()
    };
    let rates = [
        "--concurrency",
        "16",
        "--iam-rate",
        "200",
        "--iam-burst",
        "50",
        "--cloudtrail-rate",
        "50",
        "--cloudtrail-burst",
        "10",
    ];

    // The reference: one uninterrupted run.
    let reference_sim = Sim::start(org.clone(), faults.clone()).await.unwrap();
    let reference_dir = tempfile::tempdir().unwrap();
    let reference = audit_in(&reference_sim, reference_dir.path(), &rates).await;
    assert_eq!(reference.code, 0, "{}", reference.stderr);
    let expected = report_rows(reference_dir.path());
    drop(reference_sim);

    // The fake Runtime API: invocations until one answers `complete`, then one `resume_only` invocation
    // (the frequent schedule: nothing to resume, so it is idle), then 410 (the binary exits).
    let done = Arc::new(AtomicBool::new(false));
    let idle_sent = Arc::new(AtomicBool::new(false));
    let event = serde_json::json!({
        "role": "IAMAuditRole",
        "output_dir": "s3://audit-reports/lambda/",
        "concurrency": 16, "iam_rate": 200, "iam_burst": 50, "cloudtrail_rate": 50, "cloudtrail_burst": 10,
        "lambda_margin_secs": 1, "shutdown_grace_secs": 1,
    })
    .to_string();
    let resume_only = serde_json::json!({
        "role": "IAMAuditRole", "output_dir": "s3://audit-reports/lambda/", "resume_only": true,
    })
    .to_string();
    let api = Receiver::start_with({
        let (done, idle_sent) = (done.clone(), idle_sent.clone());
        Arc::new(move |n, r: &Received| {
            if r.method == "GET" && r.path.ends_with("/invocation/next") {
                if done.load(Ordering::SeqCst) && idle_sent.swap(true, Ordering::SeqCst) {
                    return (410, vec![], String::new());
                }
                let body = if done.load(Ordering::SeqCst) {
                    &resume_only
                } else {
                    &event
                };
                let deadline = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis() as u64
                    + INVOCATION_MS;
                return (
                    200,
                    vec![
                        ("lambda-runtime-aws-request-id".into(), format!("req-{n}")),
                        ("lambda-runtime-deadline-ms".into(), deadline.to_string()),
                        ("content-type".into(), "application/json".into()),
                    ],
                    body.clone(),
                );
            }
            let complete = r.body.contains("\"status\":\"complete\"");
            if r.path.ends_with("/error") || complete {
                done.store(true, Ordering::SeqCst);
            }
            (202, vec![], String::new())
        })
    })
    .await;
    let sim = Sim::start(org.clone(), faults).await.unwrap();
    // Alerts come from the function's environment; only the invocation that completes the run sends one.
    let hook = Receiver::start(&[(200, None)]).await;
    let hook_url = format!("{}/hook", hook.url_base);
    let home = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let endpoint = sim.endpoint();
    let runtime_api = api.url_base.trim_start_matches("http://").to_string();
    let mut cmd = bin_command(
        &[],
        &[
            FAKE_KEY,
            FAKE_SECRET,
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_ENDPOINT_URL_S3", &moto.endpoint),
            ("AWS_LAMBDA_RUNTIME_API", &runtime_api),
            ("IAM_AUDIT_NOTIFY", &hook_url),
            ("TMPDIR", tmp.path().to_str().unwrap()),
        ],
        home.path(),
    );
    let out = tokio::time::timeout(std::time::Duration::from_secs(240), cmd.output())
        .await
        .expect("the invocations end within 4 minutes")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "exits when the Runtime API stops: {stderr}"
    );
    assert!(
        stderr.contains("answered HTTP 410 to invocation/next"),
        "{stderr}"
    );

    let answers: Vec<serde_json::Value> = api
        .got()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| {
            assert!(
                r.path.ends_with("/response"),
                "an invocation failed: {} {}",
                r.path,
                r.body
            );
            serde_json::from_str(&r.body).unwrap()
        })
        .collect();
    assert!(answers.len() >= 3, "several invocations: {answers:?}");
    eprintln!("{} invocations: {answers:?}", answers.len());
    let (idle, answers) = answers.split_last().unwrap();
    assert_eq!(idle["status"], "idle", "nothing to resume: {idle}");
    let (last, before) = answers.split_last().unwrap();
    assert!(
        before
            .iter()
            .all(|a| a["status"] == "incomplete" && a["resume"] == "s3://audit-reports/lambda/"),
        "{answers:?}"
    );
    assert_eq!(last["status"], "complete", "{answers:?}");
    assert_eq!(last["exit_code"], 0);
    assert_eq!(last["accounts"]["accounts"], 300);
    let run = &answers[0]["run"];
    assert!(
        answers.iter().all(|a| &a["run"] == run),
        "one run resumed: {answers:?}"
    );

    // No account's users were listed twice: a finished account is never audited again.
    let mut listed: BTreeMap<String, usize> = BTreeMap::new();
    for c in sim
        .calls()
        .iter()
        .filter(|c| c.action == "iam:ListUsers" && c.outcome == "ok")
    {
        *listed.entry(c.account.clone()).or_default() += 1;
    }
    assert!(
        listed.values().all(|n| *n == 1),
        "{:?}",
        listed.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );

    // The joined reports are one uninterrupted run's.
    let got = tempfile::tempdir().unwrap();
    moto.python(
        "s3 = boto3.client('s3', endpoint_url=MOTO)\n\
             for o in s3.list_objects_v2(Bucket='audit-reports', Prefix='lambda/')['Contents']:\n\
             \x20   name = o['Key'][len('lambda/'):]\n\
             \x20   if name != 'iam-audit-lambda.json':\n\
         \x20       s3.download_file('audit-reports', o['Key'], os.path.join(os.environ['OUT'], name))",
        &[("OUT", got.path().to_str().unwrap())],
    );
    assert_eq!(report_rows(got.path()), expected);
    // One alert, of the whole run: every High or Critical finding of the joined findings file is new.
    let alerts = hook.got();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert: serde_json::Value = serde_json::from_str(&alerts[0].body).unwrap();
    let findings = std::fs::read_dir(got.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".ocsf.jsonl"))
        .unwrap();
    let high = std::fs::read_to_string(findings)
        .unwrap()
        .lines()
        .filter(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["severity_id"].as_u64().unwrap() >= 4
        })
        .count();
    assert!(high > 20);
    assert_eq!(alert["new_at_or_above"], high);
    assert_eq!(alert["coverage"]["accounts"], 300);
    // The summary page of the last invocation counts the whole run too.
    let page = std::fs::read_dir(got.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".html"))
        .unwrap();
    let page = std::fs::read_to_string(page).unwrap();
    assert!(
        page.contains(": 300 accounts in "),
        "the page counts every account"
    );
    assert!(page.contains("accounts were finished before the resume"));
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "no staging directory is left"
    );
}

// Story: whoever may invoke the function may not make it audit with defaults, or send the inventory to a
// host of their choosing: a payload that is not a JSON object, an unknown key, a region that is not a
// region of the partition, are each answered as an invocation error before anything is audited; an
// invocation without a request id ends the runtime with a logged error; and the Runtime API is reached
// directly even where HTTP_PROXY names a proxy (one that answers nothing here).
#[tokio::test(flavor = "multi_thread")]
async fn a_bad_invocation_is_refused_before_anything_is_audited() {
    let org = Scenario {
        seed: 53,
        accounts: 3,
        ..Scenario::default()
    }
    .generate();
    let sim = Sim::start(org, Faults::default()).await.unwrap();
    let payloads: Vec<(&str, &str)> = vec![
        ("not json", "the invocation's payload is not JSON"),
        (
            "[1, 2]",
            "must be a JSON object of config keys (an array given)",
        ),
        ("null", "must be a JSON object of config keys (null given)"),
        (
            r#"{"role": "IAMAuditRole", "output_dir": "s3://audit-reports/x/", "concurency": 8}"#,
            "unknown field `concurency`",
        ),
        (
            r#"{"role": "IAMAuditRole", "output_dir": "s3://audit-reports/x/", "security_hub": true, "security_hub_region": "attacker.example"}"#,
            "security_hub_region: 'attacker.example' is not a region of the aws partition",
        ),
        (
            r#"{"role": "IAMAuditRole", "output_dir": "s3://audit-reports/x/", "regions": ["us-east-1", "cn-north-1"]}"#,
            "must be a non-empty list of region names of the aws partition",
        ),
    ];
    let count = payloads.len();
    let bodies: Vec<String> = payloads.iter().map(|(p, _)| p.to_string()).collect();
    let api = Receiver::start_with(Arc::new(move |_, r: &Received| {
        if r.method != "GET" {
            return (202, vec![], String::new());
        }
        // The n-th GET (from 1) hands out payload n; then one without a request id.
        static GETS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = GETS.fetch_add(1, Ordering::SeqCst);
        let deadline = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            + 60_000)
            .to_string();
        if n < bodies.len() {
            return (
                200,
                vec![
                    ("lambda-runtime-aws-request-id".into(), format!("req-{n}")),
                    ("lambda-runtime-deadline-ms".into(), deadline),
                ],
                bodies[n].clone(),
            );
        }
        (
            200,
            vec![("lambda-runtime-deadline-ms".into(), deadline)],
            "{}".into(),
        )
    }))
    .await;
    let home = tempfile::tempdir().unwrap();
    let endpoint = sim.endpoint();
    let runtime_api = api.url_base.trim_start_matches("http://").to_string();
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        bin_command(
            &[],
            &[
                FAKE_KEY,
                FAKE_SECRET,
                ("AWS_ENDPOINT_URL", &endpoint),
                ("AWS_LAMBDA_RUNTIME_API", &runtime_api),
                ("HTTP_PROXY", "http://127.0.0.1:9"),
                ("http_proxy", "http://127.0.0.1:9"),
            ],
            home.path(),
        )
        .output(),
    )
    .await
    .unwrap()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "an invocation without a usable Lambda-Runtime-Aws-Request-Id; nothing was audited"
        ),
        "{stderr}"
    );
    let answers: Vec<Received> = api
        .got()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(answers.len(), count, "{answers:?}");
    for (i, (a, (_, said))) in answers.iter().zip(&payloads).enumerate() {
        assert_eq!(
            a.path,
            format!("/2018-06-01/runtime/invocation/req-{i}/error")
        );
        let e: serde_json::Value = serde_json::from_str(&a.body).unwrap();
        assert!(
            e["errorMessage"].as_str().unwrap().contains(said),
            "payload {i}: {}",
            e["errorMessage"]
        );
    }
    assert!(
        sim.calls().iter().all(|c| c.action != "sts:AssumeRole"),
        "nothing was audited"
    );
}
