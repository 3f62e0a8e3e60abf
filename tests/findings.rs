//! Findings and what changed since the last run, as a user meets them: two runs into one directory of a
//! simulated organization that lives a week between them, checked against what the simulator's two
//! organizations say changed, with the OCSF files checked by outside validators.

use std::collections::{BTreeMap, BTreeSet};

use iam_audit::sim::{Faults, Scenario, Sim, SimOrg};

use crate::support::*;

fn scenario(accounts: usize, epoch: u32) -> SimOrg {
    Scenario {
        seed: 11,
        accounts,
        suspended_every: 12,
        users_min: 2,
        users_max: 7,
        events_per_account: 3,
        epoch,
        ..Scenario::default()
    }
    .generate()
}

fn faults(deny_assume_role: &[&str], deny_lookup_events: &[&str]) -> Faults {
    Faults {
        deny_assume_role: deny_assume_role.iter().map(|s| s.to_string()).collect(),
        deny_lookup_events: deny_lookup_events.iter().map(|s| s.to_string()).collect(),
        report_delay_ms: 20,
        ..Faults::default()
    }
}

/// (change, kind, account, resource, before, after) of the user and key rows the two organizations give,
/// for the accounts audited in both runs.
fn expected_inventory_changes(
    old: &SimOrg,
    new: &SimOrg,
    both_audited: &BTreeSet<String>,
) -> BTreeSet<[String; 6]> {
    let status = |active: bool| if active { "Active" } else { "Inactive" }.to_string();
    let mut out = BTreeSet::new();
    for a in new.accounts.iter().filter(|a| both_audited.contains(&a.id)) {
        let b = old.accounts.iter().find(|b| b.id == a.id).unwrap();
        let users = |acct: &iam_audit::sim::SimAccount| -> BTreeSet<String> {
            acct.users.iter().map(|u| u.name.clone()).collect()
        };
        let keys = |acct: &iam_audit::sim::SimAccount| -> BTreeMap<String, bool> {
            acct.users
                .iter()
                .flat_map(|u| u.keys.iter().map(|k| (k.id.clone(), k.active)))
                .chain(acct.root.keys.iter().map(|k| (k.id.clone(), k.active)))
                .collect()
        };
        let row = |c: &str, k: &str, r: &str, before: String, after: String| {
            [c.into(), k.into(), a.id.clone(), r.into(), before, after]
        };
        let (was, is) = (users(b), users(a));
        for u in is.difference(&was) {
            out.insert(row("new", "user", u, String::new(), "arn".into()));
        }
        for u in was.difference(&is) {
            out.insert(row("resolved", "user", u, "arn".into(), String::new()));
        }
        let (was, is) = (keys(b), keys(a));
        for (id, active) in &is {
            match was.get(id) {
                None => out.insert(row("new", "access_key", id, String::new(), status(*active))),
                Some(before) if before != active => out.insert(row(
                    "changed",
                    "access_key",
                    id,
                    status(*before),
                    status(*active),
                )),
                Some(_) => false,
            };
        }
        for (id, active) in &was {
            if !is.contains_key(id) {
                out.insert(row(
                    "resolved",
                    "access_key",
                    id,
                    status(*active),
                    String::new(),
                ));
            }
        }
    }
    out
}

fn got_inventory_changes(rows: &[BTreeMap<String, String>]) -> BTreeSet<[String; 6]> {
    rows.iter()
        .filter(|r| r["kind"] == "user" || r["kind"] == "access_key")
        .map(|r| {
            // A user's ARN is checked for its shape, then stands as "arn".
            let arn = |v: &String| {
                if v.starts_with(&format!("arn:aws:iam::{}:user/", r["account_id"])) {
                    "arn".to_string()
                } else {
                    v.clone()
                }
            };
            [
                r["change"].clone(),
                r["kind"].clone(),
                r["account_id"].clone(),
                r["resource"].clone(),
                arn(&r["before"]),
                arn(&r["after"]),
            ]
        })
        .collect()
}

/// The finding uids of a findings file by activity (`Create`, `Update`, `Close`).
fn uids_by_activity(findings: &[serde_json::Value]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in findings {
        out.entry(f["activity_name"].as_str().unwrap().to_string())
            .or_default()
            .insert(f["finding_info"]["uid"].as_str().unwrap().to_string());
    }
    out
}

fn account_of(uid: &str) -> &str {
    uid.split('/').nth(1).unwrap()
}

fn finding_rows(rows: &[BTreeMap<String, String>], change: &str) -> BTreeSet<String> {
    rows.iter()
        .filter(|r| r["kind"] == "finding" && r["change"] == change)
        .map(|r| r["finding_uid"].clone())
        .collect()
}

/// Week 1, then week 2 of the same organization into the same directory: account 3 is audited, then its
/// role is gone; account 0 is skipped and account 1 partial both times; the last account leaves the
/// organization. The changes report lists exactly what the simulator changed in the accounts audited
/// twice and nothing for the others; the findings file closes exactly the resolved findings with the uids
/// of the first run; `iam-audit diff` of the two runs says the same.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_run_reports_what_changed_and_closes_what_was_fixed() {
    let (week1, week2) = (scenario(14, 0), scenario(13, 1));
    let id = |n: usize| week1.accounts[n].id.clone();
    let (skipped, partial, lost_role, left) = (id(0), id(1), id(3), id(13));
    let dir = tempfile::tempdir().unwrap();

    let sim = Sim::start(week1.clone(), faults(&[&skipped], &[&partial]))
        .await
        .unwrap();
    let first = fast_audit_in(&sim, dir.path(), &[]).await;
    drop(sim);
    assert_eq!(first.code, 3, "{}", first.stderr); // two accounts not fully audited
    assert_eq!(first.files.len(), 9, "{:?}", first.files);
    assert!(first.changes.is_empty(), "nothing to compare with");
    assert!(
        first
            .stderr
            .contains("no earlier run compared: every finding is new\n"),
        "{}",
        first.stderr
    );
    assert!(assert_valid_ocsf(first.findings_path.as_deref().unwrap()).ends_with(" 0 invalid"));
    let first_uids = uids_by_activity(&first.findings);
    assert_eq!(first_uids.keys().collect::<Vec<_>>(), ["Create"]);
    let first_open = &first_uids["Create"];

    // The stamp is per second: the second run must not reuse the first one's.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let sim = Sim::start(week2.clone(), faults(&[&skipped, &lost_role], &[&partial]))
        .await
        .unwrap();
    let second = fast_audit_in(&sim, dir.path(), &[]).await;
    drop(sim);
    assert_eq!(second.code, 3, "{}", second.stderr);
    assert_eq!(second.files.len(), 18, "{:?}", second.files);
    let verdict = assert_valid_ocsf(second.findings_path.as_deref().unwrap());
    assert!(
        verdict.ends_with(" 0 invalid") || verdict.contains(" 0 invalid ("),
        "{verdict}"
    );

    // Users and keys: exactly the simulator's changes, in the accounts whose IAM inventory was read both
    // times (the partial account's too: only its CloudTrail part failed).
    let both_audited: BTreeSet<String> = week2
        .accounts
        .iter()
        .filter(|a| a.status == "ACTIVE" && ![&skipped, &lost_role].contains(&&a.id))
        .map(|a| a.id.clone())
        .collect();
    let expected = expected_inventory_changes(&week1, &week2, &both_audited);
    assert!(expected.len() > 10, "the week changes enough: {expected:?}");
    assert_eq!(got_inventory_changes(&second.changes), expected);
    // The account whose role is gone: its week (a user deleted, n % 3 == 0) is unknown, not reported.
    let lost = |r: &&BTreeMap<String, String>| r["account_id"] == lost_role;
    let lost_rows: Vec<_> = second.changes.iter().filter(lost).collect();
    assert_eq!(lost_rows.len(), 3, "{lost_rows:?}");
    let account_row = |r: &BTreeMap<String, String>| {
        (
            r["change"].clone(),
            r["kind"].clone(),
            r["before"].clone(),
            r["after"].clone(),
            r["detail"].clone(),
        )
    };
    assert_eq!(
        account_row(lost_rows[0]),
        (
            "changed".into(),
            "account".into(),
            "audited".into(),
            "skipped".into(),
            "audit status".into()
        )
    );
    assert_eq!(
        account_row(lost_rows[1]),
        (
            "not_compared".into(),
            "account".into(),
            "audited".into(),
            "skipped".into(),
            "not fully audited in this run: its users, keys and findings are unknown there, not resolved"
                .into()
        )
    );
    assert_eq!(
        (
            lost_rows[2]["change"].as_str(),
            lost_rows[2]["kind"].as_str(),
            lost_rows[2]["finding_uid"].clone()
        ),
        (
            "new",
            "finding",
            format!("iam-audit/{lost_role}/audit_incomplete/{lost_role}")
        )
    );
    for (who, status) in [(&skipped, "skipped"), (&partial, "partial")] {
        let row = second
            .changes
            .iter()
            .find(|r| &r["account_id"] == who && r["kind"] == "account")
            .unwrap();
        assert_eq!(
            (
                row["change"].as_str(),
                row["before"].as_str(),
                row["after"].as_str()
            ),
            ("not_compared", status, status),
            "{row:?}"
        );
        let why = if who == &partial {
            "CloudTrail's events not fully read in either run: the findings that come from them (who created a key, short-lived keys) are unknown there, not resolved; the IAM inventory is compared"
        } else {
            "not fully audited in either run: its users, keys and findings are unknown there, not resolved"
        };
        assert_eq!(row["detail"], why);
    }
    let left_row = second
        .changes
        .iter()
        .find(|r| r["account_id"] == left && r["kind"] == "account")
        .unwrap();
    assert_eq!(
        (left_row["change"].as_str(), left_row["detail"].as_str()),
        (
            "resolved",
            "no longer in the organization; its findings are resolved with it"
        )
    );

    // Findings: the same uids for the same findings; new ones created, fixed ones closed with the first
    // run's uid; nothing of the account that lost its role is closed.
    let second_uids = uids_by_activity(&second.findings);
    let created = second_uids.get("Create").cloned().unwrap_or_default();
    let updated = second_uids.get("Update").cloned().unwrap_or_default();
    let closed = second_uids.get("Close").cloned().unwrap_or_default();
    let second_open: BTreeSet<String> = created.union(&updated).cloned().collect();
    assert_eq!(
        created,
        second_open.difference(first_open).cloned().collect()
    );
    assert_eq!(
        updated,
        second_open.intersection(first_open).cloned().collect()
    );
    // The partial account's findings close, but for those its unread events would have to say.
    let from_events = |u: &str| {
        [
            "key_created_for_other_user",
            "key_created_by_root",
            "key_short_lived",
        ]
        .iter()
        .any(|f| u.split('/').nth(2) == Some(f))
    };
    let expected_closed: BTreeSet<String> = first_open
        .difference(&second_open)
        .filter(|u| {
            (both_audited.contains(account_of(u)) && !(account_of(u) == partial && from_events(u)))
                || account_of(u) == left
        })
        .cloned()
        .collect();
    assert_eq!(closed, expected_closed);
    assert!(closed.iter().any(|u| account_of(u) == left));
    assert!(closed.iter().any(|u| account_of(u) != left), "{closed:?}");
    assert!(!closed.iter().any(|u| account_of(u) == lost_role));
    for f in second
        .findings
        .iter()
        .filter(|f| f["activity_name"] == "Close")
    {
        assert_eq!(
            (f["status_id"].as_i64(), f["status"].as_str()),
            (Some(4), Some("Resolved"))
        );
    }
    // The changes report says the same of findings, and the accounts report and the summary count them.
    assert_eq!(finding_rows(&second.changes, "new"), created);
    assert_eq!(finding_rows(&second.changes, "resolved"), closed);
    let count = |col: &str| -> u64 {
        second
            .accounts
            .iter()
            .map(|a| a[col].parse::<u64>().unwrap_or(0))
            .sum()
    };
    let stamp1 = first.files[0].file_name().unwrap().to_string_lossy()[9..24].to_string();
    assert_eq!(
        (count("new_findings"), count("resolved_findings")),
        (
            created.len() as u64,
            (closed.len() - closed.iter().filter(|u| account_of(u) == left).count()) as u64
        ),
        "the accounts report counts each account's own (the account that left has no row)"
    );
    let line = format!(
        "since {stamp1}: {} new findings, {} resolved (changes report)",
        created.len(),
        closed.len()
    );
    assert!(second.stderr.contains(&line), "{line}\n{}", second.stderr);

    // `iam-audit diff` of the two runs on disk: the same rows, but an account missing from the newer run
    // is only "not in the newer run" (diff cannot know it left the organization) and resolves nothing.
    let home = tempfile::tempdir().unwrap();
    let old = dir.path().join(&stamp1);
    let out = bin_command(
        &["diff", old.to_str().unwrap(), dir.path().to_str().unwrap()],
        &[],
        home.path(),
    )
    .output()
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stamp2 = second
        .findings_path
        .as_ref()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()["findings_".len().."findings_".len() + 15]
        .to_string();
    let apart = (iam_audit::report::stamp_time(&stamp2).unwrap()
        - iam_audit::report::stamp_time(&stamp1).unwrap())
    .num_seconds();
    assert!(apart > 0 && apart < 60, "{stamp1} {stamp2}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!(
            "{stamp1} → {stamp2} ({apart} s apart): {} new findings, {} resolved",
            created.len(),
            closed.len() - closed.iter().filter(|u| account_of(u) == left).count()
        )
    );
    let diffed = csv_rows(&out.stdout);
    let not_left = |rows: &[BTreeMap<String, String>]| -> BTreeSet<BTreeMap<String, String>> {
        rows.iter()
            .filter(|r| r["account_id"] != left)
            .cloned()
            .collect()
    };
    assert_eq!(not_left(&diffed), not_left(&second.changes));
    let diffed_left: Vec<_> = diffed.iter().filter(|r| r["account_id"] == left).collect();
    assert_eq!(diffed_left.len(), 1);
    assert_eq!(diffed_left[0]["detail"], "not in the newer run");
}

fn csv_rows(bytes: &[u8]) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_reader(bytes);
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(header, iam_audit::report::CHANGE_COLUMNS);
    r.records()
        .map(|rec| {
            header
                .iter()
                .cloned()
                .zip(rec.unwrap().iter().map(str::to_string))
                .collect()
        })
        .collect()
}

/// `--compare DIR` compares with a run elsewhere (the same organization: no change, every finding an
/// Update with the same uid); `--no-compare` compares with nothing, though an earlier run is there;
/// `--compare` naming a directory without a run is a usage error that writes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn compare_names_the_earlier_run_or_none() {
    let org = scenario(4, 0);
    let sim = Sim::start(org, faults(&[], &[])).await.unwrap();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = fast_audit_in(&sim, a.path(), &[]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let stamp = first.files[0].file_name().unwrap().to_string_lossy()[9..24].to_string();

    let second = fast_audit_in(&sim, b.path(), &["--compare", a.path().to_str().unwrap()]).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(second.changes.is_empty(), "{:?}", second.changes);
    assert!(
        second
            .stderr
            .contains(&format!("since {stamp}: 0 new findings, 0 resolved")),
        "{}",
        second.stderr
    );
    let uids = uids_by_activity(&second.findings);
    assert_eq!(uids.keys().collect::<Vec<_>>(), ["Update"]);
    assert_eq!(uids["Update"], uids_by_activity(&first.findings)["Create"]);
    assert!(second
        .accounts
        .iter()
        .all(|r| r["new_findings"] == "0" && r["resolved_findings"] == "0"));

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let third = fast_audit_in(&sim, b.path(), &["--no-compare"]).await;
    assert_eq!(third.code, 0, "{}", third.stderr);
    assert!(third
        .stderr
        .contains("not compared with an earlier run (--no-compare)\n"));
    assert_eq!(
        uids_by_activity(&third.findings).keys().collect::<Vec<_>>(),
        ["Create"]
    );
    assert!(third.accounts.iter().all(|r| r["new_findings"].is_empty()));

    let empty = tempfile::tempdir().unwrap();
    let out_dir = empty.path().join("reports");
    let home = tempfile::tempdir().unwrap();
    let out = bin_command(
        &[
            "--role",
            "IAMAuditRole",
            "--output-dir",
            out_dir.to_str().unwrap(),
            "--compare",
            empty.path().to_str().unwrap(),
        ],
        &[FAKE_KEY, FAKE_SECRET, ("AWS_ENDPOINT_URL", &sim.endpoint())],
        home.path(),
    )
    .output()
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "--compare {}: no run of iam-audit there. Name a directory that holds an earlier run's reports",
            empty.path().display()
        )),
        "{stderr}"
    );
    assert!(!out_dir.exists(), "a usage error writes nothing");
}

/// The summary page as a browser would load it: one file with a strict Content-Security-Policy, nothing
/// fetched, and every name from AWS escaped, here an account name and an OU name that are markup.
#[tokio::test(flavor = "multi_thread")]
async fn the_summary_page_is_self_contained_and_escapes_hostile_names() {
    let hostile_account = "<script>alert(1)</script>";
    let hostile_ou = "\"><img src=x onerror=alert(2)>";
    let plant = |mut org: SimOrg| {
        org.accounts[0].name = hostile_account.into();
        let parent = org
            .accounts
            .iter()
            .find(|a| !a.parent.is_empty())
            .unwrap()
            .parent
            .clone();
        org.ous.iter_mut().find(|o| o.id == parent).unwrap().name = hostile_ou.into();
        org
    };
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(plant(scenario(6, 0)), faults(&[], &[]))
        .await
        .unwrap();
    let first = fast_audit_in(&sim, dir.path(), &[]).await;
    drop(sim);
    assert_eq!(first.code, 0, "{}", first.stderr);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // A week later the hostile account has changes too, so its name is in every section.
    let sim = Sim::start(plant(scenario(6, 1)), faults(&[], &[]))
        .await
        .unwrap();
    let out = fast_audit_in(&sim, dir.path(), &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let page = &out.summary_html;
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; script-src 'none'; base-uri 'none'; form-action 'none'\">"
    ));
    // Every tag and attribute of the page (escaped text holds no '<'): none that fetches or runs.
    let lower = page.to_lowercase();
    let mut tags = BTreeSet::new();
    let mut attributes = BTreeSet::new();
    for tag in lower.split('<').skip(1) {
        let inside = &tag[..tag.find('>').expect("every tag closes")];
        let mut words = inside.trim_start_matches('/').split_whitespace();
        tags.insert(words.next().unwrap_or_default().to_string());
        for w in words {
            if let Some((name, _)) = w.split_once('=') {
                attributes.insert(name.to_string());
            }
        }
    }
    let fetching_tags = [
        "script", "img", "link", "iframe", "object", "embed", "image", "use", "audio", "video",
        "source", "form", "base",
    ];
    assert!(
        tags.iter().all(|t| !fetching_tags.contains(&t.as_str())),
        "{tags:?}"
    );
    let fetching_attributes = [
        "src",
        "href",
        "xlink:href",
        "srcset",
        "action",
        "background",
        "poster",
        "data",
    ];
    assert!(
        attributes
            .iter()
            .all(|a| !fetching_attributes.contains(&a.as_str()) && !a.starts_with("on")),
        "{attributes:?}"
    );
    assert!(!lower.contains("url(") && !lower.contains("@import"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"));
    // The account's name shows in the per-OU table and in what changed.
    assert!(
        page.matches("&lt;script&gt;alert(1)&lt;/script&gt;")
            .count()
            >= 2,
        "{page}"
    );
    assert!(page.contains("Since the last run"));
    assert!(page.len() < 200_000, "{}", page.len());
}

/// `iam-audit demo`, the README's first command: every file of a run, and a second demo into the same
/// directory (a week later, by default) has changes to report.
#[tokio::test(flavor = "multi_thread")]
async fn demo_writes_every_file_and_a_second_demo_reports_changes() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "demo",
        "--accounts",
        "12",
        "--users",
        "6",
        "--events",
        "4",
        "--latency-ms",
        "0",
        "--no-progress",
        "--output-dir",
        dir.path().to_str().unwrap(),
    ];
    let first = run_bin(&args, &[], dir.path()).await;
    // The demo's organization denies the audit role in two accounts and LookupEvents in two more.
    assert_eq!(first.code, 3, "{}", first.stderr);
    let names = |out: &RunOutput| -> Vec<String> {
        out.files
            .iter()
            .map(|p| {
                let n = p.file_name().unwrap().to_string_lossy().to_string();
                n.split('_').next().unwrap().to_string() + &n[n.find('.').unwrap()..]
            })
            .collect()
    };
    assert_eq!(
        names(&first),
        [
            "accounts.csv",
            "changes.csv",
            "cloudtrail.csv",
            "credentials.csv",
            "findings.ocsf.jsonl",
            "iam.csv",
            "key.csv",
            "summary.html",
            "users.csv"
        ]
    );
    for label in [
        "findings (OCSF): ",
        "changes report:  ",
        "summary page:    ",
        "credentials:     ",
        "key history:     ",
    ] {
        assert!(first.stderr.contains(label), "{}", first.stderr);
    }
    assert!(first.changes.is_empty());
    assert!(assert_valid_ocsf(first.findings_path.as_deref().unwrap()).ends_with(" 0 invalid"));
    // The demo's break-glass users, asserted by its built-in rule: the sealed one's unused password is
    // accepted; the one used two days ago is Critical.
    let glass: Vec<(&str, &str, &str)> = first
        .users
        .iter()
        .filter(|u| u["username"].starts_with("breakglass-"))
        .map(|u| {
            (
                u["username"].as_str(),
                u["risk"].as_str(),
                u["exception"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        glass,
        [
            ("breakglass-sealed", "password_unused_45d", "break-glass"),
            (
                "breakglass-used",
                "break_glass_used;break_glass_access_key",
                ""
            )
        ]
    );
    let used = first
        .findings
        .iter()
        .find(|f| {
            f["finding_info"]["uid"]
                .as_str()
                .unwrap()
                .ends_with("/break_glass_used/breakglass-used")
        })
        .expect("the used break-glass user's finding");
    assert_eq!(
        (used["severity"].as_str(), used["status_id"].as_u64()),
        (Some("Critical"), Some(1))
    );
    assert!(
        first.stderr.contains("exceptions: 1 findings accepted"),
        "{}",
        first.stderr
    );

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let second = run_bin(&args, &[], dir.path()).await;
    assert_eq!(second.code, 3, "{}", second.stderr);
    assert_eq!(second.files.len(), 18);
    let kinds: BTreeSet<(&str, &str)> = second
        .changes
        .iter()
        .map(|r| (r["change"].as_str(), r["kind"].as_str()))
        .collect();
    for expected in [
        ("new", "user"),
        ("resolved", "user"),
        ("new", "access_key"),
        ("changed", "access_key"),
        ("new", "finding"),
        ("resolved", "finding"),
        ("not_compared", "account"),
    ] {
        assert!(kinds.contains(&expected), "{expected:?} in {kinds:?}");
    }
    assert!(
        second.stderr.contains(" new findings, "),
        "{}",
        second.stderr
    );
    let verdict = assert_valid_ocsf(second.findings_path.as_deref().unwrap());
    assert!(verdict.contains(" 0 invalid"), "{verdict}");
}

// Story: the earlier run's files are damaged (a users report cut short mid-row, or a key row garbled in the
// middle): the second run is not compared with it at all, and says so everywhere a person looks (the
// summary, the changes report, the page), rather than calling every row it could not read resolved or
// deleted; the findings file closes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_earlier_run_is_not_compared_and_nothing_is_resolved() {
    let (week1, week2) = (scenario(6, 0), scenario(6, 1));
    for damage in ["truncated", "corrupted"] {
        let dir = tempfile::tempdir().unwrap();
        let sim = Sim::start(week1.clone(), faults(&[], &[])).await.unwrap();
        let first = fast_audit_in(&sim, dir.path(), &[]).await;
        assert_eq!(first.code, 0, "{}", first.stderr);
        let stamp = first
            .files
            .iter()
            .find_map(|p| {
                let n = p.file_name()?.to_string_lossy().to_string();
                n.strip_prefix("accounts_")?
                    .strip_suffix(".csv")
                    .map(str::to_string)
            })
            .unwrap();
        let (file, reason) = match damage {
            "truncated" => {
                let users = dir.path().join(format!("users_{stamp}.csv"));
                let text = std::fs::read_to_string(&users).unwrap();
                // Cut inside the last row: no line break at the end.
                std::fs::write(&users, &text[..text.len() - 7]).unwrap();
                (
                    users,
                    "the last row has no line break: the file was cut short",
                )
            }
            _ => {
                let keys = dir.path().join(format!("iam_audit_report_{stamp}.csv"));
                let text = std::fs::read_to_string(&keys).unwrap();
                let mut lines: Vec<&str> = text.split("\r\n").collect();
                lines[2] = "garbled,row";
                std::fs::write(&keys, lines.join("\r\n")).unwrap();
                (keys, "line 3: 2 cells where the header has")
            }
        };
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let sim = Sim::start(week2.clone(), faults(&[], &[])).await.unwrap();
        let hook = Receiver::start(&[(200, None)]).await;
        let url = format!("{}/hook", hook.url_base);
        let second = fast_audit_in(&sim, dir.path(), &["--notify", &url]).await;
        assert_eq!(second.code, 0, "{damage}: {}", second.stderr);
        // The alert says it too.
        let got = hook.got();
        assert_eq!(got.len(), 1, "{damage}");
        let alert: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
        assert_eq!(alert["not_compared"]["run"], stamp.as_str(), "{alert}");
        assert!(
            alert["text"]
                .as_str()
                .is_some_and(|t| t.contains(&format!("(not compared with {stamp}: "))),
            "{alert}"
        );
        let line = second
            .stderr
            .lines()
            .find(|l| l.starts_with("not compared with "))
            .unwrap_or_else(|| panic!("{damage}: {}", second.stderr));
        assert!(
            line.starts_with(&format!("not compared with {stamp}: {}", file.display()))
                && line.contains(reason)
                && line.ends_with(
                    "; nothing is resolved or deleted, and every finding counts as new (changes report)"
                ),
            "{damage}: {line}"
        );
        assert_eq!(second.changes.len(), 1, "{damage}: {:?}", second.changes);
        let row = &second.changes[0];
        assert_eq!(
            (
                row["change"].as_str(),
                row["kind"].as_str(),
                row["resource"].as_str()
            ),
            ("not_compared", "run", stamp.as_str())
        );
        assert!(row["detail"].contains(reason), "{row:?}");
        assert!(
            second
                .summary_html
                .contains(&format!("not compared with {stamp}")),
            "the page says it"
        );
        let closed = uids_by_activity(&second.findings);
        assert_eq!(
            closed.keys().collect::<Vec<_>>(),
            ["Create"],
            "{damage}: no finding closed"
        );
    }
}

// Story: three weekly runs of the demo organization, changing in between. The findings' history keeps each
// finding's first sighting from run to run, a finding fixed in the second run and failing again in the
// third is `reopened` (its history counts it), and the third page shows, per flag, the open findings by
// age and the median time to resolve, exactly as the history the run left says.
#[tokio::test(flavor = "multi_thread")]
async fn three_demos_keep_first_seen_reopen_a_finding_and_show_its_age() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "demo",
        "--latency-ms",
        "0",
        "--no-progress",
        "--output-dir",
        dir.path().to_str().unwrap(),
    ];
    let mut runs = Vec::new();
    for _ in 0..3 {
        let out = run_bin(&args, &[], dir.path()).await;
        assert_eq!(out.code, 3, "{}", out.stderr);
        runs.push(out);
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    let history = |out: &RunOutput| -> BTreeMap<String, serde_json::Value> {
        let name = out
            .findings_path
            .as_ref()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        let stamp = &name["findings_".len().."findings_".len() + 15];
        std::fs::read_to_string(dir.path().join(format!(".iam-audit-history_{stamp}.jsonl")))
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (v["uid"].as_str().unwrap().to_string(), v)
            })
            .collect()
    };
    let (h1, h3) = (history(&runs[0]), history(&runs[2]));
    // First seen kept: every finding open in the first run and the third has the same first sighting.
    let kept: Vec<&String> = h1
        .keys()
        .filter(|u| h1[*u]["open"] == true && h3.get(*u).is_some_and(|e| e["open"] == true))
        .collect();
    assert!(kept.len() > 100, "{}", kept.len());
    for u in &kept {
        assert_eq!(h1[*u]["first_seen"], h3[*u]["first_seen"], "{u}");
    }
    // Resolved in the second run, failing again in the third.
    let reopened: Vec<&BTreeMap<String, String>> = runs[2]
        .changes
        .iter()
        .filter(|r| r["change"] == "reopened" && r["kind"] == "finding")
        .collect();
    assert!(!reopened.is_empty());
    for r in &reopened {
        let e = &h3[&r["finding_uid"]];
        assert_eq!(
            (e["open"].clone(), e["reopened"].clone()),
            (true.into(), 1.into()),
            "{e}"
        );
        assert!(runs[1]
            .changes
            .iter()
            .any(|c| c["change"] == "resolved" && c["finding_uid"] == r["finding_uid"]));
    }
    // The page's ages, per flag, from the third run's history.
    let day = 86_400_000i64;
    let mut by_flag: BTreeMap<String, ([u64; 4], u64)> = BTreeMap::new();
    for (uid, e) in &h3 {
        // The page names a flag by its code now; a renamed flag's uid keeps its first code.
        let code = uid.split('/').nth(2).unwrap();
        let code = iam_audit::record::Flag::from_code(code).map_or(code, |f| f.code());
        let t = by_flag.entry(code.to_string()).or_default();
        if e["open"] == true {
            let days = (e["last_seen"].as_i64().unwrap() - e["first_seen"].as_i64().unwrap()) / day;
            t.0[[30, 90, 365].iter().take_while(|b| days >= **b).count()] += 1;
        } else if e.get("resolved_at").is_some() {
            t.1 += 1;
        }
    }
    let page = &runs[2].summary_html;
    let section = &page[page
        .find("<h2>Findings over time</h2>")
        .expect("the section")..];
    for (code, (open, resolved)) in &by_flag {
        let row = format!(
            "<tr><td>{code}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">",
            open[0], open[1], open[2], open[3]
        );
        let at = section.find(&row).unwrap_or_else(|| panic!("{row}"));
        let cell = &section[at + row.len()..];
        let cell = &cell[..cell.find("</td>").unwrap()];
        if *resolved == 0 {
            assert_eq!(cell, "—", "{code}");
        } else {
            assert!(
                cell.ends_with(&format!(" ({resolved} resolved)")),
                "{code}: {cell}"
            );
        }
    }
    assert!(
        by_flag.values().any(|(o, _)| o[1] + o[2] + o[3] > 0),
        "some findings are old"
    );
}

// Story: a team on CIS v7.0 and one still on v3.0 read the same findings. By default every finding carries
// the four versions' numbers (OCSF `compliance`, Security Hub's RelatedRequirements, whose GeneratorId stays
// Security Hub's own v5.0.0 control); each version's own rules hold (the root user's unused key fails
// "unused credentials" in v3.0 and v5.0 only; v7.0 has no "keys at initial setup"). `--cis-version 7.0`
// leaves v7's numbers alone, and a version this build does not map is refused before anything runs.
#[tokio::test(flavor = "multi_thread")]
async fn findings_carry_each_cis_version_with_its_own_rules() {
    let org = scenario(16, 0);
    let sim = Sim::start(org.clone(), Faults::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = audit_in(&sim, dir.path(), &["--iam-rate", "200", "--security-hub"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_valid_ocsf(out.findings_path.as_ref().unwrap());
    let find = |out: &RunOutput, part: &str| -> serde_json::Value {
        out.findings
            .iter()
            .find(|f| f["finding_info"]["uid"].as_str().unwrap().contains(part))
            .unwrap_or_else(|| panic!("a finding {part}"))
            .clone()
    };
    let requirements = |f: &serde_json::Value| -> Vec<String> {
        f["compliance"]["requirements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect()
    };
    let old = find(&out, "/key_older_than_90d/AKIA");
    assert_eq!(
        requirements(&old),
        ["v3.0.0 1.14", "v5.0.0 1.13", "v6.0.0 2.13", "v7.0.0 2.12"]
    );
    assert_eq!(
        old["compliance"]["standards"][3],
        "CIS AWS Foundations Benchmark v7.0.0"
    );
    assert_eq!(
        requirements(&find(&out, "/key_created_with_user/")),
        ["v3.0.0 1.11", "v5.0.0 1.10", "v6.0.0 2.10"]
    );
    assert_eq!(
        requirements(&find(&out, "/key_unused_45d/root")),
        ["v3.0.0 1.12", "v5.0.0 1.11"],
        "v6.0 and v7.0 leave the root user out of 2.11"
    );
    // Security Hub: every version among the related requirements; the generator is v5.0.0's control.
    let uid = old["finding_info"]["uid"].as_str().unwrap();
    let account = old["cloud"]["account"]["uid"].as_str().unwrap();
    let hub = &sim.security_hub(account)[uid];
    assert_eq!(
        hub["GeneratorId"],
        "cis-aws-foundations-benchmark/v/5.0.0/1.13"
    );
    assert_eq!(
        hub["Compliance"]["RelatedRequirements"],
        serde_json::json!([
            "CIS AWS Foundations Benchmark v3.0.0/1.14",
            "CIS AWS Foundations Benchmark v5.0.0/1.13",
            "CIS AWS Foundations Benchmark v6.0.0/2.13",
            "CIS AWS Foundations Benchmark v7.0.0/2.12"
        ])
    );

    // v7.0 alone.
    let dir7 = tempfile::tempdir().unwrap();
    let sim7 = Sim::start(org.clone(), Faults::default()).await.unwrap();
    let v7 = audit_in(
        &sim7,
        dir7.path(),
        &["--iam-rate", "200", "--cis-version", "7.0"],
    )
    .await;
    assert_eq!(v7.code, 0, "{}", v7.stderr);
    assert_valid_ocsf(v7.findings_path.as_ref().unwrap());
    assert_eq!(
        requirements(&find(&v7, "/key_older_than_90d/AKIA")),
        ["v7.0.0 2.12"]
    );
    let setup = find(&v7, "/key_created_with_user/");
    assert_eq!(requirements(&setup), ["key_created_with_user"]);
    assert_eq!(
        setup["compliance"]["standards"],
        serde_json::json!(["iam-audit credential checks"])
    );
    assert_eq!(
        setup["finding_info"]["types"][0],
        "Software and Configuration Checks/AWS Security Best Practices"
    );

    // Every version the config accepts is one the findings can carry.
    for v in iam_audit::config::DEFAULT_CIS_VERSIONS {
        assert!(iam_audit::record::CisVersion::parse(v).is_some(), "{v}");
    }
    let bad = audit_in(&sim7, dir7.path(), &["--cis-version", "4.0"]).await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("'4.0' is not a CIS AWS Foundations Benchmark version this build maps; use any of 3.0, 5.0, 6.0, 7.0"),
        "{}",
        bad.stderr
    );
}
