//! Listing the organization while auditing it: accounts start as the listing finds them, the OU tree read
//! twice alike ends the listing before ListAccounts' last page, an account only ListAccounts names is
//! audited all the same, and a listing that fails part-way says what the reports hold. Checked from the
//! reports and the simulator's call log (orders and counts, never wall-clock times).

use iam_audit::sim::{Faults, Scenario, Sim};

use crate::support::*;

fn calls_of(sim: &Sim, action: &str) -> Vec<f64> {
    sim.calls()
        .iter()
        .filter(|c| c.action == action)
        .map(|c| c.at_ms)
        .collect()
}

/// Accounts of no users and no events: an audit of each is a handful of calls.
fn org(accounts: usize) -> iam_audit::sim::SimOrg {
    Scenario {
        suspended_every: 0,
        ..Scenario::sized(17, accounts, 0, 0)
    }
    .generate()
}

/// Every call takes 20 ms, so that each page of a listing costs a round trip, as at AWS.
fn slow() -> Faults {
    Faults {
        latency_ms: 20,
        report_delay_ms: 0,
        ..Faults::default()
    }
}

// Story: a security engineer audits 600 accounts; the first accounts are audited while the organization
// is still being listed, and the OU tree, walked twice alike, names every account before ListAccounts'
// 31 pages (20 accounts a page, one of them empty) are read, so ListAccounts stops early.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_audited_as_they_are_found_and_the_tree_ends_the_listing() {
    let org = org(600);
    let (sim, out, _d) = fast_audit(&org, slow(), &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.accounts.len(), 600);
    assert!(out.accounts.iter().all(|a| a["audit_status"] == "audited"));
    assert!(
        out.accounts
            .iter()
            .all(|a| a["ou_path"].starts_with("Root")),
        "every account placed in the tree"
    );
    let first_assume = calls_of(&sim, "sts:AssumeRole")
        .into_iter()
        .fold(f64::MAX, f64::min);
    let last_page = calls_of(&sim, "organizations:ListAccountsForParent")
        .into_iter()
        .fold(0.0, f64::max);
    assert!(
        first_assume < last_page,
        "the first account started ({first_assume} ms) before the last page of the tree ({last_page} ms)"
    );
    let pages = calls_of(&sim, "organizations:ListAccounts").len();
    assert!(
        pages < 31,
        "{pages} ListAccounts pages: the tree read twice alike ends the listing"
    );
    // Two walks of the tree: each parent's accounts twice (120 accounts, 6 pages, under each of the five
    // parents with accounts; the Workloads OU holds none, one page).
    assert_eq!(
        calls_of(&sim, "organizations:ListAccountsForParent").len(),
        2 * (5 * 6 + 1)
    );
}

// Story: an account moved between OUs while the tree was walked is in no page of the tree; ListAccounts
// names it, so it is audited all the same (its ou_path empty), and ListAccounts is read to its end since
// the tree alone cannot be trusted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_only_list_accounts_names_is_audited() {
    let org = org(100);
    let moved = org.accounts[57].id.clone();
    let faults = Faults {
        hidden_from_tree: vec![moved.clone()],
        ..slow()
    };
    let (sim, out, _d) = fast_audit(&org, faults, &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.accounts.len(), 100);
    let row = out
        .accounts
        .iter()
        .find(|a| a["account_id"] == moved)
        .unwrap();
    assert_eq!(
        (row["audit_status"].as_str(), row["ou_path"].as_str()),
        ("audited", "")
    );
    assert!(out
        .accounts
        .iter()
        .filter(|a| a["account_id"] != moved)
        .all(|a| a["ou_path"].starts_with("Root")));
    // 100 accounts: 5 pages and the empty one.
    assert_eq!(calls_of(&sim, "organizations:ListAccounts").len(), 6);
}

// Story: ListAccounts fails part-way (its token expired). Without the OU tree the run cannot know the
// rest of the organization: it exits 1 and says how many accounts were found and that the reports hold
// them, each whole. With the tree, read twice alike, every account is known, and the run is complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_that_fails_part_way_says_what_the_reports_hold() {
    let org = org(100);
    let faults = Faults {
        list_accounts_pages: 2,
        ..slow()
    };
    let (_sim, out, dir) = fast_audit(&org, faults.clone(), &["--no-ou-paths"]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "the organization's listing failed part-way (organizations:ListAccounts InvalidInputException: The NextToken has expired), after 40 accounts were found. The reports in {} are complete for the 40 accounts audited; the organization's other accounts are unknown. Finish the run with --resume {}",
            dir.path().display(),
            dir.path().display()
        )),
        "{}",
        out.stderr
    );
    assert_eq!(out.accounts.len(), 40);
    assert!(out.accounts.iter().all(|a| a["audit_status"] == "audited"));

    let (_sim, out, _d) = fast_audit(&org, faults, &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.accounts.len(), 100);
    assert!(
        out.stderr.contains(
            "The NextToken has expired; the OU tree, read twice alike, names every account of the organization"
        ),
        "{}",
        out.stderr
    );
}
