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

/// A fake Lambda Runtime API handing out `event` until an invocation answers `complete` (at most `max`
/// invocations, each with `invocation_ms` to live), then 410. `invocation` counts the invocations handed
/// out (for a fault plan that picks one step of each). The binary runs with the simulator for AWS and
/// `s3` for S3. Returns every answer (`Ok` a response, `Err` an invocation error) and the binary's stderr.
async fn invoke_until_complete(
    sim: &Sim,
    s3: &str,
    event: serde_json::Value,
    invocation_ms: u64,
    max: usize,
    invocation: Arc<std::sync::atomic::AtomicUsize>,
) -> (Vec<Result<serde_json::Value, String>>, String) {
    let done = Arc::new(AtomicBool::new(false));
    let body = event.to_string();
    let api = Receiver::start_with({
        let (done, invocation) = (done.clone(), invocation.clone());
        Arc::new(move |_, r: &Received| {
            if r.method == "GET" {
                let n = invocation.load(Ordering::SeqCst);
                if done.load(Ordering::SeqCst) || n >= max {
                    return (410, vec![], String::new());
                }
                let n = invocation.fetch_add(1, Ordering::SeqCst) + 1;
                let deadline = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis() as u64
                    + invocation_ms;
                return (
                    200,
                    vec![
                        ("lambda-runtime-aws-request-id".into(), format!("req-{n}")),
                        ("lambda-runtime-deadline-ms".into(), deadline.to_string()),
                    ],
                    body.clone(),
                );
            }
            if r.body.contains("\"status\":\"complete\"") {
                done.store(true, Ordering::SeqCst);
            }
            (202, vec![], String::new())
        })
    })
    .await;
    let home = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let endpoint = sim.endpoint();
    let runtime_api = api.url_base.trim_start_matches("http://").to_string();
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(420),
        bin_command(
            &[],
            &[
                FAKE_KEY,
                FAKE_SECRET,
                ("AWS_ENDPOINT_URL", &endpoint),
                ("AWS_ENDPOINT_URL_S3", s3),
                ("AWS_LAMBDA_RUNTIME_API", &runtime_api),
                ("TMPDIR", tmp.path().to_str().unwrap()),
            ],
            home.path(),
        )
        .output(),
    )
    .await
    .expect("the invocations end within 7 minutes")
    .unwrap();
    let answers = api
        .got()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| {
            if r.path.ends_with("/response") {
                Ok(serde_json::from_str(&r.body).unwrap())
            } else {
                Err(r.body)
            }
        })
        .collect();
    (answers, String::from_utf8_lossy(&out.stderr).into_owned())
}

// Story: a week's run of 300 accounts over several Lambda invocations, each invocation's uploads failing at
// a different step in turn (the stamp's claim, the state object, each of the ten files, the accounts report
// last, the final state object), ends with every row of an uninterrupted run in S3, none twice; Security
// Hub then holds exactly the findings that still hold, ACTIVE, those fixed since the week before archived,
// and every finding open since that week keeps its first-seen time.
#[tokio::test(flavor = "multi_thread")]
async fn a_lambda_run_survives_an_upload_fault_at_every_step() {
    let moto = Moto::start();
    moto.python(
        "boto3.client('s3', endpoint_url=MOTO).create_bucket(Bucket='audit-reports')",
        &[],
    );
    let week = |epoch| {
        Scenario {
            seed: 57,
            accounts: 300,
            users_min: 1,
            users_max: 4,
            events_per_account: 2,
            epoch,
            ..Scenario::default()
        }
        .generate()
    };
    let faults = Faults {
        latency_ms: 5,
        report_delay_ms: 0,
        ..Faults::default()
    };
    let event = serde_json::json!({
        "role": "IAMAuditRole",
        "output_dir": "s3://audit-reports/weekly/",
        "security_hub": true, "security_hub_region": "eu-west-1", "regions": ["us-east-1"],
        "concurrency": 16, "iam_rate": 200, "iam_burst": 50, "cloudtrail_rate": 50, "cloudtrail_burst": 10,
        "lambda_margin_secs": 1, "shutdown_grace_secs": 1,
    });

    // Week 1: a run over several invocations, without faults.
    let sim1 = Sim::start(week(0), faults.clone()).await.unwrap();
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // Each invocation's own cost (the resume read, the uploads) is paid from its few seconds: on a loaded
    // 2-core machine 3 s left two accounts unreached invocation after invocation, so 5 s each.
    let (answers, stderr) =
        invoke_until_complete(&sim1, &moto.endpoint, event.clone(), 5000, 20, counter).await;
    assert!(
        answers
            .last()
            .is_some_and(|a| a.as_ref().is_ok_and(|a| a["status"] == "complete")),
        "{answers:?}\n{stderr}"
    );
    let run1 = answers.last().unwrap().as_ref().unwrap()["run"]
        .as_str()
        .unwrap()
        .to_string();
    let before: BTreeMap<String, serde_json::Value> = week(0)
        .accounts
        .iter()
        .flat_map(|a| sim1.security_hub(&a.id))
        .collect();
    assert!(before.len() > 300, "week 1 imported its findings");

    // Week 2 (the organization changed), the uninterrupted reference: the
    // same generated organization (key dates come from when it is generated).
    let week2 = week(1);
    let reference_sim = Sim::start(week2.clone(), faults.clone()).await.unwrap();
    let reference_dir = tempfile::tempdir().unwrap();
    let reference = audit_in(
        &reference_sim,
        reference_dir.path(),
        &[
            "--regions",
            "us-east-1",
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
        ],
    )
    .await;
    assert_eq!(reference.code, 0, "{}", reference.stderr);
    // The reference compared with nothing and imported nothing: those cells aside.
    let comparable = |mut tables: Vec<Vec<BTreeMap<String, String>>>| {
        for row in &mut tables[3] {
            for cell in ["new_findings", "resolved_findings", "security_hub"] {
                row.remove(cell);
            }
        }
        tables
    };
    let expected = comparable(report_rows(reference_dir.path()));

    // Week 2 through Lambda: invocation n fails its n-th write to S3.
    let sim2 = Sim::start(week2.clone(), faults).await.unwrap();
    sim2.carry_security_hub(&sim1);
    let invocation = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writes = Arc::new(std::sync::Mutex::new((0usize, 0usize)));
    let proxy = FaultProxy::start(&moto.endpoint, {
        let (invocation, writes) = (invocation.clone(), writes.clone());
        Arc::new(move |_, r: &Received| {
            if !matches!(r.method.as_str(), "PUT" | "POST") {
                return Fault::Forward;
            }
            let now = invocation.load(Ordering::SeqCst);
            let mut w = writes.lock().unwrap();
            if w.0 != now {
                *w = (now, 0);
            }
            w.1 += 1;
            if w.1 == now {
                Fault::Answer(403, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>".into())
            } else {
                Fault::Forward
            }
        })
    })
    .await;
    let (answers, stderr) =
        invoke_until_complete(&sim2, &proxy.url_base, event, 6000, 40, invocation.clone()).await;
    let failed = answers.iter().filter(|a| a.is_err()).count();
    assert!(failed >= 8, "a fault at most steps: {answers:?}");
    let Some(Ok(last)) = answers.last() else {
        panic!("{answers:?}\n{stderr}");
    };
    assert_eq!(last["status"], "complete", "{answers:?}\n{stderr}");
    assert_eq!(last["exit_code"], 0, "{last}");
    let run = last["run"].as_str().unwrap().to_string();

    // The run's files in S3: an uninterrupted run's rows, none twice.
    let got = tempfile::tempdir().unwrap();
    moto.python(
        &format!(
            "s3 = boto3.client('s3', endpoint_url=MOTO)\n\
             for o in s3.list_objects_v2(Bucket='audit-reports', Prefix='weekly/')['Contents']:\n\
             \x20   name = o['Key'][len('weekly/'):]\n\
             \x20   if '{run}' in name and not name.startswith('.'):\n\
         \x20       s3.download_file('audit-reports', o['Key'], os.path.join(os.environ['OUT'], name))"
        ),
        &[("OUT", got.path().to_str().unwrap())],
    );
    assert_eq!(comparable(report_rows(got.path())), expected);
    // Files of two runs under the prefix, week 1's and this one: every failed invocation left the next
    // one its run to restart or resume, never a run's worth of files beside it.
    let strays = moto.python(
        &format!(
            "s3 = boto3.client('s3', endpoint_url=MOTO)\n\
             keys = [o['Key'][len('weekly/'):] for o in s3.list_objects_v2(Bucket='audit-reports', Prefix='weekly/')['Contents']]\n\
             print(sorted(k for k in keys if not k.startswith('.') and k != 'iam-audit-lambda.json' and '{run1}' not in k and '{run}' not in k))"
        ),
        &[],
    );
    assert_eq!(strays.trim(), "[]", "{answers:?}");

    // Security Hub holds exactly what holds.
    let findings = std::fs::read_dir(got.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".ocsf.jsonl"))
        .unwrap();
    let mut open: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for l in std::fs::read_to_string(findings).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        if v["activity_id"] != 3 {
            open.entry(v["cloud"]["account"]["uid"].as_str().unwrap().to_string())
                .or_default()
                .insert(v["finding_info"]["uid"].as_str().unwrap().to_string());
        }
    }
    let mut kept_first_seen = 0;
    for a in week2.accounts.iter().filter(|a| a.status == "ACTIVE") {
        let hub = sim2.security_hub(&a.id);
        let holds = open.get(&a.id).cloned().unwrap_or_default();
        let active: std::collections::BTreeSet<String> = hub
            .iter()
            .filter(|(_, f)| f["RecordState"] == "ACTIVE")
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(active, holds, "{}", a.id);
        for (uid, f) in &hub {
            if let Some(old) = before.get(uid) {
                if f["RecordState"] == "ACTIVE" {
                    assert_eq!(f["FirstObservedAt"], old["FirstObservedAt"], "{uid}");
                    kept_first_seen += 1;
                }
            }
        }
    }
    assert!(kept_first_seen > 300, "{kept_first_seen}");
}

// Story: a function whose timeout leaves its run too little time to finish any account does not loop
// silently: the first such invocation answers `incomplete` with a warning, and the next one that finishes
// none either fails with what to change; the run stays incomplete to be resumed.
#[tokio::test(flavor = "multi_thread")]
async fn invocations_that_finish_no_account_say_so_and_then_fail() {
    let moto = Moto::start();
    moto.python(
        "boto3.client('s3', endpoint_url=MOTO).create_bucket(Bucket='audit-reports')",
        &[],
    );
    // Every account ACTIVE: a suspended one is finished (reported, not audited) without a call.
    let org = Scenario {
        seed: 57,
        accounts: 20,
        suspended_every: 0,
        ..Scenario::default()
    }
    .generate();
    // A credential report takes 20 s to generate: no account finishes in the second each invocation
    // runs (the listing itself is quick).
    let faults = Faults {
        report_delay_ms: 20_000,
        ..Faults::default()
    };
    let sim = Sim::start(org, faults).await.unwrap();
    let event = serde_json::json!({
        "role": "IAMAuditRole",
        "output_dir": "s3://audit-reports/stall/",
        "lambda_margin_secs": 1, "shutdown_grace_secs": 1,
    });
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (answers, stderr) =
        invoke_until_complete(&sim, &moto.endpoint, event, 3000, 2, counter).await;
    assert_eq!(answers.len(), 2, "{answers:?}\n{stderr}");
    let first = answers[0].as_ref().expect("the first invocation answers");
    assert_eq!(first["status"], "incomplete", "{first}");
    assert!(
        first["warning"]
            .as_str()
            .is_some_and(|w| w.contains("finished no account of run")
                && w.contains("raise the function's timeout")),
        "{first}"
    );
    let second = answers[1]
        .as_ref()
        .expect_err("the second invocation fails");
    assert!(
        second
            .contains("nor did the invocation before it: at this timeout the run cannot progress")
            && second.contains("The run stays incomplete under s3://audit-reports/stall/"),
        "{second}"
    );
    assert!(
        stderr.contains("warning: this invocation finished no account"),
        "{stderr}"
    );
}
