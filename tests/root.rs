//! Every root user, even without a member role (issue 27): where the organization manages root
//! credentials centrally, an account whose audit role is refused still has its root user read and judged,
//! through sts:AssumeRoot with the IAMAuditRootUserCredentials task policy; the root session asks only
//! what that policy allows. `--root-audit role` keeps today's behaviour, `assume-root` reads every member
//! account's root user that way.

use std::collections::BTreeMap;

use iam_audit::sim::{Faults, Scenario, SimKey, SimOrg};

use crate::support::*;

/// Five accounts; the first two refuse the audit role. The first's root user has nothing left (no
/// password, key or MFA, as after centralized root access deleted them); the second's has a password,
/// a virtual MFA device and an old key used last week.
fn org() -> (SimOrg, [String; 2]) {
    let mut org = Scenario {
        seed: 27,
        accounts: 5,
        suspended_every: 0,
        users_min: 2,
        users_max: 3,
        events_per_account: 2,
        ..Scenario::default()
    }
    .generate();
    let now = chrono::Utc::now().timestamp();
    let day = 86_400;
    let ids = [org.accounts[0].id.clone(), org.accounts[1].id.clone()];
    let bare = &mut org.accounts[0].root;
    bare.no_password = true;
    bare.keys.clear();
    bare.mfa.clear();
    let kept = &mut org.accounts[1].root;
    kept.no_password = false;
    kept.mfa = vec![format!(
        "arn:aws:iam::{}:mfa/root-account-mfa-device",
        ids[1]
    )];
    kept.keys = vec![SimKey {
        id: "AKIAROOTKEY000000001".into(),
        active: true,
        created: now - 400 * day,
        last_used: Some((now - 7 * day, "s3".into(), "eu-west-1".into())),
    }];
    (org, ids)
}

fn faults(refused: &[String]) -> Faults {
    Faults {
        deny_assume_role: refused.to_vec(),
        root_credentials_management: true,
        report_delay_ms: 20,
        ..Faults::default()
    }
}

/// (account, source, risk) of every root row.
fn root_rows(out: &RunOutput) -> BTreeMap<String, (String, String)> {
    out.users
        .iter()
        .filter(|u| u["username"] == "<root_account>")
        .map(|u| {
            (
                u["account_id"].clone(),
                (u["source"].clone(), u["risk"].clone()),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_that_refuses_its_role_still_has_its_root_user_judged_through_assume_root() {
    let (org, refused) = org();
    let (sim, out, _dir) = fast_audit(&org, faults(&refused), &[]).await;
    // Still exit 3: those two accounts are not fully audited.
    assert_eq!(out.code, 3, "{}", out.stderr);
    let rows = root_rows(&out);
    assert_eq!(rows.len(), 5, "every account's root row: {rows:?}");
    assert_eq!(
        rows[&refused[0]],
        ("assume_root".to_string(), String::new()),
        "nothing left to protect"
    );
    assert_eq!(
        rows[&refused[1]],
        (
            "assume_root".to_string(),
            "root_access_key;root_without_hardware_mfa;key_older_than_90d".to_string()
        )
    );
    for (id, (source, _)) in &rows {
        if !refused.contains(id) {
            assert_eq!(source, "credential_report", "{id}");
        }
    }
    // What a root session may not read is unknown, never "Never".
    let row = out
        .users
        .iter()
        .find(|u| u["account_id"] == refused[1] && u["username"] == "<root_account>")
        .unwrap();
    assert_eq!(
        (
            row["password_enabled"].as_str(),
            row["password_last_used"].as_str(),
            row["mfa_type"].as_str()
        ),
        ("true", "unknown", "Virtual")
    );
    // The root key has a row of its own, with its id and last use (the credential report has neither).
    let key = out
        .keys
        .iter()
        .find(|k| k["access_key_id"] == "AKIAROOTKEY000000001")
        .expect("the root key's row");
    assert_eq!(
        (
            key["username"].as_str(),
            key["source"].as_str(),
            key["service_name"].as_str(),
            key["key_age_days"].as_str()
        ),
        ("<root_account>", "assume_root", "s3", "400")
    );
    // The accounts report says what was read, and how.
    let account = out
        .accounts
        .iter()
        .find(|a| a["account_id"] == refused[1])
        .unwrap();
    assert_eq!(
        (
            account["audit_status"].as_str(),
            account["iam_status"].as_str(),
            account["strategy"].as_str(),
            account["root_access_keys"].as_str(),
            account["root_mfa"].as_str()
        ),
        ("skipped", "partial", "assume_root", "1", "Virtual")
    );
    assert!(
        account["error"].starts_with("AccessDenied: ")
            && account["error"].ends_with(
                " | root user read through sts:AssumeRoot (IAMAuditRootUserCredentials)"
            ),
        "{}",
        account["error"]
    );
    // Its findings carry each CIS version's number: the root key is 2.4 in v7.0 and 2.3 in v6.0.
    let finding = out
        .findings
        .iter()
        .find(|f| {
            f["finding_info"]["uid"] == format!("iam-audit/{}/root_access_key/root", refused[1])
        })
        .expect("the root key finding");
    assert_eq!(
        finding["compliance"]["requirements"],
        serde_json::json!(["v3.0.0 1.4", "v5.0.0 1.3", "v6.0.0 2.3", "v7.0.0 2.4"])
    );
    assert_valid_ocsf(out.findings_path.as_ref().unwrap());
    // The root sessions asked only what the task policy allows: in the two accounts no role reached,
    // every call is one of those, and none was refused.
    let calls = sim.calls();
    let in_refused: Vec<_> = calls
        .iter()
        .filter(|c| refused.contains(&c.account) && c.action.starts_with("iam:"))
        .collect();
    assert!(!in_refused.is_empty());
    for c in &in_refused {
        assert!(
            iam_audit::sim::server::ROOT_AUDIT_ACTIONS
                .iter()
                .any(|a| c.action == format!("iam:{a}")),
            "{} in a root session",
            c.action
        );
        // NoSuchEntity: the bare root user's "no console password".
        assert!(
            c.outcome == "ok" || (c.outcome == "NoSuchEntity" && c.action == "iam:GetLoginProfile"),
            "{} {}",
            c.action,
            c.outcome
        );
    }
    let assume_root = calls
        .iter()
        .filter(|c| c.action == "sts:AssumeRoot")
        .count();
    assert_eq!(assume_root, 2, "one root session per refused account");

    // `--root-audit role`: those two are skipped as today, without a root row.
    let (sim2, role_only, _dir2) =
        fast_audit(&org, faults(&refused), &["--root-audit", "role"]).await;
    assert_eq!(role_only.code, 3);
    let rows = root_rows(&role_only);
    assert_eq!(rows.len(), 3);
    assert!(!rows.contains_key(&refused[0]) && !rows.contains_key(&refused[1]));
    assert!(sim2.calls().iter().all(|c| c.action != "sts:AssumeRoot"));
}

#[tokio::test(flavor = "multi_thread")]
async fn assume_root_mode_reads_every_member_root_user_once_and_a_refused_session_is_said() {
    let (org, refused) = org();
    let mut f = faults(&refused[..1]);
    // An SCP refuses the second account's root session; its role works.
    f.deny_assume_root = vec![refused[1].clone()];
    let (sim, out, _dir) = fast_audit(&org, f, &["--root-audit", "assume-root"]).await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    let rows = root_rows(&out);
    // One root row per account: four by root session, none for the account that refused it.
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(rows.values().all(|(source, _)| source == "assume_root"));
    assert!(!rows.contains_key(&refused[1]));
    let account = out
        .accounts
        .iter()
        .find(|a| a["account_id"] == refused[1])
        .unwrap();
    assert_eq!(account["audit_status"], "audited");
    assert!(
        account["error"].starts_with("root user not read: AccessDenied: ")
            && account["error"].contains("(sts:AssumeRoot "),
        "{}",
        account["error"]
    );
    assert_eq!(
        sim.calls()
            .iter()
            .filter(|c| c.action == "sts:AssumeRoot")
            .count(),
        5,
        "each member account once: a denial is not retried"
    );
}

// Story: an organization without centralized root access fails CIS v7.0 2.1.1 once, on the management
// account's root user, and the summary says what ListOrganizationsFeatures answered; with it on, there is
// no such finding.
#[tokio::test(flavor = "multi_thread")]
async fn centralized_root_access_off_is_a_finding_on_the_management_account() {
    let (mut org, _) = org();
    org.management_account = org.accounts[4].id.clone();
    let mgmt = org.management_account.clone();
    let (_sim, off, _dir) = fast_audit(
        &org,
        Faults {
            report_delay_ms: 20,
            ..Faults::default()
        },
        &[],
    )
    .await;
    assert_eq!(off.code, 0, "{}", off.stderr);
    assert!(
        off.stderr.contains("centralized root access: off (neither RootCredentialsManagement nor RootSessions): a finding on the management account's root user (CIS v7.0 2.1.1)"),
        "{}",
        off.stderr
    );
    let uid = format!("iam-audit/{mgmt}/root_access_not_centralized/root");
    let finding = off
        .findings
        .iter()
        .find(|f| f["finding_info"]["uid"] == uid)
        .expect("the 2.1.1 finding");
    assert_eq!(
        finding["compliance"]["requirements"],
        serde_json::json!(["v7.0.0 2.1.1"])
    );
    let flagged: Vec<&str> = off
        .accounts
        .iter()
        .filter(|a| a["root_access_not_centralized"] != "0")
        .map(|a| a["account_id"].as_str())
        .collect();
    assert_eq!(flagged, [mgmt.as_str()]);
    assert_valid_ocsf(off.findings_path.as_ref().unwrap());

    let (_sim2, on, _dir2) = fast_audit(&org, faults(&[]), &[]).await;
    assert_eq!(on.code, 0, "{}", on.stderr);
    assert!(
        on.stderr
            .contains("centralized root access: RootCredentialsManagement on, RootSessions on"),
        "{}",
        on.stderr
    );
    assert!(on.findings.iter().all(|f| !f["finding_info"]["uid"]
        .as_str()
        .unwrap()
        .contains("/root_access_not_centralized/")));
}
