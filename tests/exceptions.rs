//! Exceptions as an auditor meets them (docs/exceptions.md): a file is checked alone, line and field named;
//! a bad file stops a run before anything is written; an accepted finding keeps its verdict, is Suppressed
//! in the findings file (still valid OCSF), leaves the alert, and is archived in Security Hub where an
//! earlier import left it ACTIVE; the day its rule expires it comes back as `reopened`, in the changes
//! report and the alert; a rule that matched nothing is named stale.

use std::collections::BTreeMap;

use iam_audit::sim::{Faults, Scenario, Sim, SimOrg};

use crate::support::*;

fn org() -> SimOrg {
    Scenario {
        seed: 31,
        accounts: 5,
        users_min: 3,
        users_max: 8,
        events_per_account: 2,
        ..Scenario::default()
    }
    .generate()
}

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

/// The rule file: one rule pinned to one key's finding, expiring `expires`, and one that matches nobody.
fn rules(account: &str, key: &str, flag: &str, expires: chrono::NaiveDate) -> String {
    format!(
        "version: 1
rules:
  - id: legacy-ci
    owner: platform@example.com
    reason: CI key until the OIDC migration
    expires: {expires}
    ticket: PLAT-1
    match: {{ accounts: [\"{account}\"], access_keys: [{key}], flags: [{flag}] }}
  - id: gone-vendor
    owner: platform@example.com
    reason: the vendor's user, until its contract ends
    expires: {}
    match: {{ users: [\"vendor-nobody-*\"] }}
",
        today() + chrono::Duration::days(200)
    )
}

/// The first finding of a key older than 90 days: its uid, account and key id.
fn old_key_finding(out: &RunOutput) -> (String, String, String) {
    let f = out
        .findings
        .iter()
        .find(|f| {
            f["finding_info"]["uid"]
                .as_str()
                .unwrap()
                .contains("/key_older_than_90d/AKIA")
        })
        .expect("a key older than 90 days");
    let uid = f["finding_info"]["uid"].as_str().unwrap().to_string();
    let account = f["cloud"]["account"]["uid"].as_str().unwrap().to_string();
    let key = uid.rsplit('/').next().unwrap().to_string();
    (uid, account, key)
}

async fn run(sim: &Sim, dir: &std::path::Path, args: Vec<String>) -> RunOutput {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    audit_in(sim, dir, &args).await
}

fn alert(hook: &Receiver, n: usize) -> serde_json::Value {
    let got = hook.got();
    serde_json::from_str(&got[n].body).unwrap()
}

fn status_of<'a>(out: &'a RunOutput, uid: &str) -> Vec<&'a serde_json::Value> {
    out.findings
        .iter()
        .filter(|f| f["finding_info"]["uid"] == uid)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_accepted_finding_is_suppressed_archived_in_security_hub_and_reopened_when_its_rule_expires(
) {
    let org = org();
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start(&[(200, None)]).await;
    let url = format!("{}/hook", hook.url_base);
    let flags = |extra: Vec<String>| {
        let mut f: Vec<String> = [
            "--iam-rate",
            "200",
            "--iam-burst",
            "50",
            "--security-hub",
            "--notify-format",
            "json",
            "--notify-min-severity",
            "low",
            "--notify",
            url.as_str(),
        ]
        .map(String::from)
        .to_vec();
        f.extend(extra);
        f
    };

    // Week 1: no exceptions; every finding is imported ACTIVE.
    let sim1 = Sim::start(org.clone(), Faults::default()).await.unwrap();
    let first = run(&sim1, dir.path(), flags(vec![])).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let (uid, account, key) = old_key_finding(&first);
    assert_eq!(sim1.security_hub(&account)[&uid]["RecordState"], "ACTIVE");

    // Week 2: the key's finding is accepted.
    // And a rule too broad: every finding of another account.
    let count = |out: &RunOutput, a: &str| {
        out.findings
            .iter()
            .filter(|f| f["cloud"]["account"]["uid"] == a && f["activity_name"] != "Close")
            .filter(|f| {
                !f["finding_info"]["uid"]
                    .as_str()
                    .unwrap()
                    .contains("/audit_incomplete/")
            })
            .count()
    };
    let other = org
        .accounts
        .iter()
        .map(|a| a.id.clone())
        .find(|a| *a != account && count(&first, a) >= 2)
        .expect("another account with findings");
    let broad = format!(
        "  - id: wide-open\n    owner: dev@example.com\n    reason: a sandbox\n    expires: {}\n    match: {{ accounts: [\"{other}\"] }}\n",
        today() + chrono::Duration::days(100)
    );
    let file = dir.path().join("exceptions.yaml");
    let expires = today() + chrono::Duration::days(10);
    std::fs::write(
        &file,
        rules(&account, &key, "key_older_than_90d", expires) + &broad,
    )
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let sim2 = Sim::start(org.clone(), Faults::default()).await.unwrap();
    sim2.carry_security_hub(&sim1);
    let with_file = || {
        vec![
            "--exceptions".to_string(),
            file.to_str().unwrap().to_string(),
        ]
    };
    let second = run(&sim2, dir.path(), flags(with_file())).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    let events = status_of(&second, &uid);
    assert_eq!(events.len(), 1);
    let e = events[0];
    assert_eq!(
        (
            e["status_id"].clone(),
            e["status"].clone(),
            e["compliance"]["status"].clone()
        ),
        (3.into(), "Suppressed".into(), "Fail".into())
    );
    assert_eq!(
        e["status_detail"],
        format!("accepted by exception legacy-ci until {expires} (owner platform@example.com): CI key until the OIDC migration")
    );
    assert_eq!(e["unmapped"]["exception"], "legacy-ci");
    assert_eq!(e["unmapped"]["exception_expires"], expires.to_string());
    // The key report's row names the rule and its expiry; the accounts report notes the broad rule.
    let key_row = |out: &RunOutput| {
        let r = out
            .keys
            .iter()
            .find(|r| r["access_key_id"] == key)
            .expect("the key's row");
        (r["exception"].clone(), r["exception_expires"].clone())
    };
    assert_eq!(key_row(&first), (String::new(), String::new()));
    assert_eq!(
        key_row(&second),
        ("legacy-ci".to_string(), expires.to_string())
    );
    let note = |out: &RunOutput, a: &str| {
        out.accounts.iter().find(|r| r["account_id"] == a).unwrap()["note"].clone()
    };
    assert_eq!(note(&second, &account), "");
    // Only that one is accepted.
    let suppressed = second
        .findings
        .iter()
        .filter(|f| f["status_id"] == 3)
        .count();
    let n_other = count(&second, &other);
    assert_eq!(suppressed, 1 + n_other);
    assert_valid_ocsf(second.findings_path.as_ref().unwrap());
    // Security Hub: archived, not imported again as ACTIVE.
    let hub = sim2.security_hub(&account);
    assert_eq!(hub[&uid]["RecordState"], "ARCHIVED");
    assert_eq!(hub[&uid]["Compliance"]["Status"], "FAILED");
    // The summary and the alert say what the exceptions did.
    let line = format!(
        "exceptions: {} findings accepted; expiring soon: legacy-ci (expires {expires}, owner platform@example.com); stale (matched nothing this run): gone-vendor; too broad: wide-open in {other} ({n_other} of {n_other} findings)",
        1 + n_other
    );
    assert!(second.stderr.contains(&line), "{}", second.stderr);
    assert!(second
        .summary_html
        .contains("Stale: matched nothing in this run"));
    assert_eq!(
        note(&second, &other),
        format!("too broad: exception wide-open in {other} ({n_other} of {n_other} findings)")
    );
    let a2 = alert(&hook, 1);
    assert_eq!(a2["exceptions"]["accepted"], 1 + n_other, "{a2}");
    assert_eq!(
        a2["exceptions"]["stale"],
        serde_json::json!(["gone-vendor"])
    );
    assert!(a2["text"].as_str().unwrap().contains(&line), "{a2}");

    // Week 3: the rule expired yesterday. The finding is back: reopened, counted new, imported ACTIVE.
    std::fs::write(
        &file,
        rules(
            &account,
            &key,
            "key_older_than_90d",
            today() - chrono::Duration::days(1),
        ) + &broad,
    )
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let sim3 = Sim::start(org.clone(), Faults::default()).await.unwrap();
    sim3.carry_security_hub(&sim2);
    let third = run(&sim3, dir.path(), flags(with_file())).await;
    assert_eq!(third.code, 0, "{}", third.stderr);
    assert_eq!(status_of(&third, &uid)[0]["status_id"], 1);
    assert_eq!(key_row(&third), (String::new(), String::new()));
    let reopened: Vec<&BTreeMap<String, String>> = third
        .changes
        .iter()
        .filter(|r| r["finding_uid"] == uid)
        .collect();
    assert_eq!(reopened.len(), 1, "{reopened:?}");
    assert_eq!(reopened[0]["change"], "reopened");
    assert!(
        reopened[0]["detail"]
            .ends_with("(exception legacy-ci accepted it at the earlier run and no longer does)"),
        "{reopened:?}"
    );
    let a3 = alert(&hook, 2);
    assert_eq!(a3["new_findings"], 1, "{a3}");
    assert_eq!(a3["exceptions"]["reopened"], 1, "{a3}");
    assert!(a3["exceptions"]["expired"][0]
        .as_str()
        .unwrap()
        .starts_with("legacy-ci (expires "));
    assert_eq!(sim3.security_hub(&account)[&uid]["RecordState"], "ACTIVE");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_exceptions_file_stops_the_run_before_anything_is_written() {
    let sim = Sim::start(org(), Faults::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let file = dir.path().join("ex.yaml");
    std::fs::write(
        &file,
        "version: 1\nrules:\n  - id: a\n    owner: o@example.com\n    reason: r\n    expires: 2026-02-30\n    match: { flags: [two_active_keys] }\n",
    )
    .unwrap();
    let out = audit_in(&sim, &out_dir, &["--exceptions", file.to_str().unwrap()]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(
        out.stderr.trim(),
        format!(
            "error: exceptions {}:6: expires: '2026-02-30' is not a date; write YYYY-MM-DD (UTC), e.g. 2027-06-30. Nothing was audited; `iam-audit exceptions check FILE` checks a file alone (docs/exceptions.md)",
            file.display()
        )
    );
    assert!(!out_dir.exists() || std::fs::read_dir(&out_dir).unwrap().next().is_none());
    // Nothing was asked of the member accounts.
    assert!(sim.calls().iter().all(|c| c.action != "sts:AssumeRole"));
}

#[tokio::test(flavor = "multi_thread")]
async fn exceptions_check_validates_a_file_alone_and_converts_a_prowler_mutelist() {
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("ours.yaml");
    let expires = today() + chrono::Duration::days(100);
    std::fs::write(
        &ours,
        rules("111122223333", "AKIAAAAAAAAAAAAAAAA1", "v5:1.13", expires),
    )
    .unwrap();
    let check = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let home = tempfile::tempdir().unwrap();
        let out = bin_command(&args, &[], home.path()).output().await.unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let p = |path: &std::path::Path| path.to_str().unwrap().to_string();
    let (code, stdout, stderr) = check(vec!["exceptions".into(), "check".into(), p(&ours)]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            format!("legacy-ci (line 3): expires {expires} (in 100 days); owner platform@example.com; match accounts 111122223333; access_keys AKIAAAAAAAAAAAAAAAA1; flags key_older_than_90d; ticket PLAT-1"),
            format!("gone-vendor (line 9): expires {} (in 200 days); owner platform@example.com; match users vendor-nobody-*", today() + chrono::Duration::days(200)),
        ]
    );
    assert_eq!(
        stderr.trim(),
        format!("{}: 2 rules valid (0 expired)", p(&ours))
    );

    // Every bad input: exit 2, the line and the field.
    let bad = dir.path().join("bad.yaml");
    let cases = [
        ("    ticket: PLAT-1\n", "    tickt: PLAT-1\n", "7: unknown field `tickt`, expected one of id, owner, reason, expires, ticket, kind, expect, match, except (docs/exceptions.md has the format)"),
        ("    owner: platform@example.com\n    reason: CI", "    reason: CI", "3: rule 'legacy-ci': owner is required"),
        ("[key_older_than_90d]", "[key_oldest]", "8: match.flags: 'key_oldest' is neither a flag nor a CIS number here; use a flag code (docs/outputs.md, e.g. key_older_than_90d) or v3:N / v5:N / v6:N / v7:N (e.g. v5:1.13)"),
        ("id: gone-vendor", "id: legacy-ci", "9: id: 'legacy-ci' is already the id of the rule at line 3; give each rule its own id"),
    ];
    let good = rules(
        "111122223333",
        "AKIAAAAAAAAAAAAAAAA1",
        "key_older_than_90d",
        expires,
    );
    for (from, to, want) in cases {
        assert!(good.contains(from), "{from}");
        std::fs::write(&bad, good.replacen(from, to, 1)).unwrap();
        let (code, stdout, stderr) =
            check(vec!["exceptions".into(), "check".into(), p(&bad)]).await;
        assert_eq!((code, stdout.as_str()), (2, ""), "{stderr}");
        assert_eq!(
            stderr.trim(),
            format!("error: exceptions {}:{want}", p(&bad))
        );
    }
    let far = today() + chrono::Duration::days(400);
    std::fs::write(
        &bad,
        rules(
            "111122223333",
            "AKIAAAAAAAAAAAAAAAA1",
            "key_older_than_90d",
            far,
        ),
    )
    .unwrap();
    let (code, _, stderr) = check(vec!["exceptions".into(), "check".into(), p(&bad)]).await;
    assert_eq!(code, 2);
    assert_eq!(
        stderr.trim(),
        format!(
            "error: exceptions {}:6: expires: {far} is more than 365 days away (after {}); accept it for less, or raise exceptions_horizon_days",
            p(&bad),
            today() + chrono::Duration::days(365)
        )
    );

    // A Prowler mutelist: refused without an owner and an expiry, converted with them.
    let prowler = dir.path().join("mutelist.yaml");
    std::fs::write(
        &prowler,
        "Mutelist:\n  Accounts:\n    \"111122223333\":\n      Checks:\n        iam_rotate_access_key_90_days:\n          Regions: [\"*\"]\n          Resources: [\"svc-ci\"]\n          Description: CI user until the OIDC migration\n        iam_avoid_root_usage:\n          Regions: [\"*\"]\n          Resources: [\"*\"]\n",
    )
    .unwrap();
    let (code, _, stderr) = check(vec!["exceptions".into(), "check".into(), p(&prowler)]).await;
    assert_eq!(code, 2);
    assert_eq!(
        stderr.trim(),
        format!("error: exceptions {}:2: Mutelist: a Prowler mutelist has no owner; give it with --exceptions-owner EMAIL (every converted rule gets it)", p(&prowler))
    );
    let (code, stdout, stderr) = check(vec![
        "exceptions".into(),
        "check".into(),
        p(&prowler),
        "--exceptions-owner".into(),
        "sec@example.com".into(),
        "--exceptions-expires".into(),
        expires.to_string(),
    ])
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            format!("prowler-111122223333-iam_rotate_access_key_90_days (line 5): expires {expires} (in 100 days); owner sec@example.com; match accounts 111122223333; users svc-ci; flags key_older_than_90d"),
            "note: line 9: Prowler check iam_avoid_root_usage has no flag here (docs/exceptions.md); its entry is left out".to_string(),
        ]
    );
}

// Story: the same with moto's Security Hub (GetFindings gives back what was imported): a finding imported
// ACTIVE one week and accepted the next is ARCHIVED there, and every other finding stays ACTIVE. The
// exceptions file is read from S3 (moto's) that week; a key that is not there stops the run first.
#[tokio::test(flavor = "multi_thread")]
async fn moto_security_hub_archives_a_newly_accepted_finding() {
    let moto = Moto::start();
    let org = org();
    let dir = tempfile::tempdir().unwrap();
    let week = |extra: Vec<String>, code: i32| {
        let (o, dir, moto) = (org.clone(), dir.path().to_path_buf(), moto.endpoint.clone());
        async move {
            let sim = Sim::start(o, Faults::default()).await.unwrap();
            let endpoint = sim.endpoint();
            let mut args: Vec<String> = [
                "--role",
                "IAMAuditRole",
                "--output-dir",
                dir.to_str().unwrap(),
                "--no-progress",
                "--iam-rate",
                "200",
                "--security-hub",
            ]
            .map(String::from)
            .to_vec();
            args.extend(extra);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let env = [
                FAKE_KEY,
                FAKE_SECRET,
                ("AWS_ENDPOINT_URL", endpoint.as_str()),
                ("AWS_ENDPOINT_URL_SECURITYHUB", moto.as_str()),
                ("AWS_ENDPOINT_URL_S3", moto.as_str()),
            ];
            let out = run_bin(&args, &env, &dir).await;
            assert_eq!(out.code, code, "{}", out.stderr);
            out
        }
    };
    let held = || -> BTreeMap<String, String> {
        moto.security_hub_findings()
            .into_iter()
            .map(|(id, (state, _))| (id, state))
            .collect()
    };
    let first = week(vec![], 0).await;
    let before = held();
    assert!(before.values().all(|s| s == "ACTIVE") && before.len() > 20);
    let (uid, account, key) = old_key_finding(&first);
    let text = rules(
        &account,
        &key,
        "key_older_than_90d",
        today() + chrono::Duration::days(30),
    );
    moto.python(
        "s3 = boto3.client('s3', endpoint_url=MOTO)\n\
         s3.create_bucket(Bucket='audit-config')\n\
         s3.put_object(Bucket='audit-config', Key='iam-audit/exceptions.yaml', Body=os.environ['RULES'])",
        &[("RULES", &text)],
    );
    let missing = week(
        vec![
            "--exceptions".into(),
            "s3://audit-config/iam-audit/nope.yaml".into(),
        ],
        2,
    )
    .await;
    assert!(
        missing.stderr.starts_with(
            "error: exceptions s3://audit-config/iam-audit/nope.yaml: cannot be read (NoSuchKey: "
        ),
        "{}",
        missing.stderr
    );
    assert_eq!(
        held(),
        before,
        "nothing imported by a run that stopped first"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    week(
        vec![
            "--exceptions".into(),
            "s3://audit-config/iam-audit/exceptions.yaml".into(),
        ],
        0,
    )
    .await;
    let after = held();
    assert_eq!(after[&uid], "ARCHIVED");
    let still: BTreeMap<&String, &String> = after.iter().filter(|(u, _)| **u != uid).collect();
    assert!(still.values().all(|s| *s == "ACTIVE"), "{still:?}");
    assert_eq!(after.len(), before.len());
}

// Story: the security team names its break-glass users in the exceptions file. A user kept sealed (a
// password never used, a FIDO key, nothing else) is no finding beyond its unused password, which the rule
// accepts; one that signed in and holds a used key is Critical; one left without a password, with a
// virtual device and a signing certificate, breaks three expectations, each a finding of its own. Nothing
// of it needs a call the audit did not already make.
#[tokio::test(flavor = "multi_thread")]
async fn break_glass_users_are_asserted_sealed_and_each_broken_expectation_is_a_finding() {
    use iam_audit::sim::{SimCredential, SimCredentialKind};
    let mut org = org();
    let now = chrono::Utc::now().timestamp();
    let account = iam_audit::sim::add_break_glass(&mut org, now, &[]).expect("a Security account");
    let a = org.accounts.iter_mut().find(|a| a.id == account).unwrap();
    let mut bare = a
        .users
        .iter()
        .find(|u| u.name == "breakglass-sealed")
        .unwrap()
        .clone();
    bare.name = "breakglass-bare".into();
    bare.login_profile = false;
    bare.mfa = vec![format!("arn:aws:iam::{account}:mfa/breakglass-bare")];
    bare.credentials.push(SimCredential {
        kind: SimCredentialKind::SigningCertificate,
        id: "BGCERT0000000000000000000001".into(),
        service: String::new(),
        active: true,
        created: now - 86_400,
        expires: None,
    });
    a.users.push(bare);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("exceptions.yaml");
    let expires = today() + chrono::Duration::days(90);
    std::fs::write(
        &file,
        format!(
            "version: 1
rules:
  - id: glass
    kind: break_glass
    owner: security@example.com
    reason: emergency access, sealed in the safe
    expires: {expires}
    match: {{ accounts: [\"{account}\"], users: [\"breakglass-*\"] }}
"
        ),
    )
    .unwrap();
    let sim = Sim::start(org.clone(), Faults::default()).await.unwrap();
    let out = run(
        &sim,
        dir.path(),
        vec![
            "--exceptions".into(),
            file.to_str().unwrap().into(),
            "--iam-rate".into(),
            "200".into(),
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let users: BTreeMap<&str, (&str, &str, &str)> = out
        .users
        .iter()
        .filter(|u| u["username"].starts_with("breakglass-"))
        .map(|u| {
            (
                u["username"].as_str(),
                (
                    u["risk"].as_str(),
                    u["exception"].as_str(),
                    u["exception_expires"].as_str(),
                ),
            )
        })
        .collect();
    let day = expires.to_string();
    assert_eq!(
        users,
        BTreeMap::from([
            (
                "breakglass-bare",
                (
                    "break_glass_without_hardware_mfa;break_glass_without_password;break_glass_other_credential",
                    "",
                    ""
                )
            ),
            ("breakglass-sealed", ("password_unused_45d", "glass", day.as_str())),
            (
                "breakglass-used",
                ("break_glass_used;break_glass_access_key", "", "")
            ),
        ])
    );
    let severity = |code: &str, user: &str| -> (String, u64) {
        let f = out
            .findings
            .iter()
            .find(|f| f["finding_info"]["uid"] == format!("iam-audit/{account}/{code}/{user}"))
            .unwrap_or_else(|| panic!("{code} on {user}"));
        (
            f["severity"].as_str().unwrap().to_string(),
            f["status_id"].as_u64().unwrap(),
        )
    };
    assert_eq!(
        severity("break_glass_used", "breakglass-used"),
        ("Critical".into(), 1)
    );
    assert_eq!(
        severity("break_glass_access_key", "breakglass-used"),
        ("High".into(), 1)
    );
    assert_eq!(
        severity("break_glass_without_password", "breakglass-bare"),
        ("Medium".into(), 1)
    );
    assert_eq!(
        severity("password_unused_45d", "breakglass-sealed"),
        ("Medium".into(), 3),
        "accepted, kept"
    );
    assert_valid_ocsf(out.findings_path.as_ref().unwrap());
    let row = out
        .accounts
        .iter()
        .find(|r| r["account_id"] == account)
        .unwrap();
    assert_eq!(
        (
            row["break_glass_used"].as_str(),
            row["break_glass_other_credential"].as_str()
        ),
        ("1", "1")
    );
    // The rule found its users: it is not stale.
    assert!(
        out.stderr.contains("exceptions: 1 findings accepted\n"),
        "{}",
        out.stderr
    );
    // Read-only toward the audited accounts, rule or not.
    assert_read_only(&sim.calls());
    // `exceptions check` says what the rule asserts.
    let home = tempfile::tempdir().unwrap();
    let checked = bin_command(
        &["exceptions", "check", file.to_str().unwrap()],
        &[],
        home.path(),
    )
    .output()
    .await
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&checked.stdout).trim(),
        format!("glass [break_glass] (line 3): expires {expires} (in 90 days); owner security@example.com; match accounts {account}; users breakglass-*; expects hardware_mfa, no_access_keys, not_used, password, no_other_credentials")
    );
}
