//! `--security-hub` as a security team meets it: each audited account's own Security Hub receives the
//! run's findings as valid ASFF (botocore's own validation), at most 100 per call; an account with
//! Security Hub off, one whose role may not import, and one not audited say so in the accounts report
//! without touching the other files; a week later, exactly the fixed findings are archived. Without the
//! flag nothing is written anywhere. moto's Security Hub gets the same import and gives it back with
//! GetFindings.

use std::collections::{BTreeMap, BTreeSet};

use iam_audit::sim::{Faults, Scenario, Sim, SimOrg, SimUser};

use crate::support::*;

fn org(epoch: u32) -> SimOrg {
    let mut org = Scenario {
        seed: 31,
        accounts: 7,
        users_min: 3,
        users_max: 8,
        events_per_account: 2,
        epoch,
        ..Scenario::default()
    }
    .generate();
    // One big account: more than 100 findings, so its import takes several calls.
    let big = &mut org.accounts[5];
    let template: SimUser = big.users[0].clone();
    for n in 0..70 {
        let mut u = template.clone();
        u.name = format!("console-user-{n:03}");
        u.login_profile = true;
        u.mfa.clear();
        u.keys.clear();
        big.users.push(u);
    }
    org
}

fn faults(o: &SimOrg) -> Faults {
    Faults {
        deny_assume_role: vec![o.accounts[0].id.clone()],
        security_hub_disabled: vec![o.accounts[1].id.clone()],
        deny_security_hub: vec![o.accounts[2].id.clone()],
        report_delay_ms: 20,
        ..Faults::default()
    }
}

/// OCSF uids of a findings file, by account, for one activity.
fn uids(findings: &[serde_json::Value], activity: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in findings.iter().filter(|f| f["activity_name"] == activity) {
        out.entry(f["cloud"]["account"]["uid"].as_str().unwrap().to_string())
            .or_default()
            .insert(f["finding_info"]["uid"].as_str().unwrap().to_string());
    }
    out
}

fn cell<'a>(out: &'a RunOutput, account: &str) -> &'a str {
    &out.accounts
        .iter()
        .find(|r| r["account_id"] == account)
        .unwrap()["security_hub"]
}

fn hub_calls(sim: &Sim) -> Vec<iam_audit::sim::server::Call> {
    sim.calls()
        .into_iter()
        .filter(|c| c.action == "securityhub:BatchImportFindings")
        .collect()
}

async fn run(sim: &Sim, dir: &std::path::Path, extra: &[&str]) -> RunOutput {
    let mut args = vec!["--iam-rate", "200", "--iam-burst", "50"];
    args.extend_from_slice(extra);
    let out = audit_in(sim, dir, &args).await;
    // Everything but the import only read.
    let reads: Vec<_> = sim
        .calls()
        .into_iter()
        .filter(|c| c.action != "securityhub:BatchImportFindings")
        .collect();
    assert_read_only(&reads);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn findings_reach_each_accounts_security_hub_and_fixed_ones_are_archived() {
    let (week1, week2) = (org(0), org(1));
    let id = |n: usize| week1.accounts[n].id.clone();
    let (skipped, off, denied, big) = (id(0), id(1), id(2), id(5));
    let dir = tempfile::tempdir().unwrap();

    // Without the flag: no import, and the column says so.
    let sim0 = Sim::start(week1.clone(), faults(&week1)).await.unwrap();
    let plain_dir = tempfile::tempdir().unwrap();
    let plain = run(&sim0, plain_dir.path(), &[]).await;
    assert!(hub_calls(&sim0).is_empty());
    assert!(plain.accounts.iter().all(|r| r["security_hub"] == "off"));
    drop(sim0);

    let sim1 = Sim::start(week1.clone(), faults(&week1)).await.unwrap();
    let first = run(
        &sim1,
        dir.path(),
        &["--security-hub", "--security-hub-region", "eu-west-1"],
    )
    .await;
    assert_eq!(first.code, 3, "{}", first.stderr);
    let created = uids(&first.findings, "Create");
    let calls = hub_calls(&sim1);
    for c in &calls {
        let n: usize = c.detail.strip_prefix("Findings=").unwrap().parse().unwrap();
        assert!((1..=100).contains(&n), "{c:?}");
        assert_eq!(c.region, "eu-west-1");
    }
    assert!(
        calls
            .iter()
            .filter(|c| c.account == big && c.outcome == "ok")
            .count()
            >= 2,
        "the big account's findings take several calls"
    );
    assert!(
        !calls.iter().any(|c| c.account == skipped),
        "no import where the role cannot be assumed"
    );
    let mut imported = 0;
    for a in week1.accounts.iter().filter(|a| a.status == "ACTIVE") {
        let hub = sim1.security_hub(&a.id);
        if [&skipped, &off, &denied].contains(&&a.id) {
            assert!(hub.is_empty(), "{}", a.id);
            continue;
        }
        let expected = created.get(&a.id).cloned().unwrap_or_default();
        assert_eq!(
            hub.keys().cloned().collect::<BTreeSet<_>>(),
            expected,
            "{}",
            a.id
        );
        assert!(hub
            .values()
            .all(|f| f["RecordState"] == "ACTIVE" && f["Compliance"]["Status"] == "FAILED"));
        assert_eq!(
            cell(&first, &a.id),
            format!("imported {}, archived 0", expected.len())
        );
        imported += expected.len();
    }
    assert!(imported > 100);
    let all: Vec<serde_json::Value> = week1
        .accounts
        .iter()
        .flat_map(|a| sim1.security_hub(&a.id).into_values())
        .collect();
    assert_eq!(
        assert_valid_asff(&all),
        format!("{} findings, 0 invalid", all.len())
    );
    assert_eq!(
        cell(&first, &skipped),
        "not imported: the account was not audited"
    );
    assert_eq!(
        cell(&first, &off),
        format!("not enabled (InvalidAccessException: Account {off} is not subscribed to AWS Security Hub): enable Security Hub in eu-west-1 (aws securityhub enable-security-hub --region eu-west-1), or drop --security-hub")
    );
    assert!(
        cell(&first, &denied).starts_with("refused (AccessDeniedException: ")
            && cell(&first, &denied).ends_with(
                "allow securityhub:BatchImportFindings to the audit role (README, Security Hub)"
            ),
        "{}",
        cell(&first, &denied)
    );
    assert!(
        first.stderr.contains(&format!(
            "security hub: imported {imported} findings and archived 0 in 7 accounts; warning: 3 accounts not fully imported"
        )),
        "{}",
        first.stderr
    );
    // The other files are as they would be without the import.
    assert_eq!(first.keys.len(), plain.keys.len());
    assert_eq!(first.findings.len(), plain.findings.len());

    // A week later, the same hubs: exactly the findings the run closed are archived, the rest stay.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let sim2 = Sim::start(week2.clone(), faults(&week2)).await.unwrap();
    sim2.carry_security_hub(&sim1);
    let second = run(
        &sim2,
        dir.path(),
        &["--security-hub", "--security-hub-region", "eu-west-1"],
    )
    .await;
    assert_eq!(second.code, 3, "{}", second.stderr);
    let closed = uids(&second.findings, "Close");
    let now_open: BTreeMap<String, BTreeSet<String>> = {
        let mut m = uids(&second.findings, "Create");
        for (a, u) in uids(&second.findings, "Update") {
            m.entry(a).or_default().extend(u);
        }
        m
    };
    assert!(
        closed.values().map(BTreeSet::len).sum::<usize>() > 0,
        "the week fixed something"
    );
    let resolved_rows: BTreeSet<String> = second
        .changes
        .iter()
        .filter(|r| r["kind"] == "finding" && r["change"] == "resolved")
        .map(|r| r["finding_uid"].clone())
        .collect();
    assert_eq!(
        closed.values().flatten().cloned().collect::<BTreeSet<_>>(),
        resolved_rows
    );
    for a in week2.accounts.iter().filter(|a| a.status == "ACTIVE") {
        if [&skipped, &off, &denied].contains(&&a.id) {
            continue;
        }
        let hub = sim2.security_hub(&a.id);
        let archived: BTreeSet<String> = hub
            .iter()
            .filter(|(_, f)| f["RecordState"] == "ARCHIVED")
            .map(|(k, _)| k.clone())
            .collect();
        let fixed = closed.get(&a.id).cloned().unwrap_or_default();
        assert_eq!(archived, fixed, "{}", a.id);
        for uid in &fixed {
            assert_eq!(hub[uid]["Compliance"]["Status"], "PASSED");
        }
        let active: BTreeSet<String> = hub
            .iter()
            .filter(|(_, f)| f["RecordState"] == "ACTIVE")
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(
            active,
            now_open.get(&a.id).cloned().unwrap_or_default(),
            "{}",
            a.id
        );
        assert_eq!(
            cell(&second, &a.id),
            format!("imported {}, archived {}", active.len(), fixed.len())
        );
    }
}

/// moto's Security Hub takes the same import and gives the findings back with GetFindings.
#[tokio::test(flavor = "multi_thread")]
async fn moto_security_hub_gives_back_what_was_imported() {
    let moto = Moto::start();
    let o = org(0);
    let sim = Sim::start(
        o.clone(),
        Faults {
            report_delay_ms: 20,
            ..Faults::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let endpoint = sim.endpoint();
    let out = run_bin(
        &[
            "--role",
            "IAMAuditRole",
            "--output-dir",
            dir.path().to_str().unwrap(),
            "--no-progress",
            "--iam-rate",
            "200",
            "--security-hub",
            "--format",
            "jsonl",
        ],
        &[
            FAKE_KEY,
            FAKE_SECRET,
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_ENDPOINT_URL_SECURITYHUB", &moto.endpoint),
        ],
        dir.path(),
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let sent: BTreeSet<String> = out
        .findings
        .iter()
        .map(|f| f["finding_info"]["uid"].as_str().unwrap().to_string())
        .collect();
    // moto keeps every account's findings in the account of the caller's keys: read them back as such.
    let got = moto.python(
        "c = boto3.client('securityhub', endpoint_url=MOTO)\n\
             ids = []\n\
             kw = {'MaxResults': 100}\n\
             for _ in range(1000):\n\
             \x20   r = c.get_findings(**kw)\n\
             \x20   ids += [(f['Id'], f['AwsAccountId'], f['RecordState']) for f in r['Findings']]\n\
             \x20   if not r.get('NextToken'): break\n\
             \x20   kw['NextToken'] = r['NextToken']\n\
         print(json.dumps(ids))",
        &[],
    );
    let got: Vec<(String, String, String)> = serde_json::from_str(&got).unwrap();
    let got_ids: BTreeSet<String> = got.iter().map(|(id, _, _)| id.clone()).collect();
    assert!(!sent.is_empty());
    assert_eq!(got_ids, sent);
    assert!(got
        .iter()
        .all(|(id, acct, state)| id.split('/').nth(1) == Some(acct) && state == "ACTIVE"));
    // The JSON-lines accounts report got its cells, each line otherwise as written (account_id first).
    let accounts = out
        .files
        .iter()
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("accounts_")
        })
        .unwrap();
    let text = std::fs::read_to_string(accounts).unwrap();
    let mut per_account: BTreeMap<String, usize> = BTreeMap::new();
    for id in &sent {
        *per_account
            .entry(id.split('/').nth(1).unwrap().to_string())
            .or_default() += 1;
    }
    assert!(!text.is_empty());
    for line in text.lines() {
        assert!(line.starts_with("{\"account_id\":"), "{line}");
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = v["account_id"].as_str().unwrap();
        let want = match per_account.get(id) {
            Some(n) => format!("imported {n}, archived 0"),
            None if v["audit_status"] == "not_active" => "not active".to_string(),
            None => "nothing to import".to_string(),
        };
        assert_eq!(v["security_hub"], want.as_str(), "{line}");
    }
}

/// `check --security-hub` says exactly what an empty import (which stores nothing) can prove: that Security
/// Hub answered, not that it is enabled or that the role may import (the simulator, like AWS as far as its
/// documentation says, may check the input first); the first real import's cells say the rest.
#[tokio::test(flavor = "multi_thread")]
async fn check_says_where_the_import_would_fail() {
    let o = org(0);
    let sim = Sim::start(o.clone(), faults(&o)).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let endpoint = sim.endpoint();
    let mut cmd = bin_command(
        &[
            "check",
            "--role",
            "IAMAuditRole",
            "--security-hub",
            "--security-hub-region",
            "eu-west-1",
        ],
        &[FAKE_KEY, FAKE_SECRET, ("AWS_ENDPOINT_URL", &endpoint)],
        home.path(),
    );
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), cmd.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    let line = |n: usize| {
        stdout
            .lines()
            .find(|l| l.starts_with(&o.accounts[n].id))
            .unwrap()
            .to_string()
    };
    // Hub off, the action denied, and all well: an empty import cannot tell them apart, and says so.
    for n in 1..=3 {
        assert!(
            line(n).ends_with("; securityhub:BatchImportFindings not proven: Security Hub in eu-west-1 answered the empty import with InvalidInputException, which shows neither that it is enabled nor that the role may import (AWS need not check those before the input); the first --security-hub run's security_hub cells will say"),
            "{}",
            line(n)
        );
        assert!(!line(n).ends_with(" ok"));
    }
    assert!(
        !line(0).contains("securityhub"),
        "no probe where the role cannot be assumed: {}",
        line(0)
    );
    let probes = hub_calls(&sim);
    assert!(
        probes.iter().all(|c| c.detail == "Findings=0"),
        "{probes:?}"
    );
    assert!(
        o.accounts
            .iter()
            .all(|a| sim.security_hub(&a.id).is_empty()),
        "a probe imports nothing"
    );
}

// Story: Security Hub stays true whatever happens between imports. Week 1 imports (one account's role may
// not: nothing lands there); week 2 runs without --security-hub and some findings are fixed; week 3
// imports again with the role fixed: every finding fixed in week 2 or 3 is archived, every finding that
// holds is ACTIVE (the denied account's too), and a finding open since week 1 keeps week 1's CreatedAt and
// FirstObservedAt.
#[tokio::test(flavor = "multi_thread")]
async fn findings_fixed_between_imports_are_archived_and_first_seen_is_kept() {
    let weeks = [org(0), org(1), org(2)];
    let id = |n: usize| weeks[0].accounts[n].id.clone();
    let (skipped, off, denied) = (id(0), id(1), id(2));
    let dir = tempfile::tempdir().unwrap();
    let hub_flags = ["--security-hub", "--security-hub-region", "eu-west-1"];

    let sim1 = Sim::start(weeks[0].clone(), faults(&weeks[0]))
        .await
        .unwrap();
    let first = run(&sim1, dir.path(), &hub_flags).await;
    assert_eq!(first.code, 3, "{}", first.stderr);
    assert!(sim1.security_hub(&denied).is_empty());

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let sim2 = Sim::start(weeks[1].clone(), faults(&weeks[1]))
        .await
        .unwrap();
    let second = run(&sim2, dir.path(), &[]).await;
    assert_eq!(second.code, 3, "{}", second.stderr);
    assert!(hub_calls(&sim2).is_empty(), "no import without the flag");
    let fixed_in_2 = uids(&second.findings, "Close");
    assert!(
        fixed_in_2.values().map(BTreeSet::len).sum::<usize>() > 0,
        "week 2 fixed something"
    );

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut f3 = faults(&weeks[2]);
    f3.deny_security_hub.clear();
    let sim3 = Sim::start(weeks[2].clone(), f3).await.unwrap();
    sim3.carry_security_hub(&sim1);
    let third = run(&sim3, dir.path(), &hub_flags).await;
    assert_eq!(third.code, 3, "{}", third.stderr);
    let open_now: BTreeMap<String, BTreeSet<String>> = {
        let mut m = uids(&third.findings, "Create");
        for (a, u) in uids(&third.findings, "Update") {
            m.entry(a).or_default().extend(u);
        }
        m
    };
    let mut checked_first_seen = 0;
    for a in weeks[2].accounts.iter().filter(|a| a.status == "ACTIVE") {
        if [&skipped, &off].contains(&&a.id) {
            continue;
        }
        let before = sim1.security_hub(&a.id);
        let hub = sim3.security_hub(&a.id);
        let state = |s: &str| -> BTreeSet<String> {
            hub.iter()
                .filter(|(_, f)| f["RecordState"] == s)
                .map(|(k, _)| k.clone())
                .collect()
        };
        let active_now = open_now.get(&a.id).cloned().unwrap_or_default();
        assert_eq!(state("ACTIVE"), active_now, "{}", a.id);
        // Whatever week 1 left ACTIVE and no longer holds is archived now.
        let gone: BTreeSet<String> = before
            .keys()
            .filter(|uid| !active_now.contains(*uid))
            .cloned()
            .collect();
        assert!(state("ARCHIVED").is_superset(&gone), "{}: {gone:?}", a.id);
        let fixed_2 = fixed_in_2.get(&a.id).cloned().unwrap_or_default();
        assert!(
            fixed_2
                .iter()
                .all(|u| !before.contains_key(u) || state("ARCHIVED").contains(u)),
            "{}: fixed in week 2, imported in week 1, still ACTIVE",
            a.id
        );
        for (uid, f) in &hub {
            if let (Some(old), true) = (before.get(uid), f["RecordState"] == "ACTIVE") {
                assert_eq!(f["CreatedAt"], old["CreatedAt"], "{uid}");
                assert_eq!(f["FirstObservedAt"], old["FirstObservedAt"], "{uid}");
                checked_first_seen += 1;
            }
        }
    }
    assert!(checked_first_seen > 20, "{checked_first_seen}");
    // The account whose import was refused in week 1 has its findings now.
    assert_eq!(
        sim3.security_hub(&denied)
            .values()
            .filter(|f| f["RecordState"] == "ACTIVE")
            .count(),
        open_now.get(&denied).map_or(0, BTreeSet::len)
    );
    assert!(open_now.get(&denied).is_some_and(|u| !u.is_empty()));
}

/// The same three weeks with moto's Security Hub (an implementation we did not write): what it holds
/// ACTIVE after week 3 is exactly what holds, week 2's fixes are ARCHIVED, and a finding open since
/// week 1 keeps its first-seen times.
#[tokio::test(flavor = "multi_thread")]
async fn moto_security_hub_holds_what_holds_after_a_week_without_imports() {
    let moto = Moto::start();
    let weeks = [org(0), org(1), org(2)];
    let dir = tempfile::tempdir().unwrap();
    let week = |n: usize, hub: bool| {
        let (o, dir, moto) = (
            weeks[n].clone(),
            dir.path().to_path_buf(),
            moto.endpoint.clone(),
        );
        async move {
            let sim = Sim::start(
                o,
                Faults {
                    report_delay_ms: 20,
                    ..Faults::default()
                },
            )
            .await
            .unwrap();
            let endpoint = sim.endpoint();
            let mut args = vec![
                "--role",
                "IAMAuditRole",
                "--output-dir",
                dir.to_str().unwrap(),
                "--no-progress",
                "--iam-rate",
                "200",
            ];
            if hub {
                args.push("--security-hub");
            }
            let out = run_bin(
                &args,
                &[
                    FAKE_KEY,
                    FAKE_SECRET,
                    ("AWS_ENDPOINT_URL", &endpoint),
                    ("AWS_ENDPOINT_URL_SECURITYHUB", &moto),
                ],
                &dir,
            )
            .await;
            assert_eq!(out.code, 0, "{}", out.stderr);
            out
        }
    };
    let held = || moto.security_hub_findings();
    week(0, true).await;
    let first = held();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let second = week(1, false).await;
    let fixed_in_2: BTreeSet<String> = uids(&second.findings, "Close")
        .into_values()
        .flatten()
        .filter(|u| first.contains_key(u))
        .collect();
    assert!(
        !fixed_in_2.is_empty(),
        "week 2 fixed something imported in week 1"
    );
    assert_eq!(held(), first, "nothing reached Security Hub in week 2");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let third = week(2, true).await;
    let open_now: BTreeSet<String> = ["Create", "Update"]
        .iter()
        .flat_map(|a| uids(&third.findings, a).into_values().flatten())
        .collect();
    let now = held();
    let active: BTreeSet<String> = now
        .iter()
        .filter(|(_, (s, _))| s == "ACTIVE")
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(active, open_now);
    for u in &fixed_in_2 {
        assert_eq!(now[u].0, "ARCHIVED", "{u}: fixed in week 2");
    }
    let kept: Vec<&String> = active.iter().filter(|u| first.contains_key(*u)).collect();
    assert!(kept.len() > 20, "{}", kept.len());
    for u in kept {
        assert_eq!(now[u].1, first[u].1, "{u}: first seen in week 1");
    }
}
