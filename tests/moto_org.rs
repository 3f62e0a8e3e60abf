//! An organization seeded into moto (a third-party AWS emulator) through the Rust SDK, audited by the binary
//! exactly as a user runs it (`--profile P --role R`), compared row by row. moto lacks LookupEvents, so
//! CloudTrail goes to our simulator, which answers every caller with the same event history.

use std::collections::BTreeMap;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use iam_audit::sim::{
    Faults, Sim, SimAccount, SimCredential, SimCredentialKind, SimEvent, SimKey, SimOrg, SimOu,
    SimUser,
};

use crate::support::*;

async fn moto_config(endpoint: &str, creds: Credentials) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .load()
        .await
}

fn secs(t: &aws_smithy_types::DateTime) -> String {
    iam_audit::record::rfc3339(&chrono::DateTime::from_timestamp(t.secs(), 0).unwrap())
}

struct Seeded {
    /// (id, name, status) of every account, moto's management account included.
    accounts: Vec<(String, String, String)>,
    keys: Vec<BTreeMap<String, String>>,
    /// ids of the accounts with users: the awkward one and the big one.
    awkward: String,
    big: String,
    /// The same organization, for the simulator (conformance).
    mirror: SimOrg,
    /// alice's signing certificate and SSH public key: (type, id).
    alice_credentials: Vec<(&'static str, String)>,
}

/// moto does not implement ListServiceSpecificCredentials (a 500 with an HTML page): every audited account
/// says the credentials were not read, and stays `audited`.
const MOTO_NO_SERVICE_CREDENTIALS: &str = "HTTP500: the server answered HTTP 500 without an AWS error (a proxy, or a server that does not implement the action); service-specific credentials (CodeCommit and Keyspaces passwords, API keys) were not read; the audit goes on without them (iam:ListServiceSpecificCredentials)";

/// A user to create: name, keys (true = active), console password, MFA serials to enable.
struct U(&'static str, &'static [bool], bool, &'static [&'static str]);

/// Create the organization: an account with awkward users, one with 105 users (more than a default IAM
/// page), an empty one, and a SUSPENDED one.
async fn seed(endpoint: &str) -> Seeded {
    let mgmt = moto_config(
        endpoint,
        Credentials::new(FAKE_KEY.1, FAKE_SECRET.1, None, None, "test"),
    )
    .await;
    let org = aws_sdk_organizations::Client::new(&mgmt);
    org.create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .expect("create organization");
    let mut ids = Vec::new();
    for (i, name) in [
        "Prod, \"main\"",
        "Ünïcode Düsseldorf",
        "=HYPERLINK(\"http://evil\")",
        "@empty",
    ]
    .iter()
    .enumerate()
    {
        let r = org
            .create_account()
            .email(format!("acct{i}@example.com"))
            .account_name(*name)
            .send()
            .await
            .expect("create account");
        ids.push(
            r.create_account_status()
                .unwrap()
                .account_id()
                .unwrap()
                .to_string(),
        );
    }
    org.close_account()
        .account_id(&ids[2])
        .send()
        .await
        .expect("close account");
    // The awkward account sits two OUs down: Root/Workloads/Prod.
    let root = org.list_roots().send().await.expect("list roots").roots()[0]
        .id()
        .unwrap()
        .to_string();
    let mut parent = root.clone();
    for name in ["Workloads", "Prod"] {
        let ou = org
            .create_organizational_unit()
            .parent_id(&parent)
            .name(name)
            .send()
            .await
            .expect("create OU");
        parent = ou.organizational_unit().unwrap().id().unwrap().to_string();
    }
    org.move_account()
        .account_id(&ids[0])
        .source_parent_id(&root)
        .destination_parent_id(&parent)
        .send()
        .await
        .expect("move account");

    let sts = aws_sdk_sts::Client::new(&mgmt);
    let mut keys = Vec::new();
    let mut mirror_users: std::collections::HashMap<String, Vec<SimUser>> = Default::default();
    let mut alice_credentials = Vec::new();
    let now = chrono::Utc::now().timestamp();
    let awkward_users = [
        U("alice", &[true], true, &["virtual"]),
        U("=bob", &[true, false], false, &["GAHT12345678"]),
        U("+carol", &[], true, &[]),
        U("@dave", &[true], false, &["virtual", "GAKT00000001"]),
        U("-eve", &[true], false, &[]),
        U("frank,smith", &[false], true, &[]),
    ];
    let big_users: Vec<U> = (0..105)
        .map(|i| {
            U(
                Box::leak(format!("user{i:03}").into_boxed_str()),
                &[true],
                false,
                &[],
            )
        })
        .collect();
    for (account, users) in [(&ids[0], &awkward_users[..]), (&ids[1], &big_users[..])] {
        let c = sts
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account}:role/IAMAuditRole"))
            .role_session_name("seed")
            .send()
            .await
            .expect("assume role for seeding")
            .credentials
            .unwrap();
        let conf = moto_config(
            endpoint,
            Credentials::new(
                c.access_key_id,
                c.secret_access_key,
                Some(c.session_token),
                None,
                "seed",
            ),
        )
        .await;
        let iam = aws_sdk_iam::Client::new(&conf);
        for U(name, key_states, password, mfa) in users {
            iam.create_user()
                .user_name(*name)
                .send()
                .await
                .expect("create user");
            if *password {
                iam.create_login_profile()
                    .user_name(*name)
                    .password("Correct-Horse-9")
                    .send()
                    .await
                    .expect("login profile");
            }
            let mut mfa_kind = "None";
            let mut sim_user = SimUser {
                name: name.to_string(),
                created: now,
                login_profile: *password,
                password_last_used: None,
                keys: vec![],
                mfa: vec![],
                credentials: vec![],
                policies: vec![],
            };
            for serial in mfa.iter() {
                let serial = if *serial == "virtual" {
                    iam.create_virtual_mfa_device()
                        .virtual_mfa_device_name(name.trim_start_matches(['=', '+', '@', '-']))
                        .send()
                        .await
                        .expect("virtual mfa")
                        .virtual_mfa_device
                        .unwrap()
                        .serial_number
                } else {
                    serial.to_string()
                };
                iam.enable_mfa_device()
                    .user_name(*name)
                    .serial_number(&serial)
                    .authentication_code1("123456")
                    .authentication_code2("654321")
                    .send()
                    .await
                    .expect("enable mfa");
                mfa_kind = if serial.starts_with("arn:") && mfa_kind != "Hardware" {
                    "Virtual"
                } else {
                    "Hardware"
                };
                sim_user.mfa.push(serial.clone());
            }
            if *name == "alice" {
                let cert = iam
                    .upload_signing_certificate()
                    .user_name(*name)
                    .certificate_body(include_str!("fixtures/signing-certificate.pem"))
                    .send()
                    .await
                    .expect("signing certificate")
                    .certificate
                    .unwrap();
                let ssh = iam
                    .upload_ssh_public_key()
                    .user_name(*name)
                    .ssh_public_key_body(include_str!("fixtures/ssh-public-key.pub").trim())
                    .send()
                    .await
                    .expect("ssh public key")
                    .ssh_public_key
                    .unwrap();
                for (kind, id, type_name) in [
                    (
                        SimCredentialKind::SigningCertificate,
                        cert.certificate_id.clone(),
                        "signing_certificate",
                    ),
                    (
                        SimCredentialKind::SshPublicKey,
                        ssh.ssh_public_key_id.clone(),
                        "ssh_public_key",
                    ),
                ] {
                    sim_user.credentials.push(SimCredential {
                        kind,
                        id: id.clone(),
                        service: String::new(),
                        active: true,
                        created: now,
                        expires: None,
                    });
                    alice_credentials.push((type_name, id));
                }
            }
            // AWS found -eve's key exposed: its quarantine policy (moto knows AWS's managed policies).
            if *name == "-eve" {
                let policy = "AWSCompromisedKeyQuarantineV2";
                iam.attach_user_policy()
                    .user_name(*name)
                    .policy_arn(format!("arn:aws:iam::aws:policy/{policy}"))
                    .send()
                    .await
                    .expect("attach the quarantine policy");
                sim_user.policies.push(policy.into());
            }
            for active in key_states.iter() {
                let k = iam
                    .create_access_key()
                    .user_name(*name)
                    .send()
                    .await
                    .expect("access key")
                    .access_key
                    .unwrap();
                if !active {
                    iam.update_access_key()
                        .user_name(*name)
                        .access_key_id(&k.access_key_id)
                        .status(aws_sdk_iam::types::StatusType::Inactive)
                        .send()
                        .await
                        .expect("deactivate key");
                }
                sim_user.keys.push(SimKey {
                    id: k.access_key_id.clone(),
                    active: *active,
                    created: k.create_date.as_ref().unwrap().secs(),
                    last_used: None,
                });
                let escaped_name = match name.chars().next() {
                    Some('=' | '+' | '@' | '-') => format!("'{name}"),
                    _ => name.to_string(),
                };
                keys.push(row(&[
                    ("account_id", account),
                    // filled in from ListAccounts by the test
                    ("account_name", ""),
                    ("username", &escaped_name),
                    (
                        "password_status",
                        if *password {
                            "Configured"
                        } else {
                            "Not configured"
                        },
                    ),
                    ("password_last_used", "Never"),
                    ("access_key_id", &k.access_key_id),
                    ("status", if *active { "Active" } else { "Inactive" }),
                    ("created_date", &secs(k.create_date.as_ref().unwrap())),
                    ("last_used_date", "Never used"),
                    ("service_name", "N/A"),
                    ("mfa_status", mfa_kind),
                    ("last_used_region", "N/A"),
                    ("key_age_days", "0"),
                    ("days_since_last_use", ""),
                    ("mfa_devices", &mfa.len().to_string()),
                    // Hand-computed verdicts: a console user without MFA; a console user's active key
                    // never used (set up with the user). Keys are new: none is old or unused 45 days.
                    (
                        "risk",
                        &[
                            (*password && mfa.is_empty()).then_some("console_without_mfa"),
                            (*password && *active).then_some("key_created_with_user"),
                        ]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(";"),
                    ),
                    // moto serves credential reports, so `auto` reads them.
                    ("source", "credential_report"),
                    // Created just now, inside the window; the CloudTrail history has no
                    // CreateAccessKey event for them, and every one of its events was read.
                    ("created_by", "not_in_events"),
                    ("created_by_type", "not_in_events"),
                    ("created_from_ip", "not_in_events"),
                    ("created_event_id", "not_in_events"),
                    // No exceptions file: nothing accepted.
                    ("exception", ""),
                    ("exception_expires", ""),
                ]));
            }
            mirror_users
                .entry(account.clone())
                .or_default()
                .push(sim_user);
        }
    }
    let listed = org.list_accounts().send().await.expect("list accounts");
    let accounts = listed
        .accounts()
        .iter()
        .map(|a| {
            (
                a.id().unwrap().to_string(),
                a.name().unwrap().to_string(),
                a.state().map(|s| s.as_str().to_string()).unwrap(),
            )
        })
        .collect();
    let accounts: Vec<(String, String, String)> = accounts;
    let mirror = SimOrg {
        management_account: "999999999999".into(),
        ous: vec![
            SimOu {
                id: "ou-sim0-workload".into(),
                name: "Workloads".into(),
                parent: String::new(),
            },
            SimOu {
                id: "ou-sim0-prod0000".into(),
                name: "Prod".into(),
                parent: "ou-sim0-workload".into(),
            },
        ],
        accounts: accounts
            .iter()
            .map(|(id, name, status)| SimAccount {
                id: id.clone(),
                parent: if *id == ids[0] {
                    "ou-sim0-prod0000".into()
                } else {
                    String::new()
                },
                name: name.clone(),
                status: status.clone(),
                users: mirror_users.remove(id).unwrap_or_default(),
                events: vec![],
                root: Default::default(),
            })
            .collect(),
    };
    Seeded {
        accounts,
        keys,
        awkward: ids[0].clone(),
        big: ids[1].clone(),
        mirror,
        alice_credentials,
    }
}

/// The event history every caller sees: two events inside the window, one before it.
fn shared_events(now: i64) -> SimOrg {
    let day = 86_400;
    let ev = |id: &str, name: &str, age_days: i64, resources: &[&str]| SimEvent {
        id: id.into(),
        name: name.into(),
        region: "us-east-1".into(),
        time: now - age_days * day,
        username: Some("admin".into()),
        resources: resources.iter().map(|s| s.to_string()).collect(),
        access_key_id: Some("ASIAEXAMPLEADMIN0001".into()),
        source_ip: "198.51.100.7".into(),
        source: "iam.amazonaws.com".into(),
        actor: None,
        key_id: None,
        key_user: None,
    };
    SimOrg {
        management_account: "000000000000".into(),
        ous: vec![],
        accounts: vec![SimAccount {
            id: "000000000000".into(),
            parent: String::new(),
            name: "history".into(),
            status: "ACTIVE".into(),
            users: vec![],
            root: Default::default(),
            events: vec![
                ev("e-1", "CreateUser", 2, &["=bob"]),
                ev(
                    "e-2",
                    "DeleteAccessKey",
                    3,
                    &["AKIAOLDKEY000000001", "alice"],
                ),
                ev("e-old", "CreateUser", 20, &["mallory"]),
            ],
        }],
    }
}

/// The accounts report's columns without the one that differs from run to run.
fn account_columns_but_duration() -> Vec<&'static str> {
    iam_audit::report::ACCOUNT_COLUMNS
        .iter()
        .copied()
        .filter(|c| *c != "duration_s")
        .collect()
}

fn account_name_cell(name: &str) -> String {
    match name.chars().next() {
        Some('=' | '+' | '@' | '-') => format!("'{name}"),
        _ => name.to_string(),
    }
}

// Story: a security engineer runs the old script's command line against an org with awkward data and gets
// every key, event and account, exactly, with formula-like cells escaped, and exit code 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_org_gives_exact_rows_for_every_account() {
    let moto = Moto::start_with_managed_policies();
    let seeded = seed(&moto.endpoint).await;
    let now = chrono::Utc::now();
    let ct = iam_audit::sim::Sim::start(shared_events(now.timestamp()), Faults::default())
        .await
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let creds_file = home.path().join("credentials");
    std::fs::write(
        &creds_file,
        format!(
            "[mgmt-profile]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            FAKE_KEY.1, FAKE_SECRET.1
        ),
    )
    .unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let start = (now - chrono::Duration::days(10))
        .format("%Y-%m-%d")
        .to_string();
    let out = run_bin(
        &[
            "--profile",
            "mgmt-profile",
            "--role",
            "IAMAuditRole",
            "--output-dir",
            out_dir.path().to_str().unwrap(),
            "--start-date",
            &start,
            "--no-progress",
            // moto has no quota; the default 10 IAM calls/s would only slow the test down. moto does not
            // implement ListServiceSpecificCredentials (it answers 500): one retry, then the note.
            "--initial-backoff-ms",
            "20",
            "--max-backoff-ms",
            "50",
            "--iam-rate",
            "1000",
            "--iam-burst",
            "100",
        ],
        &[
            ("AWS_SHARED_CREDENTIALS_FILE", creds_file.to_str().unwrap()),
            ("AWS_ENDPOINT_URL", &moto.endpoint),
            ("AWS_ENDPOINT_URL_CLOUDTRAIL", &ct.endpoint()),
        ],
        out_dir.path(),
    )
    .await;
    assert_eq!(out.code, 0, "stderr:\n{}", out.stderr);

    // Keys: exactly the seeded ones, every field.
    let mut expected_keys = seeded.keys.clone();
    for k in &mut expected_keys {
        let name = seeded
            .accounts
            .iter()
            .find(|a| a.0 == k["account_id"])
            .unwrap()
            .1
            .clone();
        k.insert("account_name".into(), account_name_cell(&name));
    }
    expected_keys.sort();
    let mut got = out.keys.clone();
    got.sort();
    assert_eq!(got.len(), 6 + 105);
    assert_same_rows(&got, &expected_keys);
    // The raw CSV quotes what needs quoting.
    assert!(
        out.keys_text.contains(",\"Prod, \"\"main\"\"\","),
        "{}",
        &out.keys_text[..400]
    );
    assert!(out.keys_text.contains(",\"frank,smith\","));

    // Accounts: every one, the SUSPENDED one marked and not audited.
    let mut expected_accounts: Vec<_> = seeded
        .accounts
        .iter()
        .map(|(id, name, state)| {
            let active = state == "ACTIVE";
            let (users, keys) = if *id == seeded.awkward {
                ("6", "6")
            } else if *id == seeded.big {
                ("105", "105")
            } else {
                ("0", "0")
            };
            row(&[
                ("account_id", id),
                ("account_name", &account_name_cell(name)),
                ("account_status", state),
                (
                    "audit_status",
                    if active { "audited" } else { "not_active" },
                ),
                ("iam_status", if active { "ok" } else { "not_run" }),
                ("cloudtrail_status", if active { "ok" } else { "not_run" }),
                ("users", users),
                ("keys", keys),
                ("events", if active { "2" } else { "0" }),
                (
                    "error",
                    if active {
                        MOTO_NO_SERVICE_CREDENTIALS
                    } else {
                        ""
                    },
                ),
                ("strategy", if active { "credential_report" } else { "" }),
                // moto's GetCredentialReport always says this GeneratedTime.
                (
                    "credential_report_time",
                    if active { "2015-02-02T20:02:02Z" } else { "" },
                ),
                // moto's root user: no keys, no MFA (from its report's <root_account> row).
                ("root_access_keys", if active { "0" } else { "" }),
                ("root_mfa", if active { "None" } else { "" }),
                ("root_access_key", "0"),
                // moto answers no ListOrganizationsFeatures: centralized root access is unknown, no
                // finding.
                ("root_access_not_centralized", "0"),
                ("root_without_mfa", if active { "1" } else { "0" }),
                ("root_without_hardware_mfa", if active { "1" } else { "0" }),
                // +carol and frank,smith: a password and no MFA; alice's key never used.
                (
                    "console_without_mfa",
                    if *id == seeded.awkward { "2" } else { "0" },
                ),
                (
                    "key_created_with_user",
                    if *id == seeded.awkward { "1" } else { "0" },
                ),
                ("password_unused_45d", "0"),
                ("key_unused_45d", "0"),
                ("two_active_keys", "0"),
                ("key_older_than_90d", "0"),
                ("key_created_for_other_user", "0"),
                ("key_created_by_root", "0"),
                ("key_short_lived", "0"),
                ("api_key_older_than_90d", "0"),
                ("api_key_without_expiry", "0"),
                ("api_key_user", "0"),
                // -eve, whose key AWS quarantined (AWSCompromisedKeyQuarantineV2 attached).
                (
                    "key_quarantined_by_aws",
                    if *id == seeded.awkward { "1" } else { "0" },
                ),
                // No break-glass rule: no user is asserted.
                ("break_glass_used", "0"),
                ("break_glass_without_hardware_mfa", "0"),
                ("break_glass_access_key", "0"),
                ("break_glass_without_password", "0"),
                ("break_glass_other_credential", "0"),
                // alice's signing certificate (the report shows it; SSH keys are not asked for).
                ("credentials", if *id == seeded.awkward { "1" } else { "0" }),
                (
                    "ssh_keys_listed",
                    if active { "none (--ssh-keys)" } else { "" },
                ),
                ("events_other_sources", "0"),
                ("role_used", if active { "IAMAuditRole" } else { "" }),
                (
                    "ou_path",
                    if *id == seeded.awkward {
                        "Root/Workloads/Prod"
                    } else {
                        "Root"
                    },
                ),
                // The first run in its directory: nothing to compare with, so blank, not zero.
                ("new_findings", ""),
                ("resolved_findings", ""),
                ("note", ""),
                ("security_hub", "off"),
            ])
        })
        .collect();
    expected_accounts.sort();
    let cols = account_columns_but_duration();
    assert_eq!(project(&out.accounts, &cols), expected_accounts);
    assert_eq!(
        seeded
            .accounts
            .iter()
            .filter(|a| a.2 == "SUSPENDED")
            .count(),
        1
    );

    // Events: the two inside the window, once per audited account, with the seed's columns first.
    let active: Vec<_> = seeded.accounts.iter().filter(|a| a.2 == "ACTIVE").collect();
    let mut expected_events = Vec::new();
    for (id, name, _) in &active {
        for (eid, ename, days, resources) in [
            ("e-1", "CreateUser", 2, "'=bob"),
            ("e-2", "DeleteAccessKey", 3, "AKIAOLDKEY000000001,alice"),
        ] {
            let t = (now - chrono::Duration::days(days))
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string();
            expected_events.push(row(&[
                ("eventTime", &t),
                ("eventName", ename),
                ("username", "admin"),
                ("account_id", id),
                ("account_name", &account_name_cell(name)),
                ("resources", resources),
                ("region", "us-east-1"),
                ("event_id", eid),
                ("access_key_id", "ASIAEXAMPLEADMIN0001"),
                ("source_ip_address", "198.51.100.7"),
                ("event_source", "iam.amazonaws.com"),
            ]));
        }
    }
    expected_events.sort();
    let mut got_events = out.events.clone();
    got_events.sort();
    // eventTime is from the same clock second or the next: compare it apart.
    for (g, e) in got_events.iter().zip(&expected_events) {
        let (gt, et) = (&g["eventTime"], &e["eventTime"]);
        let gt = chrono::DateTime::parse_from_rfc3339(gt).unwrap();
        let et = chrono::DateTime::parse_from_rfc3339(et).unwrap();
        assert!((gt - et).num_seconds().abs() <= 2, "{gt} vs {et}");
    }
    let strip = |rows: &[BTreeMap<String, String>]| {
        let mut v: Vec<_> = rows
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.remove("eventTime");
                r
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(strip(&got_events), strip(&expected_events));

    // The summary names the four files and counts the flags.
    assert!(
        out.stderr
            .contains("accounts: 5 (4 audited, 0 partial, 0 skipped, 1 not active)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("risk flags (users): root_without_mfa 4, root_without_hardware_mfa 4, console_without_mfa 2, key_created_with_user 1, key_quarantined_by_aws 1\n"),
        "{}",
        out.stderr
    );
    // The four reports, the findings, the changes (a header only: no earlier run) and the summary page.
    assert_eq!(out.files.len(), 9, "{:?}", out.files);
    assert!(out.changes.is_empty());
    // Awkward names (formula-looking, quotes, commas, Unicode) still make valid OCSF 1.6.0: one finding
    // per flag and resource (the 4 roots' two MFA flags, carol's and frank's console, alice's key, -eve
    // quarantined).
    assert_eq!(
        assert_valid_ocsf(out.findings_path.as_deref().unwrap()),
        "12 events, 0 invalid"
    );
    let mut per_flag = BTreeMap::new();
    for f in &out.findings {
        let uid = f["finding_info"]["uid"].as_str().unwrap();
        *per_flag
            .entry(uid.split('/').nth(2).unwrap().to_string())
            .or_insert(0) += 1;
    }
    assert_eq!(
        per_flag,
        BTreeMap::from([
            ("console_without_mfa".to_string(), 2),
            ("key_created_with_user".to_string(), 1),
            ("key_quarantined_by_aws".to_string(), 1),
            ("root_without_hardware_mfa".to_string(), 4),
            ("root_without_mfa".to_string(), 4),
        ])
    );

    // Users: every user, keyless ones included, and a root row per audited account.
    assert_eq!(out.users.len(), 6 + 105 + 4);
    let carol = out
        .users
        .iter()
        .find(|u| u["username"] == "'+carol")
        .unwrap();
    assert_eq!(
        (
            carol["password_enabled"].as_str(),
            carol["mfa_active"].as_str(),
            carol["active_keys"].as_str(),
            carol["risk"].as_str()
        ),
        ("true", "false", "0", "console_without_mfa")
    );
    let dave = out
        .users
        .iter()
        .find(|u| u["username"] == "'@dave")
        .unwrap();
    assert_eq!(
        (dave["mfa_type"].as_str(), dave["mfa_devices"].as_str()),
        ("Hardware", "2"),
        "a virtual and a hardware device: the report, the virtual list and the summary leave it open, so ListMFADevices is asked"
    );
    let roots: Vec<_> = out
        .users
        .iter()
        .filter(|u| u["username"] == "<root_account>")
        .collect();
    assert_eq!(roots.len(), 4);
    assert!(roots
        .iter()
        .all(|r| r["mfa_active"] == "false"
            && r["risk"] == "root_without_mfa;root_without_hardware_mfa"));

    // Conformance: the same org with per-user calls gives the same key rows, but for `source`; and the same
    // user rows but for `source`, `note` and the root rows (the account summary knows less than the report).
    let out_dir3 = tempfile::tempdir().unwrap();
    let out3 = run_bin(
        &[
            "--profile",
            "mgmt-profile",
            "--role",
            "IAMAuditRole",
            "--strategy",
            "api",
            "--ssh-keys",
            "all",
            "--output-dir",
            out_dir3.path().to_str().unwrap(),
            "--start-date",
            &start,
            "--no-progress",
            "--initial-backoff-ms",
            "20",
            "--max-backoff-ms",
            "50",
            "--iam-rate",
            "1000",
            "--iam-burst",
            "100",
        ],
        &[
            ("AWS_SHARED_CREDENTIALS_FILE", creds_file.to_str().unwrap()),
            ("AWS_ENDPOINT_URL", &moto.endpoint),
            ("AWS_ENDPOINT_URL_CLOUDTRAIL", &ct.endpoint()),
        ],
        out_dir3.path(),
    )
    .await;
    assert_eq!(out3.code, 0, "stderr:\n{}", out3.stderr);
    let without = |rows: &[BTreeMap<String, String>],
                   cols: &[&str],
                   root: bool|
     -> Vec<BTreeMap<String, String>> {
        rows.iter()
            .filter(|r| root || r.get("username").map(String::as_str) != Some("<root_account>"))
            .map(|r| {
                let mut r = r.clone();
                for c in cols {
                    r.remove(*c);
                }
                r
            })
            .collect()
    };
    assert!(out3.keys.iter().all(|k| k["source"] == "api"));
    // moto's signing certificates (asked for the users whose credential report row shows one, or for
    // every user under `api`) and SSH public keys (`--ssh-keys all`): alice's, exactly.
    let listed = |out: &RunOutput| -> Vec<(String, String, String, String)> {
        let mut v: Vec<_> = rows_of(out, "credentials_", &iam_audit::report::CREDENTIAL_COLUMNS)
            .into_iter()
            .map(|r| {
                (
                    r["account_id"].clone(),
                    r["username"].clone(),
                    r["type"].clone(),
                    r["credential_id"].clone(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let alice = |types: &[&str]| -> Vec<(String, String, String, String)> {
        let mut v: Vec<_> = seeded
            .alice_credentials
            .iter()
            .filter(|(t, _)| types.contains(t))
            .map(|(t, id)| {
                (
                    seeded.awkward.clone(),
                    "alice".into(),
                    t.to_string(),
                    id.clone(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(listed(&out), alice(&["signing_certificate"]));
    assert_eq!(
        listed(&out3),
        alice(&["signing_certificate", "ssh_public_key"])
    );
    let alice_row = |out: &RunOutput| {
        out.users
            .iter()
            .find(|u| u["username"] == "alice")
            .map(|u| {
                (
                    u["signing_certificates"].clone(),
                    u["ssh_public_keys"].clone(),
                    u["service_specific_credentials"].clone(),
                )
            })
            .unwrap()
    };
    assert_eq!(
        alice_row(&out),
        ("1".into(), "not_read".into(), "not_read".into())
    );
    assert_eq!(
        alice_row(&out3),
        ("1".into(), "1".into(), "not_read".into())
    );
    assert_same_rows(
        &without(&out3.keys, &["source"], true),
        &without(&out.keys, &["source"], true),
    );
    assert_same_rows(
        &without(&out3.users, &["source", "note", "ssh_public_keys"], false),
        &without(&out.users, &["source", "note", "ssh_public_keys"], false),
    );

    // The same org with the seed's Spanish values and no escaping, for automation built on the old script.
    let out_dir2 = tempfile::tempdir().unwrap();
    let out2 = run_bin(
        &[
            "--role",
            "IAMAuditRole",
            "--output-dir",
            out_dir2.path().to_str().unwrap(),
            "--legacy-values",
            "es",
            "--no-escape-formulas",
            "--days",
            "5",
            "-q",
            "--initial-backoff-ms",
            "20",
            "--max-backoff-ms",
            "50",
            "--iam-rate",
            "1000",
        ],
        &[
            FAKE_KEY,
            FAKE_SECRET,
            ("AWS_ENDPOINT_URL", &moto.endpoint),
            ("AWS_ENDPOINT_URL_CLOUDTRAIL", &ct.endpoint()),
        ],
        out_dir2.path(),
    )
    .await;
    assert_eq!(out2.code, 0, "stderr:\n{}", out2.stderr);
    assert_eq!(out2.stderr, "", "-q prints nothing on success");
    let bob: Vec<_> = out2
        .keys
        .iter()
        .filter(|k| k["username"] == "=bob")
        .collect();
    assert_eq!(bob.len(), 2);
    assert!(bob.iter().all(|k| k["password_status"] == "No configurada"
        && k["password_last_used"] == "Nunca"
        && k["last_used_date"] == "Nunca utilizada"
        && k["mfa_status"] == "Hardware"));
    let alice = out2.keys.iter().find(|k| k["username"] == "alice").unwrap();
    assert_eq!(alice["password_status"], "Configurada");
    assert_eq!(alice["mfa_status"], "Virtual");
    // --days 5 keeps only the 2-day and 3-day-old events.
    assert_eq!(out2.events.len(), 2 * active.len());
}

// Story: the simulator is honest — the same organization loaded into moto and into the simulator gives the
// same key report and the same accounts report (events aside: moto has no LookupEvents).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_and_the_simulator_give_the_same_reports() {
    let moto = Moto::start_with_managed_policies();
    let seeded = seed(&moto.endpoint).await;
    let now = chrono::Utc::now().timestamp();
    let mut no_events = shared_events(now);
    no_events.accounts[0].events.clear();
    let ct = Sim::start(no_events, Faults::default()).await.unwrap();
    let sim = Sim::start(seeded.mirror.clone(), Faults::default())
        .await
        .unwrap();
    let fast = [
        "--initial-backoff-ms",
        "20",
        "--max-backoff-ms",
        "50",
        "--iam-rate",
        "1000",
        "--iam-burst",
        "100",
        "--no-progress",
        "--role",
        "IAMAuditRole",
    ];
    let dir_moto = tempfile::tempdir().unwrap();
    let mut args: Vec<&str> = fast.to_vec();
    args.extend(["--output-dir", dir_moto.path().to_str().unwrap()]);
    let ct_endpoint = ct.endpoint();
    let from_moto = run_bin(
        &args,
        &[
            FAKE_KEY,
            FAKE_SECRET,
            ("AWS_ENDPOINT_URL", &moto.endpoint),
            ("AWS_ENDPOINT_URL_CLOUDTRAIL", &ct_endpoint),
        ],
        dir_moto.path(),
    )
    .await;
    let dir_sim = tempfile::tempdir().unwrap();
    let mut args: Vec<&str> = fast.to_vec();
    args.extend(["--output-dir", dir_sim.path().to_str().unwrap()]);
    let sim_endpoint = sim.endpoint();
    let from_sim = run_bin(
        &args,
        &[FAKE_KEY, FAKE_SECRET, ("AWS_ENDPOINT_URL", &sim_endpoint)],
        dir_sim.path(),
    )
    .await;
    assert_eq!(from_moto.code, 0, "{}", from_moto.stderr);
    assert_eq!(from_sim.code, 0, "{}", from_sim.stderr);
    assert_eq!(from_moto.keys.len(), 111);
    for a in &from_moto.accounts {
        let expected = if a["audit_status"] == "audited" {
            MOTO_NO_SERVICE_CREDENTIALS
        } else {
            ""
        };
        assert_eq!(a["error"], expected, "{a:?}");
    }
    for a in &from_sim.accounts {
        assert_eq!(a["error"], "", "{a:?}\n{}", from_sim.stderr);
    }
    assert_same_rows(&from_moto.keys, &from_sim.keys);
    // moto's reports all say they were generated in 2015.
    let cols: Vec<&str> = account_columns_but_duration()
        .into_iter()
        .filter(|c| *c != "credential_report_time" && *c != "error")
        .collect();
    assert_eq!(
        project(&from_moto.accounts, &cols),
        project(&from_sim.accounts, &cols)
    );
}
