//! Reports to S3 as a scheduled task with no disk meets them: `--output-dir s3://…` against moto's S3
//! leaves the nine files there, encrypted (SSE-S3, or SSE-KMS with `--s3-kms-key`), and nothing on the
//! local disk; the next run reads the first back for its comparison; a run killed mid-way is finished
//! with `--resume s3://…` and has exactly the rows of an uninterrupted run; a bucket that does not exist
//! stops the run before any account is read, and a bucket that refuses the upload keeps and names the
//! local copy.

use std::collections::BTreeMap;
use std::path::Path;

use iam_audit::sim::{Faults, Scenario, Sim, SimOrg};

use crate::support::*;

fn org() -> SimOrg {
    Scenario {
        seed: 41,
        accounts: 6,
        users_min: 2,
        users_max: 6,
        events_per_account: 2,
        ..Scenario::default()
    }
    .generate()
}

fn faults(o: &SimOrg) -> Faults {
    Faults {
        deny_assume_role: vec![o.accounts[0].id.clone()],
        report_delay_ms: 20,
        ..Faults::default()
    }
}

/// Run boto3 against moto with `script` (MOTO is the endpoint); its stdout.
fn boto(moto: &Moto, script: &str) -> String {
    moto.python(
        &format!("s3 = boto3.client('s3', endpoint_url=MOTO)\n{script}"),
        &[],
    )
}

/// The objects under a prefix: name → (SSE, KMS key id).
fn objects(moto: &Moto, bucket: &str, prefix: &str) -> BTreeMap<String, (String, String)> {
    let listed = boto(
        moto,
        &format!(
            "out = {{}}\n\
             for o in s3.list_objects_v2(Bucket='{bucket}', Prefix='{prefix}').get('Contents', []):\n\
             \x20   h = s3.head_object(Bucket='{bucket}', Key=o['Key'])\n\
             \x20   out[o['Key'][len('{prefix}'):]] = [h.get('ServerSideEncryption', ''), h.get('SSEKMSKeyId', '')]\n\
             print(json.dumps(out))"
        ),
    );
    let v: BTreeMap<String, Vec<String>> = serde_json::from_str(&listed).unwrap();
    v.into_iter()
        .map(|(k, v)| (k, (v[0].clone(), v[1].clone())))
        // The reports: not the run's state (the stamp's claim, the findings' history: dotfiles).
        .filter(|(k, _)| !k.starts_with('.'))
        .collect()
}

/// The run's state objects under a prefix (dotfiles: the stamps' claims, the findings' histories):
/// name → (SSE, KMS key id).
fn state_objects(moto: &Moto, bucket: &str, prefix: &str) -> BTreeMap<String, String> {
    let listed = boto(
        moto,
        &format!(
            "out = {{}}\n\
             for o in s3.list_objects_v2(Bucket='{bucket}', Prefix='{prefix}').get('Contents', []):\n\
             \x20   h = s3.head_object(Bucket='{bucket}', Key=o['Key'])\n\
             \x20   out[o['Key'][len('{prefix}'):]] = h.get('ServerSideEncryption', '')\n\
             print(json.dumps(out))"
        ),
    );
    let v: BTreeMap<String, String> = serde_json::from_str(&listed).unwrap();
    v.into_iter().filter(|(k, _)| k.starts_with('.')).collect()
}

/// Download every object under a prefix into `dir`.
fn download(moto: &Moto, bucket: &str, prefix: &str, dir: &Path) {
    boto(
        moto,
        &format!(
            "for o in s3.list_objects_v2(Bucket='{bucket}', Prefix='{prefix}').get('Contents', []):\n\
             \x20   s3.download_file('{bucket}', o['Key'], os.path.join('{}', o['Key'][len('{prefix}'):]))",
            dir.display()
        ),
    );
}

async fn run_to(sim: &Sim, moto_s3: &str, tmp: &Path, args: &[&str]) -> RunOutput {
    let home = tempfile::tempdir().unwrap();
    let mut all = vec![
        "--role",
        "IAMAuditRole",
        "--no-progress",
        "--iam-rate",
        "200",
    ];
    all.extend_from_slice(args);
    let endpoint = sim.endpoint();
    run_bin(
        &all,
        &[
            FAKE_KEY,
            FAKE_SECRET,
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_ENDPOINT_URL_S3", moto_s3),
            ("TMPDIR", tmp.to_str().unwrap()),
        ],
        home.path(),
    )
    .await
}

fn stamp_of(names: &[&String]) -> String {
    names
        .iter()
        .find_map(|n| {
            n.strip_prefix("accounts_")
                .and_then(|r| r.strip_suffix(".csv"))
        })
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_go_to_s3_encrypted_and_the_next_run_compares_with_them() {
    let moto = Moto::start();
    let key_arn = boto(
        &moto,
        "kms = boto3.client('kms', endpoint_url=MOTO, region_name='us-east-1')\n\
         s3.create_bucket(Bucket='audit-reports')\n\
         print(kms.create_key()['KeyMetadata']['Arn'])",
    );
    let o = org();
    let sim = Sim::start(o.clone(), faults(&o)).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let url = "s3://audit-reports/org-a/weekly/";

    let first = run_to(&sim, &moto.endpoint, tmp.path(), &["--output-dir", url]).await;
    assert_eq!(first.code, 3, "{}", first.stderr);
    let week1 = objects(&moto, "audit-reports", "org-a/weekly/");
    let names: Vec<&String> = week1.keys().collect();
    let stamp1 = stamp_of(&names);
    let expected: Vec<String> =
        iam_audit::report::RunFile::file_names(&stamp1, iam_audit::config::Format::Csv);
    assert_eq!(
        week1
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        expected.iter().cloned().collect()
    );
    assert!(week1.values().all(|(sse, _)| sse == "AES256"), "{week1:?}");
    assert!(
        first.stderr.contains(&format!(
            "accounts report: s3://audit-reports/org-a/weekly/accounts_{stamp1}.csv"
        )),
        "{}",
        first.stderr
    );
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "no local copy is left"
    );
    // What was uploaded is the whole run.
    let got = tempfile::tempdir().unwrap();
    download(&moto, "audit-reports", "org-a/weekly/", got.path());
    let accounts = read_csv(
        &got.path().join(format!("accounts_{stamp1}.csv")),
        &iam_audit::report::ACCOUNT_COLUMNS,
    );
    assert_eq!(accounts.len(), 6);
    assert_eq!(
        accounts
            .iter()
            .find(|r| r["account_id"] == o.accounts[0].id)
            .unwrap()["audit_status"],
        "skipped"
    );

    // A week later (the same org), with SSE-KMS: compared with the run read back from S3.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let second = run_to(
        &sim,
        &moto.endpoint,
        tmp.path(),
        &["--output-dir", url, "--s3-kms-key", &key_arn],
    )
    .await;
    assert_eq!(second.code, 3, "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains(&format!("since {stamp1}: 0 new findings, 0 resolved")),
        "{}",
        second.stderr
    );
    let both = objects(&moto, "audit-reports", "org-a/weekly/");
    assert_eq!(both.len(), 18);
    // Beside them, each run's claim of its stamp and its findings' history, encrypted like the reports.
    let state = state_objects(&moto, "audit-reports", "org-a/weekly/");
    let count = |p: &str| state.keys().filter(|k| k.starts_with(p)).count();
    assert_eq!(
        (
            count(".iam-audit-history_"),
            count(".iam-audit-run-"),
            state.len()
        ),
        (2, 2, 4),
        "{state:?}"
    );
    assert!(
        state
            .values()
            .all(|sse| sse == "AES256" || sse == "aws:kms"),
        "{state:?}"
    );
    let new: Vec<_> = both
        .iter()
        .filter(|(k, _)| !week1.contains_key(*k))
        .collect();
    assert_eq!(new.len(), 9);
    assert!(
        new.iter().all(|(_, (sse, key))| sse == "aws:kms"
            && key.ends_with(key_arn.rsplit('/').next().unwrap())),
        "{new:?}"
    );
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

/// A bucket that does not exist stops the run before any account is read; a bucket that refuses the
/// upload (a fake S3 of ours: it lists and takes the stamp's claim, then answers PutObject with
/// AccessDenied) ends the run with exit 1 and keeps the complete local copy, named in the error.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_bucket_is_a_clear_error_and_loses_nothing() {
    let moto = Moto::start();
    let o = org();
    let sim = Sim::start(o.clone(), faults(&o)).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let missing = run_to(
        &sim,
        &moto.endpoint,
        tmp.path(),
        &["--output-dir", "s3://no-such-bucket/x/"],
    )
    .await;
    assert_eq!(missing.code, 1, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("error: cannot use s3://no-such-bucket/x/ for the reports: s3:ListObjectsV2 on s3://no-such-bucket/x/ failed (NoSuchBucket: The specified bucket does not exist). Check that the bucket exists"),
        "{}",
        missing.stderr
    );
    assert!(
        !sim.calls().iter().any(|c| c.action == "sts:AssumeRole"),
        "no account was read"
    );
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);

    // A TMPDIR the run cannot write its staging directory in (a container's read-only or root-owned /tmp)
    // stops it before any account, and says what to mount.
    boto(&moto, "s3.create_bucket(Bucket='audit-reports')");
    let nowhere = tmp.path().join("not-there");
    let stuck = run_to(
        &sim,
        &moto.endpoint,
        &nowhere,
        &["--output-dir", "s3://audit-reports/x/"],
    )
    .await;
    assert_eq!(stuck.code, 1, "{}", stuck.stderr);
    assert!(
        stuck.stderr.contains(&format!(
            "error: cannot create a private staging directory in {} (TMPDIR): No such file or directory (os error 2). An S3 run writes its reports there first: make TMPDIR (or /tmp) a directory this user may write.",
            nowhere.display()
        )) && stuck.stderr.contains("on ECS Fargate the image must declare /tmp a VOLUME"),
        "{}",
        stuck.stderr
    );
    assert!(!sim.calls().iter().any(|c| c.action == "sts:AssumeRole"));

    let refusing = Receiver::start_with(std::sync::Arc::new(|_, r: &Received| {
        match r.method.as_str() {
            "PUT" if r.path.contains(".claim") => (200, vec![], String::new()),
            "GET" => (
                200,
                vec![("content-type".into(), "application/xml".into())],
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>locked</Name><Prefix>x/</Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>".into(),
            ),
            _ => (
                403,
                vec![("content-type".into(), "application/xml".into())],
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>1</RequestId></Error>".into(),
            ),
        }
    }))
    .await;
    let refused = run_to(
        &sim,
        &refusing.url_base,
        tmp.path(),
        &["--output-dir", "s3://locked/x/"],
    )
    .await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    let line = refused
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap();
    assert!(
        line.starts_with(
            "error: the reports could not be uploaded: s3:PutObject on s3://locked/x/"
        ) && line.contains("failed (AccessDenied: Access Denied). They are kept, complete, in "),
        "{line}"
    );
    let kept = line
        .split("They are kept, complete, in ")
        .nth(1)
        .unwrap()
        .split(": copy them")
        .next()
        .unwrap();
    assert!(kept.starts_with(tmp.path().to_str().unwrap()), "{kept}");
    let rows = report_rows(Path::new(kept));
    assert_eq!(
        rows[3].len(),
        6,
        "every account is in the kept accounts report"
    );
}

/// A scheduled task killed mid-run (SIGTERM) leaves its files in S3; `--resume s3://…` continues them,
/// and the result has exactly the rows of an uninterrupted run.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_mid_way_is_resumed_from_s3() {
    let moto = Moto::start();
    boto(&moto, "s3.create_bucket(Bucket='audit-reports')");
    let o = Scenario {
        seed: 43,
        accounts: 24,
        users_min: 3,
        users_max: 8,
        events_per_account: 2,
        ..Scenario::default()
    }
    .generate();
    let f = Faults {
        latency_ms: 30,
        report_delay_ms: 20,
        ..Faults::default()
    };
    let flags = ["--concurrency", "4", "--shutdown-grace-secs", "0"];
    let reference_dir = tempfile::tempdir().unwrap();
    let reference_sim = Sim::start(o.clone(), f.clone()).await.unwrap();
    let mut args = vec!["--output-dir", reference_dir.path().to_str().unwrap()];
    args.extend(flags);
    let reference = run_to(&reference_sim, &moto.endpoint, reference_dir.path(), &args).await;
    assert_eq!(reference.code, 0, "{}", reference.stderr);
    let expected = report_rows(reference_dir.path());

    let sim = Sim::start(o.clone(), f).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let url = "s3://audit-reports/resumed/";
    let mut args = vec![
        "--role",
        "IAMAuditRole",
        "--no-progress",
        "--iam-rate",
        "200",
        "--output-dir",
        url,
    ];
    args.extend(flags);
    let endpoint = sim.endpoint();
    let child = bin_command(
        &args,
        &[
            FAKE_KEY,
            FAKE_SECRET,
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_ENDPOINT_URL_S3", &moto.endpoint),
            ("TMPDIR", tmp.path().to_str().unwrap()),
        ],
        home.path(),
    )
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let pid = child.id().unwrap();
    // Killed once a few accounts are done.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while sim
        .calls()
        .iter()
        .filter(|c| c.action == "sts:AssumeRole")
        .count()
        < 6
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the audit never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let first = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first.status.code(),
        Some(143),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let partial = objects(&moto, "audit-reports", "resumed/");
    assert_eq!(
        partial.len(),
        9,
        "the interrupted run's files are in S3: {partial:?}"
    );

    let resumed = run_to(&sim, &moto.endpoint, tmp.path(), &["--resume", url]).await;
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert!(
        resumed.stderr.contains("done before the resume"),
        "{}",
        resumed.stderr
    );
    assert_eq!(
        objects(&moto, "audit-reports", "resumed/").len(),
        9,
        "the same nine objects, completed"
    );
    let got = tempfile::tempdir().unwrap();
    download(&moto, "audit-reports", "resumed/", got.path());
    assert_eq!(report_rows(got.path()), expected);
}

/// A large report goes up in parts that S3 assembles only at the end: through the library with 5 MiB
/// parts, a 12 MiB file arrives whole, byte for byte, encrypted.
#[tokio::test(flavor = "multi_thread")]
async fn a_large_file_is_uploaded_in_parts_and_arrives_whole() {
    let moto = Moto::start();
    boto(&moto, "s3.create_bucket(Bucket='audit-reports')");
    let config = iam_audit::Config {
        role: Some("IAMAuditRole".into()),
        output_dir: Some("s3://audit-reports/big/".into()),
        s3_expected_owner: Some("123456789012".into()),
        ..iam_audit::Config::default()
    };
    let mut settings = iam_audit::Settings::resolve(config, chrono::Utc::now()).unwrap();
    settings.endpoint_override = Some(iam_audit::config::EndpointOverride {
        url: moto.endpoint.clone(),
        access_key_id: "testing".into(),
        secret_access_key: "testing".into(),
    });
    let aws = iam_audit::aws::Aws::connect(&settings).await.unwrap();
    let location = settings.remote.clone().unwrap();
    let remote = iam_audit::store::Remote::open(&aws, &settings, &location)
        .await
        .unwrap()
        .with_parts(6 * 1024 * 1024, 5 * 1024 * 1024);
    let path = remote.staging().join("findings_20261201_000000.ocsf.jsonl");
    let bytes: Vec<u8> = (0..12 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &bytes).unwrap();
    let urls = remote.upload(std::slice::from_ref(&path)).await.unwrap();
    assert_eq!(
        urls,
        ["s3://audit-reports/big/findings_20261201_000000.ocsf.jsonl"]
    );
    remote.remove_staging();
    assert!(!remote.staging().exists());
    let listed = objects(&moto, "audit-reports", "big/");
    assert_eq!(listed["findings_20261201_000000.ocsf.jsonl"].0, "AES256");
    let got = tempfile::tempdir().unwrap();
    download(&moto, "audit-reports", "big/", got.path());
    let back = std::fs::read(got.path().join("findings_20261201_000000.ocsf.jsonl")).unwrap();
    assert!(
        back == bytes,
        "the object is the file ({} bytes back)",
        back.len()
    );
    let parts = boto(
        &moto,
        "print(s3.head_object(Bucket='audit-reports', Key='big/findings_20261201_000000.ocsf.jsonl', PartNumber=1)['PartsCount'])",
    );
    assert_eq!(parts, "3");

    // A part refused, and an upload cancelled mid-way (its future dropped, as a stopped run drops it):
    // each is aborted (s3:AbortMultipartUpload), so no parts are left billed and nothing is under the name.
    for (name, fault) in [
        ("users_20261201_000000.csv", 403),
        ("keys_20261201_000000.csv", 0),
    ] {
        let proxy = FaultProxy::start(
            &moto.endpoint,
            std::sync::Arc::new(move |_, r: &Received| {
                if r.method == "PUT" && r.path.contains("partNumber=2") {
                    match fault {
                        0 => Fault::Hang,
                        status => Fault::Answer(status, ACCESS_DENIED.into()),
                    }
                } else {
                    Fault::Forward
                }
            }),
        )
        .await;
        let mut settings = settings.clone();
        settings.endpoint_override.as_mut().unwrap().url = proxy.url_base.clone();
        let aws = iam_audit::aws::Aws::connect(&settings).await.unwrap();
        let remote = iam_audit::store::Remote::open(&aws, &settings, &location)
            .await
            .unwrap()
            .with_parts(6 * 1024 * 1024, 5 * 1024 * 1024);
        let path = remote.staging().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let upload = remote.upload(std::slice::from_ref(&path));
        match tokio::time::timeout(std::time::Duration::from_secs(6), upload).await {
            Ok(Err(e)) => assert_eq!((e.action, e.code.as_str()), ("UploadPart", "AccessDenied")),
            Ok(Ok(urls)) => panic!("{name}: uploaded {urls:?} through a refused part"),
            Err(_) => assert_eq!(fault, 0, "{name}: only the hung part holds the upload"),
        }
        let mut open = String::new();
        for _ in 0..100 {
            open = boto(
                &moto,
                "print(len(s3.list_multipart_uploads(Bucket='audit-reports').get('Uploads', [])))",
            );
            if open == "0" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(open, "0", "{name}: the multipart upload was aborted");
        assert!(
            proxy
                .got()
                .iter()
                .any(|r| r.method == "DELETE" && r.path.contains("uploadId=")),
            "{name}: AbortMultipartUpload"
        );
        assert!(!objects(&moto, "audit-reports", "big/").contains_key(name));
    }
}

/// One of the nine reports of an upload (not the stamp's claim, not a listing).
fn is_report_upload(r: &Received) -> bool {
    matches!(r.method.as_str(), "PUT" | "POST") && !r.path.contains(".claim")
}

const ACCESS_DENIED: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>1</RequestId></Error>";

// Story: a resumed run whose upload fails at any one of its nine files, or whose process is killed between
// two uploads, loses nothing: the accounts report (what the next resume trusts) goes up last, so the next
// `--resume s3://…` re-audits exactly the accounts whose rows may be missing, and the result is an
// uninterrupted run's rows, none twice.
#[tokio::test(flavor = "multi_thread")]
async fn an_upload_that_fails_or_dies_part_way_loses_nothing() {
    let moto = Moto::start();
    boto(&moto, "s3.create_bucket(Bucket='audit-reports')");
    let o = Scenario {
        seed: 47,
        accounts: 8,
        users_min: 2,
        users_max: 5,
        events_per_account: 2,
        ..Scenario::default()
    }
    .generate();
    let clean = Faults {
        report_delay_ms: 20,
        ..Faults::default()
    };
    // The first run cannot enter three accounts: they are left for the resumes.
    let denying = Faults {
        deny_assume_role: o.accounts[..3].iter().map(|a| a.id.clone()).collect(),
        ..clean.clone()
    };
    let sim = Sim::start(o.clone(), clean).await.unwrap();
    let first_sim = Sim::start(o.clone(), denying).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let reference_dir = tempfile::tempdir().unwrap();
    let reference = run_to(
        &sim,
        &moto.endpoint,
        tmp.path(),
        &["--output-dir", reference_dir.path().to_str().unwrap()],
    )
    .await;
    assert_eq!(reference.code, 0, "{}", reference.stderr);
    let expected = report_rows(reference_dir.path());

    // (case, the n-th upload it fails or holds): a refusal at each of the nine reports and the findings'
    // history, a kill at two.
    let mut cases: Vec<(&str, usize)> = (1..=10).map(|n| ("refused", n)).collect();
    cases.extend([("killed", 4), ("killed", 10)]);
    for (i, (case, n)) in cases.into_iter().enumerate() {
        let prefix = format!("case-{i}/");
        let url = format!("s3://audit-reports/{prefix}");
        let first = run_to(
            &first_sim,
            &moto.endpoint,
            tmp.path(),
            &["--output-dir", &url],
        )
        .await;
        assert_eq!(first.code, 3, "{}", first.stderr);

        let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let plan: FaultPlan = {
            let seen = seen.clone();
            std::sync::Arc::new(move |_, r: &Received| {
                if !is_report_upload(r) {
                    return Fault::Forward;
                }
                let k = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                match (case, k == n) {
                    ("refused", true) => Fault::Answer(403, ACCESS_DENIED.into()),
                    ("killed", true) => Fault::Hang,
                    _ => Fault::Forward,
                }
            })
        };
        let proxy = FaultProxy::start(&moto.endpoint, plan).await;
        if case == "refused" {
            let broken = run_to(&sim, &proxy.url_base, tmp.path(), &["--resume", &url]).await;
            assert_eq!(broken.code, 1, "case {i}: {}", broken.stderr);
            assert!(
                broken.stderr.contains("the reports could not be uploaded"),
                "{}",
                broken.stderr
            );
            // The accounts report goes up only after the nine other files have arrived.
            let sent: Vec<String> = proxy
                .got()
                .iter()
                .filter(|r| is_report_upload(r))
                .map(|r| r.path.clone())
                .collect();
            assert_eq!(
                sent.iter().any(|p| p.contains("/accounts_")),
                n == 10,
                "case {i}: {sent:?}"
            );
        } else {
            let home = tempfile::tempdir().unwrap();
            let endpoint = sim.endpoint();
            let mut child = bin_command(
                &[
                    "--role",
                    "IAMAuditRole",
                    "--no-progress",
                    "--iam-rate",
                    "200",
                    "--resume",
                    &url,
                ],
                &[
                    FAKE_KEY,
                    FAKE_SECRET,
                    ("AWS_ENDPOINT_URL", &endpoint),
                    ("AWS_ENDPOINT_URL_S3", &proxy.url_base),
                    ("TMPDIR", tmp.path().to_str().unwrap()),
                ],
                home.path(),
            )
            .spawn()
            .unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            while seen.load(std::sync::atomic::Ordering::SeqCst) < n {
                assert!(
                    std::time::Instant::now() < deadline,
                    "case {i}: upload {n} never came"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            // Killed outright while that upload waits: nothing runs after it.
            child.start_kill().unwrap();
            let _ = child.wait().await;
        }
        drop(proxy);
        let resumed = run_to(&sim, &moto.endpoint, tmp.path(), &["--resume", &url]).await;
        assert_eq!(
            resumed.code, 0,
            "case {i} ({case} at {n}): {}",
            resumed.stderr
        );
        let got = tempfile::tempdir().unwrap();
        download(&moto, "audit-reports", &prefix, got.path());
        // The stamp's claim is not a report.
        for e in std::fs::read_dir(got.path()).unwrap() {
            let p = e.unwrap().path();
            if p.to_string_lossy().ends_with(".claim") {
                std::fs::remove_file(p).unwrap();
            }
        }
        assert_eq!(
            report_rows(got.path()),
            expected,
            "case {i}: {case} at upload {n}"
        );
    }
}

/// The simulator's own S3 (what the end-to-end bench uploads to) takes a run as moto does: the nine
/// reports, the history and the claim under the prefix, the next run compared with them, a conditional
/// claim refused where the stamp is taken, and the alert at its webhook.
#[tokio::test(flavor = "multi_thread")]
async fn the_simulators_s3_takes_a_run_as_moto_does() {
    let o = org();
    let sim = Sim::start(o.clone(), faults(&o)).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let hook = format!("{}/webhook", sim.endpoint());
    let args = [
        "--output-dir",
        "s3://reports/weekly/",
        "--notify",
        &hook,
        "--notify-format",
        "json",
    ];
    let first = run_to(&sim, &sim.endpoint(), tmp.path(), &args).await;
    assert_eq!(first.code, 3, "{}", first.stderr);
    let keys = sim.s3().keys("reports", "weekly/");
    let stamp1 = keys
        .iter()
        .find_map(|k| k.strip_prefix("weekly/accounts_")?.strip_suffix(".csv"))
        .unwrap()
        .to_string();
    let mut expected: Vec<String> =
        iam_audit::report::RunFile::file_names(&stamp1, iam_audit::config::Format::Csv)
            .into_iter()
            .chain([
                format!(".iam-audit-history_{stamp1}.jsonl"),
                format!(".iam-audit-run-{stamp1}.claim"),
            ])
            .map(|n| format!("weekly/{n}"))
            .collect();
    expected.sort();
    assert_eq!(keys, expected);
    let accounts = String::from_utf8(
        sim.s3()
            .object("reports", &format!("weekly/accounts_{stamp1}.csv"))
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert_eq!(accounts.lines().count(), 7, "a header and six accounts");
    assert_eq!(
        sim.s3().webhooks.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let second = run_to(&sim, &sim.endpoint(), tmp.path(), &args).await;
    assert_eq!(second.code, 3, "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains(&format!("since {stamp1}: 0 new findings, 0 resolved")),
        "{}",
        second.stderr
    );
    assert_eq!(sim.s3().keys("reports", "weekly/").len(), 22);
    assert_eq!(sim.s3().open_uploads(), 0);
    assert_eq!(
        sim.s3().webhooks.load(std::sync::atomic::Ordering::SeqCst),
        2
    );
    // Every S3 call named the bucket's owner (the simulator refuses any other) and succeeded.
    let s3_calls: Vec<_> = sim
        .calls()
        .into_iter()
        .filter(|c| c.action.starts_with("s3:"))
        .collect();
    assert!(s3_calls.iter().all(|c| c.outcome == "ok"), "{s3_calls:?}");
}
