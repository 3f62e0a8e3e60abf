//! Stories of issue 7 on the simulator: the credential report strategy, the users report with the root
//! user, and the risk flags.

use std::collections::BTreeMap;

use iam_audit::sim::{Faults, Scenario, Sim, SimAccount, SimKey, SimOrg, SimRoot, SimUser};

use crate::support::*;

const DAY: i64 = 86_400;

fn without(
    rows: &[BTreeMap<String, String>],
    cols: &[&str],
    roots: bool,
) -> Vec<BTreeMap<String, String>> {
    rows.iter()
        .filter(|r| roots || r.get("username").map(String::as_str) != Some("<root_account>"))
        .map(|r| {
            let mut r = r.clone();
            for c in cols {
                r.remove(*c);
            }
            r
        })
        .collect()
}

fn iam_calls(sim: &Sim, account: &str) -> usize {
    sim.calls()
        .iter()
        .filter(|c| c.account == account && c.action.starts_with("iam:"))
        .count()
}

// Story: with the defaults (`auto`), the audit reads each account's credential report and gives the same key
// rows and user rows as per-user calls, with about one IAM call per user instead of three and more. It
// waits through LimitExceeded and a report still being generated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_reads_the_report_and_gives_the_rows_of_per_user_calls() {
    let scenario = Scenario::sized(41, 3, 60, 0);
    let org = scenario.generate();
    let faults = Faults {
        report_delay_ms: 400,
        report_limit_exceeded: 1,
        ..Faults::default()
    };
    let fast = ["--iam-rate", "200", "--iam-burst", "50"];
    let api_sim = Sim::start(org.clone(), faults.clone()).await.unwrap();
    let mut args = fast.to_vec();
    args.extend(["--strategy", "api"]);
    let (api, _d1) = audit(&api_sim, &args).await;
    let report_sim = Sim::start(org.clone(), faults).await.unwrap();
    let (auto, _d2) = audit(&report_sim, &fast).await;
    assert_eq!(api.code, 0, "{}", api.stderr);
    assert_eq!(auto.code, 0, "{}", auto.stderr);
    assert_read_only(&report_sim.calls());

    assert_eq!(got_keys(&auto), expected_keys(&org, &[]));
    assert!(auto.keys.iter().all(|k| k["source"] == "credential_report"));
    assert!(api.keys.iter().all(|k| k["source"] == "api"));
    assert_same_rows(
        &without(&auto.keys, &["source"], true),
        &without(&api.keys, &["source"], true),
    );
    // Every user, keyless ones included, and a root row per account.
    assert_eq!(auto.users.len(), 3 * 60 + 3);
    assert_same_rows(
        &without(&auto.users, &["source", "note"], false),
        &without(&api.users, &["source", "note"], false),
    );
    for a in &auto.accounts {
        assert_eq!(a["strategy"], "credential_report");
        assert_eq!(a["error"], "");
        let t = chrono::DateTime::parse_from_rfc3339(&a["credential_report_time"]).unwrap();
        assert!((chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_minutes() < 10);
    }
    // LimitExceeded, then STARTED, then GetCredentialReport once the report takes to generate (again while
    // it answers ReportInProgress): the report was waited for, and generated once per account.
    let generate: Vec<_> = report_sim
        .calls()
        .into_iter()
        .filter(|c| c.action == "iam:GenerateCredentialReport")
        .collect();
    assert_eq!(
        generate
            .iter()
            .filter(|c| c.outcome == "LimitExceeded")
            .count(),
        3
    );
    assert_eq!(generate.len(), 2 * 3, "LimitExceeded, then STARTED");
    let gets = report_sim
        .calls()
        .into_iter()
        .filter(|c| c.action == "iam:GetCredentialReport" && c.outcome == "ok")
        .count();
    assert_eq!(gets, 3, "one report read per account");

    for a in &org.accounts {
        let users = a.users.len() as f64;
        let with_report = iam_calls(&report_sim, &a.id) as f64 / users;
        let per_user = iam_calls(&api_sim, &a.id) as f64 / users;
        assert!(
            per_user >= 3.0,
            "{}: {per_user:.2} IAM calls per user under api",
            a.id
        );
        // 1.20 before issue 27; its three ListEntitiesForPolicy per account (which users AWS quarantined)
        // are 0.05 per user here.
        assert!(
            with_report <= 1.25,
            "{}: {with_report:.2} IAM calls per user with the report (api: {per_user:.2})",
            a.id
        );
    }
}

// Story: where the role may not generate the report, `auto` audits that account with per-user calls and says
// so; `--strategy credential_report` reports the account as not audited for IAM, with the AWS error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_report_falls_back_per_account() {
    let org = Scenario::sized(43, 3, 8, 0).generate();
    let denied = org.accounts[1].id.clone();
    let faults = Faults {
        deny_credential_report: vec![denied.clone()],
        report_delay_ms: 0,
        ..Faults::default()
    };
    let (_sim, out, _d) = fast_audit(&org, faults.clone(), &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(got_keys(&out), expected_keys(&org, &[]));
    for a in &out.accounts {
        assert_eq!(a["audit_status"], "audited");
        if a["account_id"] == denied {
            assert_eq!(a["strategy"], "api");
            assert_eq!(a["credential_report_time"], "");
            assert!(
                a["error"].starts_with("AccessDenied: User: arn:aws:sts::") && a["error"].contains("not authorized to perform: iam:GenerateCredentialReport")
                    && a["error"].contains("the role may not read the credential report; audited with per-user calls (--strategy api) (iam:GenerateCredentialReport)"),
                "{}",
                a["error"]
            );
        } else {
            assert_eq!(a["strategy"], "credential_report");
            assert_eq!(a["error"], "");
        }
    }
    let sources: BTreeMap<String, String> = out
        .keys
        .iter()
        .map(|k| (k["account_id"].clone(), k["source"].clone()))
        .collect();
    assert_eq!(sources[&denied], "api");

    let sim = Sim::start(org.clone(), faults).await.unwrap();
    let (strict, _d) = audit(
        &sim,
        &[
            "--strategy",
            "credential_report",
            "--iam-rate",
            "200",
            "--iam-burst",
            "50",
        ],
    )
    .await;
    assert_eq!(strict.code, 3, "{}", strict.stderr);
    assert_eq!(
        got_keys(&strict),
        expected_keys(&org, std::slice::from_ref(&denied))
    );
    let row = strict
        .accounts
        .iter()
        .find(|a| a["account_id"] == denied)
        .unwrap();
    assert_eq!(
        (row["audit_status"].as_str(), row["iam_status"].as_str()),
        ("partial", "failed")
    );
    assert!(
        row["error"].contains("(iam:GenerateCredentialReport)"),
        "{}",
        row["error"]
    );
    assert!(!sim
        .calls()
        .iter()
        .any(|c| c.account == denied && c.action == "iam:ListUsers"));
}

fn key(id: &str, active: bool, age_days: i64, used_days_ago: Option<i64>, now: i64) -> SimKey {
    SimKey {
        id: id.into(),
        active,
        created: now - age_days * DAY,
        last_used: used_days_ago
            .map(|d| (now - d * DAY, "s3".to_string(), "eu-west-1".to_string())),
    }
}

fn user(
    name: &str,
    password_used: Option<Option<i64>>,
    mfa: &[&str],
    keys: Vec<SimKey>,
    now: i64,
) -> SimUser {
    SimUser {
        name: name.into(),
        created: now - 400 * DAY,
        login_profile: password_used.is_some(),
        password_last_used: password_used.flatten().map(|d| now - d * DAY),
        keys,
        mfa: mfa.iter().map(|s| s.to_string()).collect(),
        credentials: vec![],
        policies: vec![],
    }
}

/// A member account with one user per verdict, and the management account itself.
fn verdicts_org(now: i64) -> SimOrg {
    let m = "222222222222";
    let members = vec![
        user("console-nomfa", Some(Some(10)), &[], vec![], now),
        user(
            "idle-console",
            Some(None),
            &["arn:aws:iam::222222222222:mfa/idle-console"],
            vec![],
            now,
        ),
        user(
            "old-key",
            None,
            &[],
            vec![key("AKIAOLD0000000000001", true, 200, Some(1), now)],
            now,
        ),
        user(
            "two-keys",
            None,
            &[],
            vec![
                key("AKIATWO0000000000001", true, 60, Some(50), now),
                key("AKIATWO0000000000002", true, 60, Some(50), now),
            ],
            now,
        ),
        user(
            "setup-key",
            Some(Some(1)),
            &["arn:aws:iam::222222222222:mfa/setup-key"],
            vec![key("AKIASET0000000000001", true, 5, None, now)],
            now,
        ),
        user(
            "clean",
            Some(Some(1)),
            &["GAHT00000001"],
            vec![key("AKIACLN0000000000001", false, 500, None, now)],
            now,
        ),
    ];
    SimOrg {
        management_account: "999999999999".into(),
        ous: vec![],
        accounts: vec![
            SimAccount {
                id: m.into(),
                parent: String::new(),
                name: "members".into(),
                status: "ACTIVE".into(),
                users: members,
                events: vec![],
                root: SimRoot {
                    created: now - 1000 * DAY,
                    mfa: vec![],
                    keys: vec![key("AKIAROOT000000000001", true, 700, None, now)],
                    password_last_used: None,
                    no_password: false,
                },
            },
            SimAccount {
                id: "999999999999".into(),
                parent: String::new(),
                name: "management".into(),
                status: "ACTIVE".into(),
                users: vec![],
                events: vec![],
                root: SimRoot {
                    created: now - 1000 * DAY,
                    mfa: vec!["arn:aws:iam::999999999999:mfa/root-account-mfa-device".into()],
                    keys: vec![],
                    password_last_used: Some(now - 3 * DAY),
                    no_password: false,
                },
            },
        ],
    }
}

// Story: every IAM user and the root user get a row with the flags a CIS audit would raise, computed by hand
// here. The organization manages member accounts' root credentials, which removes none that exist: a
// member's root with a key or a password and no MFA is still a finding (CIS v6.0 2.4), one with neither is
// not; the management account's virtual-only root MFA is. Both strategies agree, but for the root's key:
// per-user calls learn only that it exists (GetAccountSummary), not its age or use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_report_flags_match_a_hand_computed_expectation() {
    let now = chrono::Utc::now().timestamp();
    let mut org = verdicts_org(now);
    // Two more members, their root without MFA or keys: one sealed (no password), one with a password.
    for (id, no_password) in [("333333333333", true), ("444444444444", false)] {
        let mut a = org.accounts[0].clone();
        a.id = id.into();
        a.name = format!("member-{id}");
        a.users = vec![];
        a.root.keys = vec![];
        a.root.no_password = no_password;
        org.accounts.push(a);
    }
    let faults = Faults {
        report_delay_ms: 0,
        root_credentials_management: true,
        ..Faults::default()
    };
    let expected_users: BTreeMap<&str, &str> = [
        ("222222222222/console-nomfa", "console_without_mfa"),
        ("222222222222/idle-console", "password_unused_45d"),
        ("222222222222/old-key", "key_older_than_90d"),
        ("222222222222/two-keys", "key_unused_45d;two_active_keys"),
        ("222222222222/setup-key", "key_created_with_user"),
        ("222222222222/clean", ""),
        // The root's key (700 days old, never used) fails CIS 1.4, and 1.11, 1.12 and 1.14 as any key
        // would.
        (
            "222222222222/<root_account>",
            "root_access_key;root_without_mfa;root_without_hardware_mfa;key_created_with_user;key_unused_45d;key_older_than_90d",
        ),
        ("333333333333/<root_account>", ""),
        (
            "444444444444/<root_account>",
            "root_without_mfa;root_without_hardware_mfa",
        ),
        ("999999999999/<root_account>", "root_without_hardware_mfa"),
    ]
    .into_iter()
    .collect();
    let expected_keys: BTreeMap<&str, &str> = [
        ("AKIAOLD0000000000001", "key_older_than_90d"),
        ("AKIATWO0000000000001", "key_unused_45d;two_active_keys"),
        ("AKIATWO0000000000002", "key_unused_45d;two_active_keys"),
        ("AKIASET0000000000001", "key_created_with_user"),
        ("AKIACLN0000000000001", ""),
    ]
    .into_iter()
    .collect();
    for strategy in ["auto", "api"] {
        let sim = Sim::start(org.clone(), faults.clone()).await.unwrap();
        let (out, _d) = audit(
            &sim,
            &[
                "--strategy",
                strategy,
                "--iam-rate",
                "200",
                "--iam-burst",
                "50",
            ],
        )
        .await;
        assert_eq!(out.code, 0, "{strategy}: {}", out.stderr);
        let got: BTreeMap<String, String> = out
            .users
            .iter()
            .map(|u| {
                (
                    format!("{}/{}", u["account_id"], u["username"]),
                    u["risk"].clone(),
                )
            })
            .collect();
        let mut want: BTreeMap<String, String> = expected_users
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let root_key_judged = strategy != "api";
        if !root_key_judged {
            want.insert(
                "222222222222/<root_account>".into(),
                "root_access_key;root_without_mfa;root_without_hardware_mfa".into(),
            );
        }
        assert_eq!(got, want, "{strategy}: user flags");
        let got: BTreeMap<String, String> = out
            .keys
            .iter()
            .map(|k| (k["access_key_id"].clone(), k["risk"].clone()))
            .collect();
        let want: BTreeMap<String, String> = expected_keys
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want, "{strategy}: key flags");
        let members = out
            .accounts
            .iter()
            .find(|a| a["account_id"] == "222222222222")
            .unwrap();
        let counts: Vec<&str> = iam_audit::record::Flag::ALL
            .iter()
            .map(|f| members[f.code()].as_str())
            .collect();
        let per_key = if root_key_judged { "2" } else { "1" };
        assert_eq!(
            counts,
            [
                "1", "0", "1", "1", "1", per_key, "1", per_key, "1", per_key, "0", "0", "0", "0",
                "0", "0", "0", "0", "0", "0", "0", "0"
            ],
            "{strategy}"
        );
        assert_eq!(members["root_mfa"], "None");
        let mgmt = out
            .accounts
            .iter()
            .find(|a| a["account_id"] == "999999999999")
            .unwrap();
        assert_eq!(mgmt["root_mfa"], "Virtual", "{strategy}");
        assert_eq!(mgmt["root_access_keys"], "0", "{strategy}");
        assert!(
            out.stderr.contains(&format!("risk flags (users): root_access_key 1, root_without_mfa 2, root_without_hardware_mfa 3, console_without_mfa 1, key_created_with_user {per_key}, password_unused_45d 1, key_unused_45d {per_key}, two_active_keys 1, key_older_than_90d {per_key}\n")),
            "{}",
            out.stderr
        );
        let member_root = out
            .users
            .iter()
            .find(|u| u["account_id"] == "222222222222" && u["username"] == "<root_account>")
            .unwrap();
        assert!(
            member_root["note"].contains("RootCredentialsManagement"),
            "{member_root:?}"
        );
        assert_eq!(member_root["arn"], "arn:aws:iam::222222222222:root");
        // The user row's own columns.
        let setup = out
            .users
            .iter()
            .find(|u| u["username"] == "setup-key")
            .unwrap();
        assert_eq!(
            (
                setup["password_enabled"].as_str(),
                setup["mfa_active"].as_str(),
                setup["mfa_type"].as_str(),
                setup["mfa_devices"].as_str(),
                setup["active_keys"].as_str(),
                setup["oldest_active_key_age_days"].as_str(),
            ),
            ("true", "true", "Virtual", "1", "1", "5"),
            "{strategy}"
        );
        let idle = out
            .users
            .iter()
            .find(|u| u["username"] == "idle-console")
            .unwrap();
        assert_eq!(
            (
                idle["password_last_used"].as_str(),
                idle["last_activity"].as_str()
            ),
            ("Never", "Never")
        );
    }
}

// Story: AWS reuses a report younger than 4 hours. A key created after it matches no report slot, so its last
// use is asked with GetAccessKeyLastUsed, and only that key's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_newer_than_the_report_is_asked_alone() {
    let now = chrono::Utc::now().timestamp();
    let mut org = verdicts_org(now);
    org.accounts[0].users[2].keys.push(SimKey {
        id: "AKIANEW0000000000001".into(),
        active: true,
        created: now - 600,
        last_used: Some((now - 300, "ec2".into(), "us-west-2".into())),
    });
    let faults = Faults {
        report_age_secs: 3600,
        ..Faults::default()
    };
    let (sim, out, _d) = fast_audit(&org, faults, &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let calls = sim.calls();
    let last_used: Vec<&str> = calls
        .iter()
        .filter(|c| c.action == "iam:GetAccessKeyLastUsed")
        .map(|c| c.detail.as_str())
        .collect();
    assert_eq!(last_used, ["AKIANEW0000000000001"]);
    // The report was reused: one GenerateCredentialReport per account, answered COMPLETE.
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.action == "iam:GenerateCredentialReport")
            .count(),
        2
    );
    let new_key = out
        .keys
        .iter()
        .find(|k| k["access_key_id"] == "AKIANEW0000000000001")
        .unwrap();
    assert_eq!(
        (
            new_key["service_name"].as_str(),
            new_key["last_used_region"].as_str(),
            new_key["source"].as_str()
        ),
        ("ec2", "us-west-2", "credential_report")
    );
    for a in &out.accounts {
        let t = chrono::DateTime::parse_from_rfc3339(&a["credential_report_time"]).unwrap();
        let age = now - t.timestamp();
        assert!(
            (3590..3700).contains(&age),
            "the report is an hour old: {age} s"
        );
    }
}

// Story: a role that may read neither the report nor the account summary nor the virtual MFA devices still
// audits the users with per-user calls; the root row says `unknown` with the AWS error, never blank.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_row_says_unknown_with_the_error_when_nothing_is_allowed() {
    let now = chrono::Utc::now().timestamp();
    let org = verdicts_org(now);
    let member = "222222222222".to_string();
    let faults = Faults {
        deny_credential_report: vec![member.clone()],
        deny_root_checks: vec![member.clone()],
        ..Faults::default()
    };
    let (_sim, out, _d) = fast_audit(&org, faults, &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let root = out
        .users
        .iter()
        .find(|u| u["account_id"] == member && u["username"] == "<root_account>")
        .unwrap();
    assert_eq!(
        (
            root["mfa_active"].as_str(),
            root["mfa_type"].as_str(),
            root["active_keys"].as_str(),
            root["risk"].as_str()
        ),
        ("unknown", "unknown", "unknown", "")
    );
    assert!(
        root["note"].starts_with("unknown: AccessDenied: User: arn:aws:sts::222222222222:assumed-role/IAMAuditRole/iam-audit is not authorized to perform: iam:GetAccountSummary"),
        "{}",
        root["note"]
    );
    let row = out
        .accounts
        .iter()
        .find(|a| a["account_id"] == member)
        .unwrap();
    assert_eq!(row["audit_status"], "audited");
    assert_eq!(
        (row["root_access_keys"].as_str(), row["root_mfa"].as_str()),
        ("unknown", "unknown")
    );
    for action in [
        "iam:GenerateCredentialReport",
        "iam:GetAccountSummary",
        "iam:ListVirtualMFADevices",
    ] {
        assert!(
            row["error"].contains(&format!("({action})")),
            "{action}: {}",
            row["error"]
        );
    }
    // The users are all there, with per-user calls.
    assert_eq!(
        out.users
            .iter()
            .filter(|u| u["account_id"] == member)
            .count(),
        6 + 1
    );
}
