//! The binary against our simulator: LookupEvents paging and parameters, throttling, faults, denied
//! accounts, expiring credentials and the read-only guarantee, checked from the reports and the
//! simulator's call log.

use std::collections::{BTreeMap, BTreeSet};

use iam_audit::sim::{Call, Faults, Scenario, Sim, SimAccount, SimEvent, SimOrg};

use crate::support::*;

fn by_account(rows: &[BTreeMap<String, String>]) -> BTreeMap<String, BTreeMap<String, String>> {
    rows.iter()
        .map(|r| (r["account_id"].clone(), r.clone()))
        .collect()
}

// Story: LookupEvents is called with one EventName attribute per call, the run's window, every page, and
// nothing outside the window ends up in the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_events_reads_every_page_with_one_attribute_in_the_window() {
    let now = chrono::Utc::now().timestamp();
    let day = 86_400;
    let ev = |i: usize, name: &str, age: i64| SimEvent {
        id: format!("ev-{name}-{i:03}"),
        name: name.into(),
        region: "us-east-1".into(),
        time: now - age,
        username: (!i.is_multiple_of(7)).then(|| "root-admin".into()),
        resources: vec![format!("user-{i}")],
        access_key_id: None,
        source_ip: "192.0.2.1".into(),
        source: "iam.amazonaws.com".into(),
        actor: None,
        key_id: None,
        key_user: None,
    };
    let mut events: Vec<SimEvent> = (0..130)
        .map(|i| ev(i, "CreateUser", 3600 + i as i64 * 60))
        .collect();
    events.extend((0..4).map(|i| ev(i, "DeleteLoginProfile", 2 * day)));
    // Outside the 10-day window, and an event name we do not track.
    events.extend((0..3).map(|i| ev(900 + i, "CreateUser", 15 * day)));
    events.push(ev(999, "AttachUserPolicy", day));
    // Another region, only searched when asked for.
    let mut west = ev(500, "DeleteUser", day);
    west.region = "eu-west-1".into();
    events.push(west);
    let org = SimOrg {
        management_account: "999999999999".into(),
        ous: vec![],
        accounts: vec![SimAccount {
            id: "111111111111".into(),
            parent: String::new(),
            name: "events".into(),
            status: "ACTIVE".into(),
            users: vec![],
            events,
            root: Default::default(),
        }],
    };
    let sim = Sim::start(org, Faults::default()).await.unwrap();
    let (out, _dir) = audit(&sim, &["--days", "10", "--regions", "us-east-1,eu-west-1"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ids: BTreeSet<String> = out.events.iter().map(|e| e["event_id"].clone()).collect();
    assert_eq!(ids.len(), 130 + 4 + 1);
    assert_eq!(out.events.len(), 135, "no event twice");
    assert!(ids.contains("ev-DeleteUser-500"));
    assert!(!ids
        .iter()
        .any(|i| i.starts_with("ev-CreateUser-90") || i.contains("AttachUserPolicy")));
    let west = out
        .events
        .iter()
        .find(|e| e["event_id"] == "ev-DeleteUser-500")
        .unwrap();
    assert_eq!(west["region"], "eu-west-1");
    let anon = out
        .events
        .iter()
        .find(|e| e["event_id"] == "ev-CreateUser-007")
        .unwrap();
    assert_eq!(anon["username"], "N/A");
    assert_eq!(anon["resources"], "user-7");
    assert_eq!(anon["source_ip_address"], "192.0.2.1");

    let lookups: Vec<Call> = sim
        .calls()
        .into_iter()
        .filter(|c| c.action == "cloudtrail:LookupEvents")
        .collect();
    assert!(lookups.iter().all(|c| c.outcome == "ok"), "{lookups:?}");
    assert!(
        lookups.iter().all(|c| !c.detail.contains(';')),
        "one attribute per call"
    );
    // us-east-1: CreateUser in 3 pages (50+50+30), one page for each other name; eu-west-1: 5 pages.
    let create_user_east = lookups
        .iter()
        .filter(|c| c.region == "us-east-1" && c.detail == "EventName=CreateUser")
        .count();
    assert_eq!(create_user_east, 3);
    assert_eq!(lookups.len(), 3 + 4 + 5);
    let accounts = by_account(&out.accounts);
    assert_eq!(accounts["111111111111"]["events"], "135");
    assert_read_only(&sim.calls());
}

// Story: quotas far below what the client asks for give throttling answers, and retries still deliver
// every key and event; the run still exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_loses_nothing() {
    let scenario = Scenario::sized(3, 4, 15, 120);
    let org = scenario.generate();
    let faults = Faults {
        iam_rate: 20.0,
        iam_burst: 5.0,
        cloudtrail_rate: 2.0,
        cloudtrail_burst: 1.0,
        ..Faults::default()
    };
    let (sim, out, _dir) = fast_audit(
        &org,
        faults,
        &[
            "--cloudtrail-rate",
            "50",
            "--cloudtrail-burst",
            "20",
            "--initial-backoff-ms",
            "50",
            "--max-backoff-ms",
            "1000",
            "--max-attempts",
            "20",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let calls = sim.calls();
    let throttled = calls
        .iter()
        .filter(|c| c.outcome.starts_with("Throttling"))
        .count();
    assert!(
        throttled > 0,
        "the simulator should have throttled this client"
    );
    assert_eq!(got_keys(&out), expected_keys(&org, &[]));
    assert_eq!(got_event_ids(&out), expected_event_ids(&org, &[]));
    assert!(out.accounts.iter().all(|a| a["audit_status"] == "audited"));
    // The summary counts exactly the throttled answers the simulator gave.
    assert!(
        out.stderr.contains(&format!(" ({throttled} throttled, ")),
        "the summary should say {throttled} throttled:\n{}",
        out.stderr
    );
}

// Story: 5% of calls fail with 500s, some connections reset, one account refuses AssumeRole and one denies
// LookupEvents: everything reachable is in the reports, the denied accounts are named with their AWS error,
// and the exit code is 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_and_denied_accounts_lose_nothing_reachable() {
    let scenario = Scenario {
        seed: 11,
        accounts: 8,
        suspended_every: 8,
        users_min: 3,
        users_max: 12,
        events_per_account: 70,
        ..Scenario::default()
    };
    let org = scenario.generate();
    let denied_role = org.accounts[1].id.clone();
    let denied_ct = org.accounts[2].id.clone();
    let faults = Faults {
        error_rate: 0.05,
        reset_rate: 0.02,
        deny_assume_role: vec![denied_role.clone()],
        deny_lookup_events: vec![denied_ct.clone()],
        ..Faults::default()
    };
    let (sim, out, _dir) = fast_audit(
        &org,
        faults,
        &[
            "--cloudtrail-rate",
            "50",
            "--initial-backoff-ms",
            "20",
            "--max-backoff-ms",
            "200",
        ],
    )
    .await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(
        got_keys(&out),
        expected_keys(&org, std::slice::from_ref(&denied_role))
    );
    assert_eq!(
        got_event_ids(&out),
        expected_event_ids(&org, &[denied_role.clone(), denied_ct.clone()])
    );
    let accounts = by_account(&out.accounts);
    assert_eq!(
        accounts.len(),
        8,
        "every account of the organization is reported"
    );
    let skipped = &accounts[&denied_role];
    assert_eq!(skipped["audit_status"], "skipped");
    assert!(
        skipped["error"].starts_with(&format!(
            "AccessDenied: User: arn:aws:iam::999999999999:user/auditor is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::{denied_role}:role/IAMAuditRole"
        )),
        "{}",
        skipped["error"]
    );
    let partial = &accounts[&denied_ct];
    assert_eq!(partial["audit_status"], "partial");
    assert_eq!(partial["iam_status"], "ok");
    assert_eq!(partial["cloudtrail_status"], "failed");
    assert!(
        partial["error"].starts_with("AccessDeniedException: "),
        "{}",
        partial["error"]
    );
    let suspended = &accounts[&org.accounts[7].id];
    assert_eq!(suspended["audit_status"], "not_active");
    assert_eq!(suspended["account_status"], "SUSPENDED");
    for (id, a) in &accounts {
        if id != &denied_role && id != &denied_ct && a["account_status"] == "ACTIVE" {
            assert_eq!(a["audit_status"], "audited", "{a:?}");
        }
    }
    assert!(
        out.stderr.contains("1 partial, 1 skipped"),
        "{}",
        out.stderr
    );
    let calls = sim.calls();
    assert!(calls.iter().any(|c| c.outcome == "Reset"));
    assert!(calls
        .iter()
        .any(|c| c.outcome.contains("Failure") || c.outcome.contains("InternalServerError")));
    assert_read_only(&calls);
}

// Story: sessions that expire every 2 seconds, in accounts that take longer than that, are renewed (and an
// ExpiredToken answer is retried with fresh credentials): nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiring_credentials_are_refreshed() {
    let scenario = Scenario::sized(9, 3, 25, 30);
    let org = scenario.generate();
    let faults = Faults {
        latency_ms: 5,
        credential_lifetime_secs: 2,
        ..Faults::default()
    };
    let sim = Sim::start(org.clone(), faults).await.unwrap();
    // ~100 IAM calls per account at 25/s: about 4 s, two session lifetimes.
    let (out, _dir) = audit(&sim, &["--iam-rate", "25", "--iam-burst", "1"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(got_keys(&out), expected_keys(&org, &[]));
    let assumes = sim
        .calls()
        .iter()
        .filter(|c| c.action == "sts:AssumeRole")
        .count();
    assert!(
        assumes >= 2 * 3,
        "credentials were renewed: {assumes} AssumeRole calls"
    );
}

// Story: ListAccounts pages (20 at most, one page empty with a token) and IAM pages (fewer users than
// asked, with IsTruncated) are all read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_of_accounts_and_users_is_read() {
    let scenario = Scenario {
        seed: 13,
        accounts: 45,
        suspended_every: 0,
        users_min: 0,
        users_max: 3,
        events_per_account: 0,
        ..Scenario::default()
    };
    let mut org = scenario.generate();
    // One account with 250 users: three IAM pages.
    org.accounts[0].users = Scenario::sized(2, 1, 250, 0)
        .generate()
        .accounts
        .remove(0)
        .users;
    let sim = Sim::start(org.clone(), Faults::default()).await.unwrap();
    // Per-user calls: ListUsers is what pages here.
    let (out, _dir) = audit(
        &sim,
        &[
            "--strategy",
            "api",
            "--iam-rate",
            "1000",
            "--iam-burst",
            "100",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.accounts.len(), 45);
    assert_eq!(
        by_account(&out.accounts)[&org.accounts[0].id]["users"],
        "250"
    );
    assert_eq!(got_keys(&out), expected_keys(&org, &[]));
    let calls = sim.calls();
    let list_accounts = calls
        .iter()
        .filter(|c| c.action == "organizations:ListAccounts")
        .count();
    assert_eq!(list_accounts, 4, "3 pages of 20 + the empty page");
    let list_users_first = calls
        .iter()
        .filter(|c| c.action == "iam:ListUsers" && c.account == org.accounts[0].id)
        .count();
    assert_eq!(list_users_first, 3);
}

// Story: one account whose IAM quota is far below the client's rate is throttled hard; thanks to its own
// retry partition, the other accounts keep their pace and every account's rows arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_account_does_not_slow_the_others() {
    let scenario = Scenario::sized(17, 5, 20, 0);
    let org = scenario.generate();
    let noisy = org.accounts[0].id.clone();
    let faults = Faults {
        iam_rate: 100.0,
        iam_burst: 100.0,
        throttled_accounts: vec![noisy.clone()],
        throttled_accounts_iam_rate: 8.0,
        ..Faults::default()
    };
    let sim = Sim::start(org.clone(), faults).await.unwrap();
    let (out, _dir) = audit(
        &sim,
        &[
            // Per-user calls: enough IAM calls for the noisy account's quota to bite.
            "--strategy",
            "api",
            "--iam-rate",
            "40",
            "--iam-burst",
            "5",
            "--initial-backoff-ms",
            "100",
            "--max-backoff-ms",
            "1000",
            "--max-attempts",
            "30",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(got_keys(&out), expected_keys(&org, &[]));
    let calls = sim.calls();
    let noisy_throttled = calls
        .iter()
        .filter(|c| c.account == noisy && c.outcome == "Throttling")
        .count();
    assert!(
        noisy_throttled >= 10,
        "the noisy account was throttled hard: {noisy_throttled}"
    );
    // Measured against each other in the same call log, so a slow machine slows both sides alike. A retry
    // limiter shared with the noisy account would hold every account near its 8/s; with their own
    // partitions the others are never throttled and finish long before it.
    // Answered IAM calls (throttled attempts are not progress).
    let iam_calls = |id: &str| -> Vec<f64> {
        calls
            .iter()
            .filter(|c| c.account == id && c.action.starts_with("iam:") && c.outcome == "ok")
            .map(|c| c.at_ms)
            .collect()
    };
    let noisy_times = iam_calls(&noisy);
    let noisy_last = noisy_times.iter().cloned().fold(f64::MIN, f64::max);
    let noisy_first = noisy_times.iter().cloned().fold(f64::MAX, f64::min);
    for a in org.accounts.iter().skip(1) {
        assert!(
            calls
                .iter()
                .all(|c| c.account != a.id || c.outcome != "Throttling"),
            "{} was throttled",
            a.id
        );
        let times = iam_calls(&a.id);
        let last = times.iter().cloned().fold(f64::MIN, f64::max);
        let first = times.iter().cloned().fold(f64::MAX, f64::min);
        assert!(
            last < noisy_last,
            "{} finished after the throttled account",
            a.id
        );
        // Calls per millisecond, each account over its own span: the others go at least twice as fast
        // as the throttled one (at 40/s against at most 8/s when unhindered).
        let rate = times.len() as f64 / (last - first).max(1.0);
        let noisy_rate = noisy_times.len() as f64 / (noisy_last - noisy_first).max(1.0);
        assert!(
            rate > 2.0 * noisy_rate,
            "{} made IAM calls at {:.1}/s, the throttled account at {:.1}/s",
            a.id,
            rate * 1000.0,
            noisy_rate * 1000.0
        );
    }
}

// Story: from the server's side, no account ever goes over its configured rate: in every 1-second window
// at most burst + rate IAM calls (and LookupEvents calls per region), with one call of slack for arrival
// jitter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_account_exceeds_its_configured_rate() {
    let scenario = Scenario {
        seed: 23,
        accounts: 4,
        suspended_every: 0,
        users_min: 30,
        users_max: 30,
        events_per_account: 200,
        event_regions: vec!["us-east-1".into(), "eu-west-1".into()],
        ..Scenario::default()
    };
    let org = scenario.generate();
    let sim = Sim::start(
        org.clone(),
        Faults {
            latency_ms: 1,
            ..Faults::default()
        },
    )
    .await
    .unwrap();
    let (out, _dir) = audit(
        &sim,
        &[
            // Per-user calls: ~100 IAM calls an account, enough to measure a rate.
            "--strategy",
            "api",
            "--iam-rate",
            "25",
            "--iam-burst",
            "5",
            "--cloudtrail-rate",
            "3",
            "--cloudtrail-burst",
            "2",
            "--regions",
            "us-east-1,eu-west-1",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(got_event_ids(&out), expected_event_ids(&org, &[]));
    let calls = sim.calls();
    // The bucket grants at most `burst + rate × t` calls in any t seconds. Measured over each account's
    // whole run (first to last arrival, from the simulator's log), with half a second allowed for a loaded
    // machine delaying the first arrival; an unpaced account sends its ~100 IAM calls in a fraction of
    // a second.
    let within_rate = |times: &[f64], rate: f64, burst: f64| {
        let first = times.iter().cloned().fold(f64::INFINITY, f64::min);
        let last = times.iter().cloned().fold(0.0, f64::max);
        let span_s = (last - first).max(0.0) / 1000.0;
        let allowed = burst + rate * (span_s + 0.5);
        (times.len() as f64 <= allowed, span_s, allowed)
    };
    for a in &org.accounts {
        let iam: Vec<f64> = calls
            .iter()
            .filter(|c| c.account == a.id && c.action.starts_with("iam:"))
            .map(|c| c.at_ms)
            .collect();
        assert!(iam.len() >= 60, "{}: {} IAM calls", a.id, iam.len());
        let (ok, span, allowed) = within_rate(&iam, 25.0, 5.0);
        assert!(
            ok,
            "{}: {} IAM calls in {span:.2} s, at most {allowed:.0} allowed at 25/s",
            a.id,
            iam.len()
        );
        for region in ["us-east-1", "eu-west-1"] {
            let ct: Vec<f64> = calls
                .iter()
                .filter(|c| {
                    c.account == a.id && c.action == "cloudtrail:LookupEvents" && c.region == region
                })
                .map(|c| c.at_ms)
                .collect();
            let (ok, span, allowed) = within_rate(&ct, 3.0, 2.0);
            assert!(
                ok,
                "{} {region}: {} LookupEvents calls in {span:.2} s, at most {allowed:.0} allowed at 3/s",
                a.id,
                ct.len()
            );
        }
    }
}

// Story: slow answers (a share of calls 1.5 s late) and resets delay the run but lose nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_answers_lose_nothing() {
    let scenario = Scenario::sized(29, 3, 8, 20);
    let org = scenario.generate();
    let faults = Faults {
        slow_rate: 0.05,
        slow_ms: 1500,
        reset_rate: 0.03,
        ..Faults::default()
    };
    let sim = Sim::start(org.clone(), faults).await.unwrap();
    let (out, _dir) = audit(
        &sim,
        &[
            "--iam-rate",
            "200",
            "--initial-backoff-ms",
            "20",
            "--max-backoff-ms",
            "200",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(got_keys(&out), expected_keys(&org, &[]));
    assert_eq!(got_event_ids(&out), expected_event_ids(&org, &[]));
}

// Story: an account whose ListAccessKeys answers are garbled (truncated XML, which the SDK parses into keys
// without ids) is reported `partial` with a MalformedResponse error instead of writing bogus rows, and the
// other accounts' rows are all there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_answers_are_reported_not_lost() {
    let org = Scenario::sized(31, 3, 4, 5).generate();
    let broken = org.accounts[0].id.clone();
    let faults = Faults {
        malformed_accounts: vec![broken.clone()],
        ..Faults::default()
    };
    let sim = Sim::start(org.clone(), faults).await.unwrap();
    let (out, _dir) = audit(&sim, &["--iam-rate", "200"]).await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(
        got_keys(&out),
        expected_keys(&org, std::slice::from_ref(&broken))
    );
    let accounts = by_account(&out.accounts);
    let row = &accounts[&broken];
    assert_eq!(row["audit_status"], "partial");
    assert_eq!(row["iam_status"], "partial");
    assert!(
        row["error"].starts_with("MalformedResponse: ListAccessKeys for user user-00")
            && row["error"].contains("returned a key without an AccessKeyId (iam:ListAccessKeys)"),
        "{}",
        row["error"]
    );
    assert!(
        out.keys.iter().all(|k| !k["access_key_id"].is_empty()),
        "no row without a key id"
    );
}

// Story: LookupEvents by event name also returns Identity Center's, ElastiCache's, ... CreateUser/DeleteUser.
// By default only IAM's are kept, each row says its source, and the accounts report counts the others;
// --all-event-sources keeps them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_iam_events_are_kept_and_the_others_counted() {
    let org = Scenario::sized(61, 2, 2, 120).generate();
    let other = |a: &SimAccount| {
        a.events
            .iter()
            .filter(|e| e.source != "iam.amazonaws.com")
            .count()
    };
    assert!(
        org.accounts.iter().all(|a| other(a) > 0),
        "the scenario has other services' events"
    );
    let (_sim, out, _d) = fast_audit(&org, Faults::default(), &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(got_event_ids(&out), expected_event_ids(&org, &[]));
    assert!(out
        .events
        .iter()
        .all(|e| e["event_source"] == "iam.amazonaws.com"));
    for a in &org.accounts {
        let row = out
            .accounts
            .iter()
            .find(|r| r["account_id"] == a.id)
            .unwrap();
        assert_eq!(row["events_other_sources"], other(a).to_string());
        assert_eq!(row["audit_status"], "audited");
    }
    let sim = Sim::start(org.clone(), Faults::default()).await.unwrap();
    let (all, _d) = audit(
        &sim,
        &[
            "--all-event-sources",
            "--iam-rate",
            "200",
            "--iam-burst",
            "50",
        ],
    )
    .await;
    assert_eq!(all.code, 0, "{}", all.stderr);
    let total: usize = org.accounts.iter().map(|a| a.events.len()).sum();
    assert_eq!(all.events.len(), total);
    assert!(all
        .events
        .iter()
        .any(|e| e["event_source"] == "sso-directory.amazonaws.com"));
    assert!(all
        .accounts
        .iter()
        .all(|r| r["events_other_sources"] == "0"));
}

// Story: each account's role is assumed in the partition its ARN names, a full-ARN role keeps its partition
// and path, and CloudTrail is searched in the partition's IAM home region by default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_come_from_the_account_arns() {
    let org = Scenario::sized(67, 2, 1, 0).generate();
    let gov = org.accounts[1].id.clone();
    let faults = Faults {
        us_gov_accounts: vec![gov.clone()],
        ..Faults::default()
    };
    let sim = Sim::start(org.clone(), faults.clone()).await.unwrap();
    let (out, _d) = audit(&sim, &["--region", "us-gov-west-1"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let calls = sim.calls();
    let assumed: BTreeSet<String> = calls
        .iter()
        .filter(|c| c.action == "sts:AssumeRole")
        .map(|c| c.detail.clone())
        .collect();
    let first = &org.accounts[0].id;
    assert_eq!(
        assumed,
        [
            format!("arn:aws:iam::{first}:role/IAMAuditRole"),
            format!("arn:aws-us-gov:iam::{gov}:role/IAMAuditRole"),
        ]
        .into_iter()
        .collect()
    );
    let regions: BTreeSet<&str> = calls
        .iter()
        .filter(|c| c.action == "cloudtrail:LookupEvents")
        .map(|c| c.region.as_str())
        .collect();
    assert_eq!(regions, ["us-gov-west-1"].into_iter().collect());

    let sim = Sim::start(org.clone(), faults).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let endpoint = sim.endpoint();
    let out = run_bin(
        &[
            "--role",
            "arn:aws-us-gov:iam::999999999999:role/audit/Reader",
            "--no-progress",
            "--output-dir",
            dir.path().to_str().unwrap(),
        ],
        &[FAKE_KEY, FAKE_SECRET, ("AWS_ENDPOINT_URL", &endpoint)],
        dir.path(),
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let assumed: BTreeSet<String> = sim
        .calls()
        .iter()
        .filter(|c| c.action == "sts:AssumeRole")
        .map(|c| c.detail.clone())
        .collect();
    assert!(
        assumed.contains(&format!("arn:aws-us-gov:iam::{first}:role/audit/Reader")),
        "{assumed:?}"
    );
}

// Story: a region in --regions that accepts connections and never answers (a black hole) cannot hold the
// run: each call has a timeout, each account a budget; past it the account is partial with a Timeout that
// names the action, and everything else it read is in the reports. The budget leaves the IAM part (a few
// calls) ample time on a loaded machine; the black-holed region alone would retry for minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_region_cannot_hold_the_run() {
    let org = Scenario::sized(71, 2, 3, 20).generate();
    // The role also lacks every optional action (the README's six-action policy): their notes must not
    // push the timeout out of the error cell.
    let all: Vec<String> = org.accounts.iter().map(|a| a.id.clone()).collect();
    let faults = Faults {
        black_hole_regions: vec!["eu-west-1".into()],
        deny_credential_report: all.clone(),
        deny_root_checks: all.clone(),
        deny_other_credentials: all,
        ..Faults::default()
    };
    let sim = Sim::start(org.clone(), faults).await.unwrap();
    let started = std::time::Instant::now();
    let (out, _d) = audit(
        &sim,
        &[
            "--regions",
            "us-east-1,eu-west-1",
            "--call-timeout-secs",
            "2",
            "--account-budget-secs",
            "15",
            "--iam-rate",
            "200",
            "--iam-burst",
            "50",
        ],
    )
    .await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(120),
        "the run ended"
    );
    assert_eq!(
        got_keys(&out),
        expected_keys(&org, &[]),
        "the IAM part is whole"
    );
    for a in &out.accounts {
        assert_eq!(a["audit_status"], "partial", "{a:?}");
        assert_eq!(a["iam_status"], "ok");
        // What made it partial comes first, then the notes of the optional actions.
        assert!(
            a["error"].starts_with("Timeout: the account's budget of 15 s ran out (--account-budget-secs) (cloudtrail:LookupEvents eu-west-1)"),
            "{}",
            a["error"]
        );
        assert!(
            a["error"].contains("(iam:GenerateCredentialReport)"),
            "{}",
            a["error"]
        );
    }
    // us-east-1's events are in.
    let east: BTreeSet<String> = out
        .events
        .iter()
        .filter(|e| e["region"] == "us-east-1")
        .map(|e| e["event_id"].clone())
        .collect();
    assert!(!east.is_empty());
}

// Story: a mixed organization (Control Tower accounts, accounts with the dedicated role, one with neither)
// is audited in one run: each account tries the roles in order and reports the one that worked; the
// management account, which has neither, is audited with the caller's own credentials unless told not to,
// and never when those credentials are another account's (a delegated administrator's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_tried_in_order_and_the_management_account_is_audited_as_the_caller() {
    let mut org = Scenario::sized(79, 3, 3, 5).generate();
    let mut management = org.accounts[2].clone();
    management.id = org.management_account.clone();
    management.name = "management".into();
    org.accounts.push(management);
    let ids: Vec<String> = org.accounts.iter().map(|a| a.id.clone()).collect();
    let mut account_roles = std::collections::BTreeMap::new();
    account_roles.insert(ids[0].clone(), vec!["AWSControlTowerExecution".to_string()]);
    account_roles.insert(
        ids[1].clone(),
        vec![
            "IAMAuditRole".to_string(),
            "AWSControlTowerExecution".to_string(),
        ],
    );
    account_roles.insert(ids[2].clone(), vec![]);
    account_roles.insert(ids[3].clone(), vec![]);
    let faults = Faults {
        account_roles,
        ..Faults::default()
    };
    let roles = "IAMAuditRole,AWSControlTowerExecution";
    let run = |extra: Vec<&'static str>| {
        let (org, mut faults) = (org.clone(), faults.clone());
        async move {
            if extra.contains(&"--delegated") {
                faults.caller_account = "888888888888".into();
            }
            let extra: Vec<&str> = extra.into_iter().filter(|a| *a != "--delegated").collect();
            let sim = Sim::start(org, faults).await.unwrap();
            let dir = tempfile::tempdir().unwrap();
            let endpoint = sim.endpoint();
            let mut args = vec![
                "--roles",
                roles,
                "--no-progress",
                "--output-dir",
                dir.path().to_str().unwrap(),
            ];
            args.extend(extra);
            let out = run_bin(
                &args,
                &[FAKE_KEY, FAKE_SECRET, ("AWS_ENDPOINT_URL", &endpoint)],
                dir.path(),
            )
            .await;
            (out, sim.calls())
        }
    };
    let (out, calls) = run(vec![]).await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    let by_id: BTreeMap<&str, &BTreeMap<String, String>> = out
        .accounts
        .iter()
        .map(|a| (a["account_id"].as_str(), a))
        .collect();
    let used = |i: usize| {
        (
            by_id[ids[i].as_str()]["audit_status"].as_str(),
            by_id[ids[i].as_str()]["role_used"].as_str(),
        )
    };
    assert_eq!(used(0), ("audited", "AWSControlTowerExecution"));
    assert_eq!(used(1), ("audited", "IAMAuditRole"));
    assert_eq!(used(2), ("skipped", ""));
    assert_eq!(used(3), ("audited", "caller"));
    let skipped = &by_id[ids[2].as_str()]["error"];
    for role in ["IAMAuditRole", "AWSControlTowerExecution"] {
        assert!(
            skipped.contains(&format!(
                "(sts:AssumeRole arn:aws:iam::{}:role/{role})",
                ids[2]
            )),
            "{skipped}"
        );
    }
    assert!(skipped.starts_with("AccessDenied: "), "{skipped}");
    // Account 0 tried IAMAuditRole first, then Control Tower's role.
    let tried: Vec<&str> = calls
        .iter()
        .filter(|c| c.action == "sts:AssumeRole" && c.detail.contains(&ids[0]))
        .map(|c| c.outcome.as_str())
        .collect();
    assert_eq!(tried, ["AccessDenied", "ok"]);
    // The management account's keys are read with the caller's credentials.
    assert!(out.keys.iter().any(|k| k["account_id"] == ids[3]));

    let (out, _) = run(vec!["--no-management-as-caller"]).await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    let m = out
        .accounts
        .iter()
        .find(|a| a["account_id"] == ids[3])
        .unwrap();
    assert_eq!(
        (m["audit_status"].as_str(), m["role_used"].as_str()),
        ("skipped", "")
    );

    // Run from a delegated administrator, the caller's credentials would read its own users: the
    // management account is skipped with the reason and the fix, and none of its IAM is read.
    let (out, calls) = run(vec!["--delegated"]).await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    let m = out
        .accounts
        .iter()
        .find(|a| a["account_id"] == ids[3])
        .unwrap();
    assert_eq!(
        (m["audit_status"].as_str(), m["role_used"].as_str()),
        ("skipped", "")
    );
    assert!(
        m["error"].starts_with(&format!(
            "CallerIsNotTheAccount: no audit role could be assumed here, and the caller's own credentials belong to account 888888888888, not {}: deploy the audit role in this account",
            ids[3]
        )),
        "{}",
        m["error"]
    );
    assert!(!out.keys.iter().any(|k| k["account_id"] == ids[3]));
    assert!(
        !calls.iter().any(|c| c.by_caller
            && c.action.starts_with("iam:")
            && c.action != "iam:ListOrganizationsFeatures"),
        "the caller read IAM"
    );
}

// Story: a user deleted while the audit runs (listed, then gone) is a normal race: a `Deleted` note in the
// accounts report, no row, and the account is still `audited`, with either strategy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_deleted_during_the_audit_is_a_note() {
    let org = Scenario::sized(89, 1, 6, 0).generate();
    let gone = org.accounts[0]
        .users
        .iter()
        .find(|u| !u.keys.is_empty())
        .unwrap()
        .name
        .clone();
    let faults = Faults {
        vanished_users: vec![gone.clone()],
        report_delay_ms: 0,
        ..Faults::default()
    };
    for strategy in ["api", "credential_report"] {
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
        let row = &out.accounts[0];
        assert_eq!(row["audit_status"], "audited", "{strategy}");
        assert!(
            row["error"].contains(&format!("Deleted: user {gone} was deleted during the audit (a note, not a failure) (iam:ListAccessKeys)")),
            "{strategy}: {}",
            row["error"]
        );
        let escaped = if gone.starts_with(['+', '@']) {
            format!("'{gone}")
        } else {
            gone.clone()
        };
        assert!(
            !out.keys.iter().any(|k| k["username"] == escaped),
            "{strategy}"
        );
        assert!(
            !out.users.iter().any(|u| u["username"] == escaped),
            "{strategy}"
        );
        assert_eq!(
            out.users.len(),
            6 - 1 + 1,
            "{strategy}: the others and the root"
        );
    }
}

// Story: a team audits part of the organization: accounts chosen by id or name glob, exclusions winning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_filters_choose_what_is_audited() {
    let org = Scenario::sized(97, 4, 1, 0).generate();
    let sim = Sim::start(org.clone(), Faults::default()).await.unwrap();
    let (out, _d) = audit(
        &sim,
        &[
            "--include-accounts",
            &format!("account-000*,{}", org.accounts[3].id),
            "--exclude-accounts",
            "account-0001",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ids: BTreeSet<&str> = out
        .accounts
        .iter()
        .map(|a| a["account_id"].as_str())
        .collect();
    let want: BTreeSet<&str> = [0, 2, 3]
        .iter()
        .map(|&i| org.accounts[i].id.as_str())
        .collect();
    assert_eq!(ids, want);
    assert!(
        out.stderr.contains("; 1 left out by the account filters"),
        "{}",
        out.stderr
    );
    assert!(!sim
        .calls()
        .iter()
        .any(|c| c.detail.contains(&org.accounts[1].id)));
}

// Story: the accounts report's ou_path comes from the OU tree (every page of it), and --include-ous /
// --exclude-ous pick accounts by OU path glob or OU id, an entry covering the OUs below it; excludes win.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ou_filters_and_ou_paths_follow_the_ou_tree() {
    // 120 accounts: 24 in each of Root, Security, Workloads/Prod, Workloads/Dev and Sandbox, so every
    // parent's accounts take two pages of 20.
    let org = Scenario::sized(101, 120, 0, 0).generate();
    let sim = Sim::start(org.clone(), Faults::default()).await.unwrap();
    let (out, _d) = audit(
        &sim,
        &[
            "--include-ous",
            "Root/Workloads",
            "--exclude-ous",
            "ou-sim0-dev00000",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let want: BTreeSet<&str> = org
        .accounts
        .iter()
        .filter(|a| a.parent == "ou-sim0-prod0000")
        .map(|a| a.id.as_str())
        .collect();
    assert_eq!(want.len(), 24);
    let got: BTreeSet<&str> = out
        .accounts
        .iter()
        .map(|a| a["account_id"].as_str())
        .collect();
    assert_eq!(got, want);
    assert!(out
        .accounts
        .iter()
        .all(|a| a["ou_path"] == "Root/Workloads/Prod" && a["audit_status"] == "audited"));
    assert!(
        out.stderr.contains("; 96 left out by the account filters"),
        "{}",
        out.stderr
    );
    let calls = sim.calls();
    let count = |action: &str| calls.iter().filter(|c| c.action == action).count();
    assert_eq!(count("organizations:ListRoots"), 1);
    // The tree is read twice: the second walk confirms the first (docs/operations.md).
    assert_eq!(
        count("organizations:ListOrganizationalUnitsForParent"),
        2 * 6,
        "the root and each of the five OUs, twice"
    );
    assert_eq!(
        count("organizations:ListAccountsForParent"),
        2 * 11,
        "two pages for each parent holding 24 accounts, one for Workloads, twice"
    );

    // Without filters every account gets its path, the root's own accounts `Root`.
    let small = Scenario::sized(102, 6, 0, 0).generate();
    let sim = Sim::start(small.clone(), Faults::default()).await.unwrap();
    let (out, _d) = audit(&sim, &["--include-ous", "r-sim0"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let paths: BTreeMap<String, String> = out
        .accounts
        .iter()
        .map(|a| (a["account_id"].clone(), a["ou_path"].clone()))
        .collect();
    let path_of = |parent: &str| match parent {
        "" => "Root",
        "ou-sim0-security" => "Root/Security",
        "ou-sim0-prod0000" => "Root/Workloads/Prod",
        "ou-sim0-dev00000" => "Root/Workloads/Dev",
        "ou-sim0-sandbox0" => "Root/Sandbox",
        other => panic!("unexpected OU {other}"),
    };
    let want: BTreeMap<String, String> = small
        .accounts
        .iter()
        .map(|a| (a.id.clone(), path_of(&a.parent).to_string()))
        .collect();
    assert_eq!(paths, want);
}

// Story: a policy without the OU actions still audits every account, with an empty ou_path and a summary
// line saying why; an OU filter cannot be honoured without them, so that run stops with exit 1 and writes
// no report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_ou_tree_empties_ou_path_and_refuses_ou_filters() {
    let org = Scenario::sized(103, 3, 1, 0).generate();
    let faults = Faults {
        deny_ou_tree: true,
        ..Faults::default()
    };
    let sim = Sim::start(org.clone(), faults.clone()).await.unwrap();
    let (out, _d) = audit(&sim, &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.accounts.len(), 3);
    assert!(out
        .accounts
        .iter()
        .all(|a| a["ou_path"].is_empty() && a["audit_status"] == "audited"));
    assert!(
        out.stderr.contains("ou_path: not read (organizations:ListRoots AccessDeniedException: You don't have permissions to access this resource.); grant organizations:ListRoots, ListOrganizationalUnitsForParent and ListAccountsForParent, or set ou_paths = false"),
        "{}",
        out.stderr
    );

    let sim = Sim::start(org, faults).await.unwrap();
    let (out, _d) = audit(&sim, &["--exclude-ous", "*/Sandbox"]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("error: cannot read the organization's OU tree for the OU filters (organizations:ListRoots AccessDeniedException: You don't have permissions to access this resource.). Grant organizations:ListRoots, organizations:ListOrganizationalUnitsForParent and organizations:ListAccountsForParent"),
        "{}",
        out.stderr
    );
    assert!(out.files.is_empty(), "{:?}", out.files);
    assert!(!sim.calls().iter().any(|c| c.action == "sts:AssumeRole"));
}

// Story: a listing that never ends (IsTruncated with a new Marker on every page) stops at max_pages, and the
// account is partial with a PageLimit error that says what to do; the other accounts are whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_listing_stops_at_the_page_limit_and_says_so() {
    let org = Scenario::sized(104, 2, 3, 0).generate();
    let endless = org.accounts[0].id.clone();
    let faults = Faults {
        endless_users: vec![endless.clone()],
        ..Faults::default()
    };
    let sim = Sim::start(org.clone(), faults).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("iam-audit.toml");
    std::fs::write(&config, "max_pages = 5\n").unwrap();
    let (out, _d) = audit(
        &sim,
        &[
            "--strategy",
            "api",
            "--iam-rate",
            "200",
            "--config",
            config.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    let accounts = by_account(&out.accounts);
    let row = &accounts[&endless];
    assert_eq!(
        (row["audit_status"].as_str(), row["iam_status"].as_str()),
        ("partial", "partial")
    );
    assert!(
        row["error"].contains("PageLimit: ListUsers did not end after 5 pages (max_pages); the rest was not read (iam:ListUsers)")
            && row["error"].contains("raise max_pages in the config file"),
        "{}",
        row["error"]
    );
    let list_users = sim
        .calls()
        .iter()
        .filter(|c| c.action == "iam:ListUsers" && c.account == endless)
        .count();
    assert_eq!(list_users, 5);
    assert_eq!(accounts[&org.accounts[1].id]["audit_status"], "audited");
    assert_eq!(got_keys(&out), expected_keys(&org, &[]));
}

// Story: with the credential report, MFA types come from the report, the virtual devices and the account
// summary's MFADevicesInUse, and ListMFADevices is asked only where a user may hold a hardware key beside
// a virtual device. AWS counts the root user's devices in MFADevicesInUse; an IAM that leaves them out
// costs no call either, and the types are the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mfa_types_from_the_summary_whether_it_counts_the_root_user_or_not() {
    let mut org = Scenario::sized(61, 6, 10, 0).generate();
    for (n, a) in org.accounts.iter_mut().enumerate() {
        let id = a.id.clone();
        // No user mixes a virtual and a hardware device, but in the last account's first MFA user.
        for u in &mut a.users {
            u.mfa.retain(|s| s.contains(":mfa/"));
        }
        a.users[1].mfa = vec![format!("arn:aws:iam::{id}:mfa/{}", a.users[1].name)];
        a.users[2].mfa = vec!["GAHT00000001".into()];
        if n == 5 {
            let fido = format!("arn:aws:iam::{id}:u2f/user/{}/fido", a.users[1].name);
            a.users[1].mfa.push(fido);
        }
        a.root.mfa = match n % 3 {
            0 => vec!["GAHT99999999".into()],
            1 => vec![format!("arn:aws:iam::{id}:mfa/root-account-mfa-device")],
            _ => vec![],
        };
    }
    let mixed = org.accounts[5].id.clone();
    let expected: BTreeSet<(String, String, String)> = org
        .accounts
        .iter()
        .flat_map(|a| {
            let root = (
                a.id.clone(),
                "<root_account>".to_string(),
                match a.root.mfa.first() {
                    None => "None",
                    Some(s) if s.contains(":mfa/") => "Virtual",
                    Some(_) => "Hardware",
                }
                .to_string(),
            );
            a.users
                .iter()
                .map(|u| {
                    let t = if u.mfa.iter().any(|s| !s.contains(":mfa/")) {
                        "Hardware"
                    } else if u.mfa.is_empty() {
                        "None"
                    } else {
                        "Virtual"
                    };
                    let name = if u.name.starts_with(['+', '@']) {
                        format!("'{}", u.name)
                    } else {
                        u.name.clone()
                    };
                    (a.id.clone(), name, t.to_string())
                })
                .chain([root])
                .collect::<Vec<_>>()
        })
        .collect();
    for without_root in [false, true] {
        let faults = Faults {
            report_delay_ms: 0,
            summary_without_root_mfa: without_root,
            ..Faults::default()
        };
        let (sim, out, _d) = fast_audit(&org, faults, &["--strategy", "credential_report"]).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        let got: BTreeSet<(String, String, String)> = out
            .users
            .iter()
            .map(|u| {
                (
                    u["account_id"].clone(),
                    u["username"].clone(),
                    u["mfa_type"].clone(),
                )
            })
            .collect();
        assert_eq!(got, expected, "root counted out: {without_root}");
        let asked: BTreeMap<String, usize> = sim
            .calls()
            .iter()
            .filter(|c| c.action == "iam:ListMFADevices")
            .fold(BTreeMap::new(), |mut m, c| {
                *m.entry(c.account.clone()).or_default() += 1;
                m
            });
        assert_eq!(
            asked.keys().collect::<Vec<_>>(),
            vec![&mixed],
            "root counted out: {without_root}: only the account with a mixed user is asked: {asked:?}"
        );
    }
}

/// The calls an identity with the README's two policies would have been refused: those the simulator
/// refused, and the caller's own calls beyond the management policy's actions (the simulator does not
/// hold the caller to a policy).
fn refused_under_minimal_policy(calls: &[Call]) -> Vec<String> {
    const MANAGEMENT: [&str; 3] = [
        "organizations:ListAccounts",
        "sts:AssumeRole",
        "sts:GetCallerIdentity",
    ];
    calls
        .iter()
        .filter(|c| {
            c.outcome.starts_with("AccessDenied")
                || (c.by_caller && !MANAGEMENT.contains(&c.action.as_str()))
        })
        .map(|c| format!("{} {} {}", c.account, c.action, c.outcome))
        .collect()
}

// Story: the README's six-action policy on 2,000 accounts. Each refused call is an AccessDenied in that
// account's CloudTrail (CIS 4.1's alarm counts them): the run learns each optional action's refusal from
// the first account that refuses it and asks no other, so the whole run makes a handful of refused calls
// instead of eight per account; the inventory is whole; the summary names each action once, and each
// account that went without one says so. With --no-optional-actions not one call is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_six_action_policy_costs_a_handful_of_refused_calls_in_all() {
    let org = Scenario::sized(83, 2_000, 2, 1).generate();
    let all: Vec<String> = org.accounts.iter().map(|a| a.id.clone()).collect();
    let faults = Faults {
        deny_credential_report: all.clone(),
        deny_root_checks: all.clone(),
        deny_other_credentials: all,
        deny_ou_tree: true,
        ..Faults::default()
    };
    let flags = [
        "--iam-rate",
        "5000",
        "--iam-burst",
        "500",
        "--cloudtrail-rate",
        "5000",
        "--cloudtrail-burst",
        "500",
        "--concurrency",
        "64",
        "--event-names",
        "CreateUser",
    ];
    let sim = Sim::start(org.clone(), faults.clone()).await.unwrap();
    let (out, _d) = audit(&sim, &flags).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let refused = refused_under_minimal_policy(&sim.calls());
    assert!(
        refused.len() <= 10,
        "{} refused: {refused:#?}",
        refused.len()
    );
    // One per optional IAM action, and the management account's two optional reads.
    let actions: BTreeSet<&str> = refused
        .iter()
        .map(|r| r.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(
        actions,
        BTreeSet::from([
            "iam:GenerateCredentialReport",
            "iam:GetAccountSummary",
            "iam:ListEntitiesForPolicy",
            "iam:ListOrganizationsFeatures",
            "iam:ListServiceSpecificCredentials",
            "iam:ListSigningCertificates",
            "iam:ListVirtualMFADevices",
            "organizations:ListRoots",
        ])
    );
    assert_eq!(
        got_keys(&out),
        expected_keys(&org, &[]),
        "the inventory is whole"
    );
    let active = org.accounts.iter().filter(|a| a.status == "ACTIVE").count();
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("optional actions refused"))
        .unwrap_or_else(|| panic!("{}", out.stderr));
    for action in [
        "iam:GenerateCredentialReport",
        "iam:GetAccountSummary",
        "iam:ListEntitiesForPolicy",
        "iam:ListServiceSpecificCredentials",
        "iam:ListSigningCertificates",
        "iam:ListVirtualMFADevices",
    ] {
        assert!(
            line.contains(&format!(
                "{action} (refused to IAMAuditRole in 1 accounts, then not asked in {})",
                active - 1
            )),
            "{line}"
        );
    }
    assert!(line
        .ends_with("grant them to the audit role (docs/setup.md) or set optional_actions = false"));
    // The account that refused says so; every other account names it.
    let first = refused
        .iter()
        .find(|r| r.contains("iam:GetAccountSummary"))
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    for a in out
        .accounts
        .iter()
        .filter(|a| a["audit_status"] == "audited")
    {
        let summary_note = if a["account_id"] == first {
            "AccessDenied: ".to_string()
        } else {
            format!("NotAsked: not asked: account {first} refused it to the role IAMAuditRole in this run; the root user's credentials are unknown unless the credential report has them (iam:GetAccountSummary)")
        };
        assert!(a["error"].contains(&summary_note), "{a:?}");
    }

    // Off: not one refused call, the same inventory, and no note about what was not asked (200 of the
    // accounts show it as well as 2,000).
    let mut org = org;
    org.accounts.truncate(200);
    let sim = Sim::start(org.clone(), faults).await.unwrap();
    let mut off = flags.to_vec();
    off.extend(["--no-optional-actions", "--no-ou-paths"]);
    let (out, _d) = audit(&sim, &off).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        refused_under_minimal_policy(&sim.calls()),
        Vec::<String>::new()
    );
    assert_eq!(got_keys(&out), expected_keys(&org, &[]));
    assert!(
        out.accounts.iter().all(|a| a["error"].is_empty()),
        "{:?}",
        out.accounts[0]
    );
    assert!(
        out.stderr
            .contains("optional actions: none asked (optional_actions = false)"),
        "{}",
        out.stderr
    );
}
