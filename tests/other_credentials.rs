//! Stories of issue 16 on the simulator: every long-term credential (service-specific credentials with
//! Bedrock API keys, signing certificates, SSH public keys) in the credentials file, who created each key,
//! the key history, the new flags in every output, and what a role without the new actions still gives.

use std::collections::{BTreeMap, BTreeSet};

use iam_audit::report::{CREDENTIAL_COLUMNS, KEY_HISTORY_COLUMNS};
use iam_audit::sim::{
    Faults, Sim, SimAccount, SimActor, SimCredential, SimCredentialKind, SimEvent, SimKey, SimOrg,
    SimUser,
};

use crate::support::*;

const DAY: i64 = 86_400;
const ACCOUNT: &str = "111111111111";
/// Users beyond the planted ones, each with a CodeCommit password: the listing takes two pages.
const FILLERS: usize = 120;

fn key(id: &str, age_days: i64, now: i64) -> SimKey {
    SimKey {
        id: id.into(),
        active: true,
        created: now - age_days * DAY,
        last_used: Some((now - DAY, "s3".into(), "us-east-1".into())),
    }
}

fn cred(
    kind: SimCredentialKind,
    id: &str,
    service: &str,
    active: bool,
    age_days: i64,
    expires_in_days: Option<i64>,
    now: i64,
) -> SimCredential {
    SimCredential {
        kind,
        id: id.into(),
        service: service.into(),
        active,
        created: now - age_days * DAY,
        expires: expires_in_days.map(|d| now + d * DAY),
    }
}

fn user(name: &str, password: bool, keys: Vec<SimKey>, credentials: Vec<SimCredential>) -> SimUser {
    SimUser {
        name: name.into(),
        created: 0,
        login_profile: password,
        password_last_used: None,
        keys,
        mfa: vec!["GAHT00000001".into()],
        credentials,
        policies: Vec::new(),
    }
}

fn actor(kind: &str, arn: &str, user: Option<&str>) -> SimActor {
    SimActor {
        kind: kind.into(),
        arn: arn.into(),
        user_name: user.map(str::to_string),
        user_agent: "aws-cli/2.22.0".into(),
    }
}

/// A CreateAccessKey (or DeleteAccessKey) event: `for_user` is the `userName` parameter (`None`: the
/// caller's own key).
fn key_event(
    name: &str,
    key: &str,
    for_user: Option<&str>,
    by: SimActor,
    days_ago: i64,
    now: i64,
) -> SimEvent {
    SimEvent {
        id: format!("ev-{name}-{key}"),
        name: name.into(),
        region: "us-east-1".into(),
        time: now - days_ago * DAY,
        username: by.user_name.clone(),
        resources: vec![key.into()],
        access_key_id: Some("ASIAEXAMPLE000000001".into()),
        source_ip: format!("198.51.100.{}", key.len()),
        source: "iam.amazonaws.com".into(),
        actor: Some(by),
        key_id: Some(key.into()),
        key_user: for_user.map(str::to_string),
    }
}

/// One account with a credential of every kind and a key from every kind of creator.
fn planted(now: i64) -> SimOrg {
    use SimCredentialKind::*;
    let arn = |what: &str| format!("arn:aws:iam::{ACCOUNT}:{what}");
    let mut users = vec![
        user(
            "alice",
            true,
            vec![key("AKIAALICE0000000001", 10, now)],
            vec![
                // An old Git password, a Bedrock key that never expires, an SSH key.
                cred(
                    Service,
                    "ACCAALICEGIT",
                    "codecommit.amazonaws.com",
                    true,
                    200,
                    None,
                    now,
                ),
                cred(
                    Service,
                    "ACCAALICEBEDROCK",
                    "bedrock.amazonaws.com",
                    true,
                    10,
                    None,
                    now,
                ),
                cred(SshPublicKey, "APKAALICE0001", "", true, 30, None, now),
            ],
        ),
        user(
            "svc-deploy",
            false,
            vec![key("AKIASVC000000000001", 20, now)],
            vec![
                // A Bedrock key with an expiry, and an old Keyspaces password that is inactive.
                cred(
                    Service,
                    "ACCASVCBEDROCK",
                    "bedrock.amazonaws.com",
                    true,
                    5,
                    Some(25),
                    now,
                ),
                cred(
                    Service,
                    "ACCASVCKEYSPACES",
                    "cassandra.amazonaws.com",
                    false,
                    300,
                    None,
                    now,
                ),
            ],
        ),
        user(
            "victim",
            false,
            vec![key("AKIAVICTIM000000001", 15, now)],
            vec![cred(
                SigningCertificate,
                "CERTVICTIM0001",
                "",
                true,
                400,
                None,
                now,
            )],
        ),
        user(
            "rooty",
            false,
            vec![key("AKIAROOTY0000000001", 12, now)],
            vec![],
        ),
        user(
            "oldtimer",
            false,
            vec![key("AKIAOLD000000000001", 200, now)],
            vec![],
        ),
        user(
            "newbie",
            false,
            vec![key("AKIANEW000000000001", 1, now)],
            vec![],
        ),
        user("bob", true, vec![], vec![]),
        user("mallory", true, vec![], vec![]),
        // A user that exists for one CloudWatch Logs API key, made 100 days ago and never expiring.
        user(
            "logs-only",
            false,
            vec![],
            vec![cred(
                Service,
                "ACCALOGSONLY",
                "logs.amazonaws.com",
                true,
                100,
                None,
                now,
            )],
        ),
        // A CloudWatch key that expires in 30 days, and a Claude Platform key that expired 5 days ago.
        user(
            "metrics",
            false,
            vec![key("AKIAMETRICS00000001", 3, now)],
            vec![
                cred(
                    Service,
                    "ACCAMETRICSCW",
                    "cloudwatch.amazonaws.com",
                    true,
                    60,
                    Some(30),
                    now,
                ),
                cred(
                    Service,
                    "ACCAMETRICSCLAUDE",
                    "aws-external-anthropic.amazonaws.com",
                    true,
                    35,
                    Some(-5),
                    now,
                ),
            ],
        ),
    ];
    // AWS found leaky's key exposed and quarantined the user.
    let mut leaky = user(
        "leaky",
        false,
        vec![key("AKIALEAKY0000000001", 40, now)],
        vec![],
    );
    leaky.policies = vec!["AWSCompromisedKeyQuarantineV2".into()];
    users.push(leaky);
    for i in 0..FILLERS {
        let id = format!("ACCAFILL{i:04}");
        users.push(user(
            &format!("fill-{i:03}"),
            false,
            vec![],
            vec![cred(
                Service,
                &id,
                "codecommit.amazonaws.com",
                true,
                10,
                None,
                now,
            )],
        ));
    }
    let events = vec![
        key_event(
            "CreateAccessKey",
            "AKIAALICE0000000001",
            None,
            actor("IAMUser", &arn("user/alice"), Some("alice")),
            10,
            now,
        ),
        key_event(
            "CreateAccessKey",
            "AKIASVC000000000001",
            Some("svc-deploy"),
            actor(
                "AssumedRole",
                &format!("arn:aws:sts::{ACCOUNT}:assumed-role/AdminRole/admin@example.com"),
                None,
            ),
            20,
            now,
        ),
        key_event(
            "CreateAccessKey",
            "AKIAVICTIM000000001",
            Some("victim"),
            actor("IAMUser", &arn("user/mallory"), Some("mallory")),
            15,
            now,
        ),
        key_event(
            "CreateAccessKey",
            "AKIAROOTY0000000001",
            Some("rooty"),
            actor("Root", &arn("root"), None),
            12,
            now,
        ),
        // bob's key lived two days, and is gone.
        key_event(
            "CreateAccessKey",
            "AKIABOBSHORT0000001",
            None,
            actor("IAMUser", &arn("user/bob"), Some("bob")),
            30,
            now,
        ),
        key_event(
            "DeleteAccessKey",
            "AKIABOBSHORT0000001",
            None,
            actor("IAMUser", &arn("user/bob"), Some("bob")),
            28,
            now,
        ),
    ];
    SimOrg {
        management_account: "999999999999".into(),
        ous: vec![],
        accounts: vec![SimAccount {
            id: ACCOUNT.into(),
            name: "planted".into(),
            status: "ACTIVE".into(),
            users,
            events,
            root: Default::default(),
            parent: String::new(),
        }],
    }
}

const FAST: [&str; 4] = ["--iam-rate", "500", "--iam-burst", "100"];

fn calls_of(sim: &Sim, action: &str) -> usize {
    sim.calls().iter().filter(|c| c.action == action).count()
}

fn by(rows: &[BTreeMap<String, String>], col: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    rows.iter().map(|r| (r[col].clone(), r.clone())).collect()
}

// Story: every planted credential appears once in the credentials file with the right flags, every key
// created in the window names its creator (and the keys outside it say why), the short-lived key is in the
// key history, and the new flags reach the users report, the accounts report and the findings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_credential_once_and_every_key_names_its_creator() {
    let now = chrono::Utc::now().timestamp();
    let org = planted(now);
    let sim = Sim::start(org, Faults::default()).await.unwrap();
    let mut args = FAST.to_vec();
    args.extend(["--ssh-keys", "all"]);
    let (out, _d) = audit(&sim, &args).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_read_only(&sim.calls());

    // The credentials file: each once, exactly.
    let creds = rows_of(&out, "credentials_", &CREDENTIAL_COLUMNS);
    let got: BTreeSet<(String, String, String, String, String, String)> = creds
        .iter()
        .map(|r| {
            (
                r["username"].clone(),
                r["type"].clone(),
                r["service"].clone(),
                r["credential_id"].clone(),
                r["status"].clone(),
                r["risk"].clone(),
            )
        })
        .collect();
    assert_eq!(got.len(), creds.len(), "no credential twice");
    let row = |u: &str, t: &str, s: &str, id: &str, st: &str, risk: &str| {
        (
            u.into(),
            t.into(),
            s.into(),
            id.into(),
            st.into(),
            risk.into(),
        )
    };
    let mut expected: BTreeSet<_> = [
        row(
            "alice",
            "service_specific",
            "codecommit.amazonaws.com",
            "ACCAALICEGIT",
            "Active",
            "api_key_older_than_90d",
        ),
        row(
            "alice",
            "service_specific",
            "bedrock.amazonaws.com",
            "ACCAALICEBEDROCK",
            "Active",
            "api_key_without_expiry",
        ),
        row(
            "logs-only",
            "service_specific",
            "logs.amazonaws.com",
            "ACCALOGSONLY",
            "Active",
            "api_key_older_than_90d;api_key_without_expiry",
        ),
        row(
            "metrics",
            "service_specific",
            "cloudwatch.amazonaws.com",
            "ACCAMETRICSCW",
            "Active",
            "",
        ),
        row(
            "metrics",
            "service_specific",
            "aws-external-anthropic.amazonaws.com",
            "ACCAMETRICSCLAUDE",
            "Expired",
            "",
        ),
        row(
            "alice",
            "ssh_public_key",
            "codecommit.amazonaws.com",
            "APKAALICE0001",
            "Active",
            "",
        ),
        row(
            "svc-deploy",
            "service_specific",
            "bedrock.amazonaws.com",
            "ACCASVCBEDROCK",
            "Active",
            "",
        ),
        row(
            "svc-deploy",
            "service_specific",
            "cassandra.amazonaws.com",
            "ACCASVCKEYSPACES",
            "Inactive",
            "",
        ),
        row(
            "victim",
            "signing_certificate",
            "",
            "CERTVICTIM0001",
            "Active",
            "",
        ),
    ]
    .into_iter()
    .collect();
    for i in 0..FILLERS {
        expected.insert(row(
            &format!("fill-{i:03}"),
            "service_specific",
            "codecommit.amazonaws.com",
            &format!("ACCAFILL{i:04}"),
            "Active",
            "",
        ));
    }
    assert_eq!(got, expected);
    let creds_by_id = by(&creds, "credential_id");
    assert_eq!(creds_by_id["ACCAALICEBEDROCK"]["expires"], "never");
    let expires = &creds_by_id["ACCASVCBEDROCK"]["expires"];
    let t = chrono::DateTime::parse_from_rfc3339(expires)
        .unwrap()
        .timestamp();
    assert!((t - (now + 25 * DAY)).abs() <= 1, "{expires}");
    assert_eq!(creds_by_id["ACCAALICEGIT"]["age_days"], "200");
    assert_eq!(
        creds_by_id["ACCAALICEGIT"]["source"],
        "iam:ListServiceSpecificCredentials"
    );

    // Who created each key.
    let keys = by(&out.keys, "access_key_id");
    let creator = |id: &str| -> [String; 4] {
        let k = &keys[id];
        [
            "created_by",
            "created_by_type",
            "created_from_ip",
            "created_event_id",
        ]
        .map(|c| k[c].clone())
    };
    let ip = |key: &str| format!("198.51.100.{}", key.len());
    assert_eq!(
        creator("AKIAALICE0000000001"),
        [
            format!("arn:aws:iam::{ACCOUNT}:user/alice"),
            "IAMUser".into(),
            ip("AKIAALICE0000000001"),
            "ev-CreateAccessKey-AKIAALICE0000000001".into()
        ]
    );
    assert_eq!(
        creator("AKIASVC000000000001")[..2],
        [
            format!("arn:aws:sts::{ACCOUNT}:assumed-role/AdminRole/admin@example.com"),
            "AssumedRole".to_string()
        ]
    );
    assert_eq!(
        creator("AKIAVICTIM000000001")[0],
        format!("arn:aws:iam::{ACCOUNT}:user/mallory")
    );
    assert_eq!(creator("AKIAROOTY0000000001")[1], "Root");
    assert_eq!(
        creator("AKIAOLD000000000001"),
        ["before_window"; 4].map(String::from)
    );
    assert_eq!(
        creator("AKIANEW000000000001"),
        ["not_in_events"; 4].map(String::from)
    );
    let flags = |id: &str| keys[id]["risk"].clone();
    assert!(flags("AKIAVICTIM000000001").contains("key_created_for_other_user"));
    assert!(flags("AKIAROOTY0000000001").contains("key_created_by_root"));
    for id in [
        "AKIAALICE0000000001",
        "AKIASVC000000000001",
        "AKIAOLD000000000001",
    ] {
        assert!(!flags(id).contains("key_created"), "{id}: {}", flags(id));
    }

    // The key history: the keys the events name, bob's gone one flagged.
    let history = by(
        &rows_of(&out, "key_history_", &KEY_HISTORY_COLUMNS),
        "access_key_id",
    );
    assert_eq!(
        history.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "AKIAALICE0000000001",
            "AKIABOBSHORT0000001",
            "AKIAROOTY0000000001",
            "AKIASVC000000000001",
            "AKIAVICTIM000000001"
        ]
    );
    let bob = &history["AKIABOBSHORT0000001"];
    assert_eq!(bob["username"], "bob");
    assert_eq!(bob["in_inventory"], "no");
    assert_eq!(bob["risk"], "key_short_lived");
    assert_eq!(
        bob["deleted_event_id"],
        "ev-DeleteAccessKey-AKIABOBSHORT0000001"
    );
    assert!(history
        .iter()
        .filter(|(id, _)| *id != "AKIABOBSHORT0000001")
        .all(|(_, h)| h["in_inventory"] == "yes" && h["deleted"].is_empty()));
    assert_eq!(
        history["AKIAVICTIM000000001"]["risk"],
        "key_created_for_other_user"
    );

    // The users report counts; the user-level flags.
    let users = by(&out.users, "username");
    let counts = |u: &str| {
        [
            "service_specific_credentials",
            "ssh_public_keys",
            "signing_certificates",
        ]
        .map(|c| users[u][c].clone())
    };
    assert_eq!(counts("alice"), ["2", "1", "0"].map(String::from));
    assert_eq!(counts("victim"), ["0", "0", "1"].map(String::from));
    assert_eq!(counts("<root_account>"), ["n/a"; 3].map(String::from));
    assert!(users["alice"]["risk"].contains("api_key_older_than_90d;api_key_without_expiry"));
    // The users that exist for their service-specific credentials alone; not one with a key or password.
    let api_key_users: BTreeSet<&str> = users
        .iter()
        .filter(|(_, u)| u["risk"].contains("api_key_user"))
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(api_key_users.len(), 1 + FILLERS);
    assert!(api_key_users.contains("logs-only") && api_key_users.contains("fill-000"));
    assert_eq!(users["logs-only"]["service_specific_credentials"], "1");
    assert_eq!(users["leaky"]["risk"], "key_quarantined_by_aws");
    assert!(users["bob"]["risk"].contains("key_short_lived"));
    assert!(users["victim"]["risk"].contains("key_created_for_other_user"));

    // The accounts report.
    let a = &out.accounts[0];
    assert_eq!(a["audit_status"], "audited");
    assert_eq!(a["error"], "");
    assert_eq!(a["credentials"], (9 + FILLERS).to_string());
    assert_eq!(a["ssh_keys_listed"], "all users");
    for (flag, n) in [
        ("key_created_for_other_user", "1"),
        ("key_created_by_root", "1"),
        ("key_short_lived", "1"),
        ("api_key_older_than_90d", "2"),
        ("api_key_without_expiry", "2"),
        ("api_key_user", &(1 + FILLERS).to_string()),
        ("key_quarantined_by_aws", "1"),
    ] {
        assert_eq!(a[flag], n, "{flag}");
    }

    // The findings: one per new flag and resource, valid OCSF.
    let found: BTreeSet<(String, String)> = out
        .findings
        .iter()
        .map(|f| {
            (
                f["finding_info"]["title"].as_str().unwrap().to_string(),
                f["resources"][0]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (title, resource) in [
        (
            "An IAM user created an access key for another user",
            "AKIAVICTIM000000001",
        ),
        ("The root user created an access key", "AKIAROOTY0000000001"),
        ("An access key was created and deleted within days", "bob"),
        (
            "An active service-specific credential or API key is older than the rotation threshold",
            "alice",
        ),
        ("A long-term API key never expires", "alice"),
        ("A long-term API key never expires", "logs-only"),
        (
            "An IAM user exists only to hold service-specific credentials",
            "logs-only",
        ),
        (
            "AWS quarantined an IAM user whose access key it found exposed",
            "leaky",
        ),
    ] {
        // A finding's title names its resource: "(KEY of USER)" or "(USER)".
        assert!(
            found
                .iter()
                .any(|(t, r)| t.starts_with(&format!("{title} (")) && r == resource),
            "{title} {resource}"
        );
    }
    assert_valid_ocsf(out.findings_path.as_ref().unwrap());
    let quarantined: Vec<&str> = out
        .findings
        .iter()
        .filter(|f| {
            f["finding_info"]["title"]
                .as_str()
                .unwrap()
                .starts_with("AWS quarantined")
        })
        .map(|f| f["severity"].as_str().unwrap())
        .collect();
    assert_eq!(quarantined, ["Critical"]);
    // A renamed flag's finding keeps the uid it had before the rename (docs/outputs.md).
    let uid_of = |title: &str| {
        out.findings
            .iter()
            .find(|f| f["finding_info"]["title"] == title)
            .map(|f| f["finding_info"]["uid"].as_str().unwrap().to_string())
    };
    assert_eq!(
        uid_of("A long-term API key never expires (alice)").as_deref(),
        Some(format!("iam-audit/{ACCOUNT}/bedrock_api_key_without_expiry/alice").as_str())
    );

    // What it cost: the account-wide listing (two pages of 100), one certificate listing (victim's, from
    // the report's cert columns), an SSH listing per user (--ssh-keys all).
    assert_eq!(calls_of(&sim, "iam:ListServiceSpecificCredentials"), 2);
    assert_eq!(calls_of(&sim, "iam:ListSigningCertificates"), 1);
    assert_eq!(calls_of(&sim, "iam:ListSSHPublicKeys"), 11 + FILLERS);
    // Which users AWS quarantined: each of the three quarantine policies' users, once.
    assert_eq!(calls_of(&sim, "iam:ListEntitiesForPolicy"), 3);
}

// Story: a role without the three new actions still audits the account (`audited`), and the accounts
// report names each action not read and what to allow, once; the users report says `not_read`; who created
// each key needs no new action and is still there. A refused per-user action is not asked again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_without_the_new_actions_is_audited_and_says_what_to_allow() {
    let now = chrono::Utc::now().timestamp();
    let org = planted(now);
    let faults = Faults {
        deny_other_credentials: vec![ACCOUNT.into()],
        ..Faults::default()
    };
    let sim = Sim::start(org, faults).await.unwrap();
    let mut args = FAST.to_vec();
    args.extend(["--ssh-keys", "console", "--strategy", "api"]);
    let (out, _d) = audit(&sim, &args).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let a = &out.accounts[0];
    assert_eq!(a["audit_status"], "audited");
    assert_eq!(a["iam_status"], "ok");
    for (action, what) in [
        (
            "iam:ListServiceSpecificCredentials",
            "service-specific credentials (CodeCommit and Keyspaces passwords, API keys) were not read",
        ),
        (
            "iam:ListEntitiesForPolicy",
            "users quarantined by AWS (AWSCompromisedKeyQuarantine policies) were not read",
        ),
        (
            "iam:ListSigningCertificates",
            "signing certificates were not read",
        ),
        ("iam:ListSSHPublicKeys", "SSH public keys were not read"),
    ] {
        let fix = format!("{what}; allow {action} to the audit role ({action})");
        assert_eq!(a["error"].matches(&fix).count(), 1, "{fix}\n{}", a["error"]);
    }
    assert!(rows_of(&out, "credentials_", &CREDENTIAL_COLUMNS).is_empty());
    let alice = out.users.iter().find(|u| u["username"] == "alice").unwrap();
    assert_eq!(alice["service_specific_credentials"], "not_read");
    assert_eq!(alice["signing_certificates"], "not_read");
    assert_eq!(alice["ssh_public_keys"], "not_read");
    let victim = out.keys.iter().find(|k| k["username"] == "victim").unwrap();
    assert_eq!(
        victim["created_by"],
        format!("arn:aws:iam::{ACCOUNT}:user/mallory")
    );
    // Refused once, then not asked: at most the users already under way (user_concurrency 4).
    let certs = calls_of(&sim, "iam:ListSigningCertificates");
    assert!((1..=4).contains(&certs), "{certs} ListSigningCertificates");
    assert_read_only(&sim.calls());
}

// Story: should IAM refuse `AllUsers` without a `ServiceName`, each of the six services is listed on its
// own, and the credentials file is the same, row for row, as with `AllUsers` alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_all_services_at_once_each_service_is_listed() {
    let now = chrono::Utc::now().timestamp();
    let service_rows = |out: &RunOutput| -> BTreeSet<Vec<String>> {
        rows_of(out, "credentials_", &CREDENTIAL_COLUMNS)
            .into_iter()
            .filter(|r| r["type"] == "service_specific")
            .map(|r| {
                [
                    "username",
                    "service",
                    "credential_id",
                    "status",
                    "expires",
                    "risk",
                ]
                .map(|c| r[c].clone())
                .to_vec()
            })
            .collect()
    };
    let all_users = Sim::start(planted(now), Faults::default()).await.unwrap();
    let (whole, _d0) = audit(&all_users, &FAST).await;
    assert_eq!(whole.code, 0, "{}", whole.stderr);
    let sim = Sim::start(
        planted(now),
        Faults {
            service_name_required: true,
            ..Faults::default()
        },
    )
    .await
    .unwrap();
    let (out, _d) = audit(&sim, &FAST).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.accounts[0]["error"], "");
    let rows = service_rows(&out);
    assert_eq!(rows.len(), 7 + FILLERS);
    assert_eq!(rows, service_rows(&whole));
    let services: BTreeSet<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(services.len(), 6, "{services:?}");
    // The refused call, then CodeCommit (two pages) and each of the five other services once.
    assert_eq!(
        calls_of(&sim, "iam:ListServiceSpecificCredentials"),
        1 + 2 + 5
    );
}

// Story: what the default inventory costs, from the call log, on many 5-user accounts and a few 500-user
// ones with the report strategy: one ListServiceSpecificCredentials per account and per 100 credentials,
// one ListSigningCertificates per user the credential report shows a certificate for, nothing per other
// user; the report itself costs one GenerateCredentialReport and one GetCredentialReport per account (the
// first ask waits as long as reports take). docs/credentials.md states the totals against the build before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_inventory_costs_a_listing_per_account_and_a_call_per_certificate() {
    for (accounts, users) in [(20usize, 5usize), (2, 500)] {
        let org = iam_audit::sim::Scenario::sized(16, accounts, users, 0).generate();
        let sim = Sim::start(org.clone(), Faults::default()).await.unwrap();
        let (out, _d) = audit(
            &sim,
            &[
                "--iam-rate",
                "500",
                "--iam-burst",
                "100",
                "--strategy",
                "credential_report",
            ],
        )
        .await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        let of = |kind: SimCredentialKind| -> Vec<usize> {
            org.accounts
                .iter()
                .map(|a| {
                    a.users
                        .iter()
                        .flat_map(|u| &u.credentials)
                        .filter(|c| c.kind == kind)
                        .count()
                })
                .collect()
        };
        let pages: usize = of(SimCredentialKind::Service)
            .iter()
            .map(|n| n.div_ceil(100).max(1))
            .sum();
        let with_certificate = org
            .accounts
            .iter()
            .flat_map(|a| &a.users)
            .filter(|u| {
                u.credentials
                    .iter()
                    .any(|c| c.kind == SimCredentialKind::SigningCertificate)
            })
            .count();
        assert!(with_certificate > 0, "the scenario plants certificates");
        let label = format!("{accounts} × {users}");
        assert_eq!(
            calls_of(&sim, "iam:ListServiceSpecificCredentials"),
            pages,
            "{label}"
        );
        assert_eq!(
            calls_of(&sim, "iam:ListSigningCertificates"),
            with_certificate,
            "{label}"
        );
        assert_eq!(
            calls_of(&sim, "iam:ListSSHPublicKeys"),
            0,
            "{label}: opt-in"
        );
        assert_eq!(
            calls_of(&sim, "iam:GenerateCredentialReport"),
            accounts,
            "{label}"
        );
        assert_eq!(
            calls_of(&sim, "iam:GetCredentialReport"),
            accounts,
            "{label}"
        );
        // Every certificate the org holds is in the credentials file.
        let certs = rows_of(&out, "credentials_", &CREDENTIAL_COLUMNS)
            .iter()
            .filter(|r| r["type"] == "signing_certificate")
            .count();
        assert_eq!(
            certs,
            of(SimCredentialKind::SigningCertificate)
                .iter()
                .sum::<usize>()
        );
    }
}
