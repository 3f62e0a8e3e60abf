//! The simulated AWS (design §5): an organization in memory (`SimOrg`), generated from a `Scenario` or
//! built by hand, served over loopback HTTP by `server` in the four wire protocols the SDK clients speak —
//! Organizations and CloudTrail (awsJson1_1), STS and IAM (awsQuery/XML) — so the unmodified engine talks to
//! it through `AWS_ENDPOINT_URL`. Knobs: latency, per-account per-service token buckets answering with
//! AWS's own throttling errors, denied AssumeRole / LookupEvents, a share of 500s, reset connections and
//! short-lived credentials. Every call is logged for tests to assert on.

mod hub;
pub mod s3;
pub mod server;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;

pub use server::{Call, Sim};

/// One IAM access key.
#[derive(Debug, Clone, PartialEq)]
pub struct SimKey {
    pub id: String,
    pub active: bool,
    /// Epoch seconds.
    pub created: i64,
    /// (epoch seconds, service, region) of the last use; `None` = never used.
    pub last_used: Option<(i64, String, String)>,
}

/// One IAM user.
#[derive(Debug, Clone, PartialEq)]
pub struct SimUser {
    pub name: String,
    pub created: i64,
    /// Has a console password (a login profile).
    pub login_profile: bool,
    pub password_last_used: Option<i64>,
    pub keys: Vec<SimKey>,
    /// MFA device serials: `arn:aws:iam::ACCOUNT:mfa/NAME` (virtual), `arn:aws:iam::ACCOUNT:u2f/...` (FIDO) or
    /// a plain hardware serial.
    pub mfa: Vec<String>,
    /// Long-term credentials other than access keys.
    pub credentials: Vec<SimCredential>,
    /// AWS managed policies attached to the user, by name (`AWSCompromisedKeyQuarantineV3`, …).
    pub policies: Vec<String>,
}

/// What kind of other long-term credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimCredentialKind {
    /// A service-specific credential of `service` (CodeCommit, Keyspaces, an API key).
    Service,
    SshPublicKey,
    SigningCertificate,
}

/// One long-term credential that is not an access key.
#[derive(Debug, Clone, PartialEq)]
pub struct SimCredential {
    pub kind: SimCredentialKind,
    pub id: String,
    /// `codecommit.amazonaws.com`, `cassandra.amazonaws.com`, `bedrock.amazonaws.com`; empty otherwise.
    pub service: String,
    pub active: bool,
    pub created: i64,
    /// Bedrock API keys may expire (epoch seconds).
    pub expires: Option<i64>,
}

/// Who made a call, as its CloudTrail event's `userIdentity` names them.
#[derive(Debug, Clone, PartialEq)]
pub struct SimActor {
    /// IAMUser, AssumedRole, Root, …
    pub kind: String,
    pub arn: String,
    /// IAM users only.
    pub user_name: Option<String>,
    pub user_agent: String,
}

/// One CloudTrail event of the account's event history.
#[derive(Debug, Clone, PartialEq)]
pub struct SimEvent {
    pub id: String,
    pub name: String,
    pub region: String,
    pub time: i64,
    pub username: Option<String>,
    pub resources: Vec<String>,
    pub access_key_id: Option<String>,
    pub source_ip: String,
    /// The service that recorded it: `iam.amazonaws.com`, or another service sharing the event name
    /// (Identity Center, ElastiCache, MemoryDB, MQ, Transfer, WorkMail also have CreateUser/DeleteUser).
    pub source: String,
    /// The caller in the event's body (`userIdentity`); `None`: an IAM user named `username`.
    pub actor: Option<SimActor>,
    /// CreateAccessKey / DeleteAccessKey: the key (`responseElements.accessKey.accessKeyId`,
    /// `requestParameters.accessKeyId`) and the `userName` parameter (`None`: the caller's own key).
    pub key_id: Option<String>,
    pub key_user: Option<String>,
}

/// Services whose CreateUser/DeleteUser events LookupEvents returns beside IAM's.
pub const OTHER_USER_SOURCES: [&str; 6] = [
    "sso-directory.amazonaws.com",
    "elasticache.amazonaws.com",
    "memorydb.amazonaws.com",
    "mq.amazonaws.com",
    "transfer.amazonaws.com",
    "workmail.amazonaws.com",
];

/// The root user of an account.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SimRoot {
    /// Epoch seconds.
    pub created: i64,
    /// MFA serials: `arn:aws:iam::ACCOUNT:mfa/root-account-mfa-device` (virtual) or a hardware serial.
    pub mfa: Vec<String>,
    pub keys: Vec<SimKey>,
    pub password_last_used: Option<i64>,
    /// The root user has no password (GetAccountSummary's `AccountPasswordPresent` 0): as after
    /// centralized root access deleted it.
    pub no_password: bool,
}

/// One member account.
#[derive(Debug, Clone, PartialEq)]
pub struct SimAccount {
    pub id: String,
    pub name: String,
    /// ACTIVE or SUSPENDED.
    pub status: String,
    pub users: Vec<SimUser>,
    pub events: Vec<SimEvent>,
    pub root: SimRoot,
    /// The id of the OU the account sits in; empty: directly under the root.
    pub parent: String,
}

/// One organizational unit.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOu {
    pub id: String,
    pub name: String,
    /// The parent OU's id; empty: the root.
    pub parent: String,
}

/// The root of every simulated organization.
pub const ROOT_ID: &str = "r-sim0";

/// Faults and quotas of the simulated AWS.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// Added to every response, milliseconds.
    pub latency_ms: u64,
    /// Uniform extra latency, 0..=jitter_ms.
    pub jitter_ms: u64,
    /// IAM calls per second per account (0 = unlimited); IAM answers `Throttling` (HTTP 400) above it.
    pub iam_rate: f64,
    pub iam_burst: f64,
    /// LookupEvents calls per second per account and region; CloudTrail answers `ThrottlingException`.
    pub cloudtrail_rate: f64,
    pub cloudtrail_burst: f64,
    /// Accounts whose audit role refuses AssumeRole (AccessDenied).
    pub deny_assume_role: Vec<String>,
    /// Accounts whose audit role lacks cloudtrail:LookupEvents (AccessDeniedException).
    pub deny_lookup_events: Vec<String>,
    /// Accounts where Security Hub is not enabled (BatchImportFindings: InvalidAccessException).
    pub security_hub_disabled: Vec<String>,
    /// Accounts whose audit role lacks securityhub:BatchImportFindings (AccessDeniedException).
    pub deny_security_hub: Vec<String>,
    /// Share of IAM/CloudTrail/Organizations/STS calls answered with a 500.
    pub error_rate: f64,
    /// Share of calls whose connection is closed without an answer.
    pub reset_rate: f64,
    /// Lifetime of assumed-role credentials, seconds; 0 = honour DurationSeconds (default 3600).
    pub credential_lifetime_secs: u64,
    /// Keep the per-call log (tests); the benchmark turns it off and keeps counters only.
    pub log_calls: bool,
    /// Organizations ListAccounts answers AccessDeniedException (not the management account).
    pub deny_list_accounts: bool,
    /// Share of calls answered `slow_ms` late (a slow hop, a cold backend).
    pub slow_rate: f64,
    pub slow_ms: u64,
    /// Accounts whose IAM quota is `throttled_accounts_iam_rate` instead of `iam_rate`: one noisy
    /// neighbour throttled hard, to show it does not slow the others.
    pub throttled_accounts: Vec<String>,
    pub throttled_accounts_iam_rate: f64,
    /// Accounts whose IAM ListAccessKeys answers are malformed XML (a broken proxy, a truncated body).
    pub malformed_accounts: Vec<String>,
    /// Seed of the fault draws (latency jitter, 500s, resets, slow answers): the n-th call the simulator
    /// answers draws from a generator seeded by (seed, n), so a failing run can be replayed.
    pub seed: u64,
    /// Accounts whose audit role lacks iam:GenerateCredentialReport and iam:GetCredentialReport.
    pub deny_credential_report: Vec<String>,
    /// Accounts whose audit role lacks iam:GetAccountSummary and iam:ListVirtualMFADevices.
    pub deny_root_checks: Vec<String>,
    /// Accounts whose audit role lacks iam:ListServiceSpecificCredentials, iam:ListSigningCertificates,
    /// iam:ListSSHPublicKeys and iam:ListEntitiesForPolicy.
    pub deny_other_credentials: Vec<String>,
    /// ListServiceSpecificCredentials refuses `AllUsers` without a `ServiceName` (ValidationError), as a
    /// stricter IAM might.
    pub service_name_required: bool,
    /// How long a credential report takes to generate, milliseconds.
    pub report_delay_ms: u64,
    /// Every account starts with a report generated this many seconds ago (0: none). AWS reuses a report
    /// younger than 4 hours; it leaves out users and keys created after it.
    pub report_age_secs: u64,
    /// The first N GenerateCredentialReport calls of each account answer `LimitExceeded`.
    pub report_limit_exceeded: u32,
    /// The organization manages its member accounts' root credentials (ListOrganizationsFeatures says
    /// RootCredentialsManagement and RootSessions): sts:AssumeRoot gives member accounts' root sessions.
    pub root_credentials_management: bool,
    /// Member accounts whose sts:AssumeRoot is refused (an SCP, say): AccessDenied.
    pub deny_assume_root: Vec<String>,
    /// Accounts whose ARN (in ListAccounts) is in the aws-us-gov partition.
    pub us_gov_accounts: Vec<String>,
    /// Accounts whose AssumeRole accepts only these role names (others: AccessDenied, as for a role not
    /// deployed); accounts not listed accept any role.
    pub account_roles: std::collections::BTreeMap<String, Vec<String>>,
    /// Users listed (ListUsers, the credential report) but deleted before their other calls: those answer
    /// NoSuchEntity, as when a user is deleted during the audit.
    pub vanished_users: Vec<String>,
    /// Organizations ListRoots, ListOrganizationalUnitsForParent and ListAccountsForParent answer
    /// AccessDeniedException (a policy without the OU actions).
    pub deny_ou_tree: bool,
    /// Accounts whose ListUsers never stops paginating: every page says IsTruncated with a new Marker.
    pub endless_users: Vec<String>,
    /// Regions whose requests are accepted and never answered (a black hole: a proxy dropping packets, a
    /// region that hangs).
    pub black_hole_regions: Vec<String>,
    /// Accounts that ListAccountsForParent leaves out (moved between OUs while the tree was walked):
    /// only ListAccounts names them.
    pub hidden_from_tree: Vec<String>,
    /// ListAccounts answers this many pages, then `InvalidInputException` (its token expired): a listing
    /// that fails part-way (0: every page).
    pub list_accounts_pages: usize,
    /// GetAccountSummary's `MFADevicesInUse` leaves out the root user's devices (AWS counts them: "assigned
    /// to an IAM user or to the root account"), as an IAM that counts otherwise might.
    pub summary_without_root_mfa: bool,
    /// Serve at most this many requests at once (0: no limit); the others wait their turn, first come
    /// first served, as at a busy endpoint: a client's answers then take its queueing time on top of
    /// `latency_ms`.
    pub serve_at_once: usize,
    /// The account GetCallerIdentity names for the caller's own credentials (empty: the management
    /// account), as for a delegated administrator running the audit.
    pub caller_account: String,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency_ms: 0,
            jitter_ms: 0,
            iam_rate: 0.0,
            iam_burst: 0.0,
            cloudtrail_rate: 0.0,
            cloudtrail_burst: 0.0,
            deny_assume_role: Vec::new(),
            deny_lookup_events: Vec::new(),
            security_hub_disabled: Vec::new(),
            deny_security_hub: Vec::new(),
            error_rate: 0.0,
            reset_rate: 0.0,
            credential_lifetime_secs: 0,
            log_calls: true,
            deny_list_accounts: false,
            slow_rate: 0.0,
            slow_ms: 0,
            throttled_accounts: Vec::new(),
            throttled_accounts_iam_rate: 1.0,
            malformed_accounts: Vec::new(),
            seed: 1,
            deny_credential_report: Vec::new(),
            deny_root_checks: Vec::new(),
            deny_other_credentials: Vec::new(),
            service_name_required: false,
            report_delay_ms: 1000,
            report_age_secs: 0,
            report_limit_exceeded: 0,
            root_credentials_management: false,
            deny_assume_root: Vec::new(),
            us_gov_accounts: Vec::new(),
            black_hole_regions: Vec::new(),
            serve_at_once: 0,
            summary_without_root_mfa: false,
            hidden_from_tree: Vec::new(),
            list_accounts_pages: 0,
            account_roles: Default::default(),
            vanished_users: Vec::new(),
            deny_ou_tree: false,
            endless_users: Vec::new(),
            caller_account: String::new(),
        }
    }
}

/// A whole simulated organization.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOrg {
    pub management_account: String,
    pub accounts: Vec<SimAccount>,
    /// The OU tree below the root (`ROOT_ID`, named `Root`).
    pub ous: Vec<SimOu>,
}

/// The OU tree of generated organizations: Security, Workloads/{Prod, Dev}, Sandbox. Generated accounts
/// go round-robin into the root and the four OUs without children.
pub fn generated_ous() -> Vec<SimOu> {
    let ou = |id: &str, name: &str, parent: &str| SimOu {
        id: id.into(),
        name: name.into(),
        parent: parent.into(),
    };
    vec![
        ou("ou-sim0-security", "Security", ""),
        ou("ou-sim0-workload", "Workloads", ""),
        ou("ou-sim0-prod0000", "Prod", "ou-sim0-workload"),
        ou("ou-sim0-dev00000", "Dev", "ou-sim0-workload"),
        ou("ou-sim0-sandbox0", "Sandbox", ""),
    ]
}

/// The OU a generated account sits in (empty: the root).
fn generated_parent(n: usize) -> String {
    [
        "",
        "ou-sim0-security",
        "ou-sim0-prod0000",
        "ou-sim0-dev00000",
        "ou-sim0-sandbox0",
    ][n % 5]
        .to_string()
}

/// A generated organization: sizes and a seed. Same scenario, same organization.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Scenario {
    pub seed: u64,
    pub accounts: usize,
    /// Every n-th account is SUSPENDED (0 = none).
    pub suspended_every: usize,
    /// Users per account: uniform in min..=max.
    pub users_min: usize,
    pub users_max: usize,
    /// CloudTrail events per account, spread over the last 80 days and over `event_regions`.
    pub events_per_account: usize,
    pub event_regions: Vec<String>,
    /// "Now" of the generated data, epoch seconds; 0 = the wall clock.
    pub now: i64,
    /// How many weeks the organization has lived since epoch 0: each one deletes, creates and changes a
    /// few users and keys the same way for the same seed (`demo --epoch`, so that a second run has
    /// something to compare).
    pub epoch: u32,
    pub faults: Faults,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            seed: 1,
            accounts: 30,
            suspended_every: 12,
            users_min: 2,
            users_max: 20,
            events_per_account: 60,
            event_regions: vec!["us-east-1".to_string()],
            now: 0,
            epoch: 0,
            faults: Faults::default(),
        }
    }
}

const SERVICES: [&str; 6] = ["s3", "ec2", "iam", "sts", "lambda", "dynamodb"];
const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "us-west-2"];
const EVENT_NAMES: [&str; 5] = [
    "DeleteUser",
    "DeleteAccessKey",
    "DeleteLoginProfile",
    "CreateAccessKey",
    "CreateUser",
];

/// Account id of the n-th generated account.
pub fn account_id(n: usize) -> String {
    format!("{:012}", 100_000_000_000u64 + n as u64)
}

impl Scenario {
    /// `accounts` ACTIVE accounts of exactly `users` users and `events` CloudTrail events each.
    pub fn sized(seed: u64, accounts: usize, users: usize, events: usize) -> Scenario {
        Scenario {
            seed,
            accounts,
            suspended_every: 0,
            users_min: users,
            users_max: users,
            events_per_account: events,
            ..Scenario::default()
        }
    }

    /// Read a scenario from TOML; unknown keys are errors naming the key.
    pub fn from_toml(text: &str) -> Result<Scenario, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
    }

    /// Build the organization. 10,000 accounts × 20 users take well under a second.
    pub fn generate(&self) -> SimOrg {
        let now = if self.now > 0 {
            self.now
        } else {
            chrono::Utc::now().timestamp()
        };
        let day = 86_400i64;
        let accounts = (0..self.accounts)
            .map(|n| {
                let mut rng = StdRng::seed_from_u64(
                    self.seed ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                );
                let id = account_id(n);
                let suspended = self.suspended_every > 0
                    && n % self.suspended_every == self.suspended_every - 1;
                let name = match n % 10 {
                    3 => format!("=prod-{n}, \"legacy\""),
                    7 => format!("équipe-{n}"),
                    _ => format!("account-{n:04}"),
                };
                let n_users = if self.users_max > self.users_min {
                    rng.random_range(self.users_min..=self.users_max)
                } else {
                    self.users_min
                };
                let mut key_no = 0u64;
                let users = (0..n_users)
                    .map(|u| {
                        let uname = match u % 9 {
                            4 => format!("+svc-{u}"),
                            8 => format!("@ops-{u}"),
                            _ => format!("user-{u:03}"),
                        };
                        let created = now - rng.random_range(100..900) * day;
                        let n_keys = [0, 1, 1, 2][rng.random_range(0..4)];
                        let keys = (0..n_keys)
                            .map(|_| {
                                key_no += 1;
                                let kcreated = now - rng.random_range(1..400) * day;
                                let used = rng.random_bool(0.7);
                                SimKey {
                                    id: format!("AKIA{:08}{:08}", n, key_no),
                                    active: rng.random_bool(0.8),
                                    created: kcreated,
                                    last_used: used.then(|| {
                                        (
                                            now - rng.random_range(0..60) * day
                                                - rng.random_range(0..day),
                                            SERVICES[rng.random_range(0..SERVICES.len())]
                                                .to_string(),
                                            REGIONS[rng.random_range(0..REGIONS.len())].to_string(),
                                        )
                                    }),
                                }
                            })
                            .collect();
                        let login_profile = rng.random_bool(0.5);
                        // A third without MFA, a third virtual, most of the rest one hardware or FIDO
                        // device, and one user in 30 both a virtual and a FIDO device.
                        let mfa = match rng.random_range(0..30) {
                            0..=9 => vec![],
                            10..=19 => vec![format!("arn:aws:iam::{id}:mfa/{uname}")],
                            20..=28 => {
                                vec![format!("GAHT{:08}", rng.random_range(0..99_999_999u32))]
                            }
                            _ => vec![
                                format!("arn:aws:iam::{id}:mfa/{uname}"),
                                format!("arn:aws:iam::{id}:u2f/user/{uname}/fido-{u}"),
                            ],
                        };
                        SimUser {
                            password_last_used: (login_profile && rng.random_bool(0.6))
                                .then(|| now - rng.random_range(0..30) * day),
                            name: uname,
                            created,
                            login_profile,
                            keys,
                            mfa,
                            credentials: Vec::new(),
                            policies: Vec::new(),
                        }
                    })
                    .collect::<Vec<_>>();
                let events: Vec<SimEvent> = (0..self.events_per_account)
                    .map(|e| {
                        let name = EVENT_NAMES[rng.random_range(0..EVENT_NAMES.len())];
                        let subject = format!("user-{:03}", rng.random_range(0..50));
                        SimEvent {
                            id: format!("{n:08x}-{e:04x}-4000-8000-{:012x}", rng.random::<u32>()),
                            name: name.to_string(),
                            region: self
                                .event_regions
                                .get(e % self.event_regions.len().max(1))
                                .cloned()
                                .unwrap_or_else(|| "us-east-1".to_string()),
                            time: now - rng.random_range(60..80 * day),
                            username: rng.random_bool(0.9).then(|| "admin".to_string()),
                            resources: if name.contains("AccessKey") {
                                vec![format!("AKIA{:016}", e), subject]
                            } else {
                                vec![subject]
                            },
                            access_key_id: Some(format!("ASIA{:016}", e)),
                            source_ip: format!("203.0.113.{}", e % 250),
                            // One CreateUser/DeleteUser in seven is another service's.
                            source: if e % 7 == 6 && name.ends_with("User") {
                                OTHER_USER_SOURCES[e % OTHER_USER_SOURCES.len()].to_string()
                            } else {
                                "iam.amazonaws.com".to_string()
                            },
                            actor: None,
                            key_id: None,
                            key_user: None,
                        }
                    })
                    .collect();
                // The root user from a generator of its own, so that adding it left every other draw
                // (users, keys, events) as it was.
                let mut r = StdRng::seed_from_u64(
                    self.seed
                        ^ 0x0005_EED0_F500_u64
                        ^ (n as u64).wrapping_mul(0xA24B_AED4_963E_E407),
                );
                let root = SimRoot {
                    created: now - 1500 * day,
                    mfa: match r.random_range(0..4) {
                        0 => vec![],
                        1 => vec![format!("arn:aws:iam::{id}:mfa/root-account-mfa-device")],
                        _ => vec![format!("GAHT{:08}", r.random_range(0..99_999_999u32))],
                    },
                    keys: if r.random_range(0..8) == 0 {
                        vec![SimKey {
                            id: format!("AKIAROOT{n:012}"),
                            active: true,
                            created: now - 700 * day,
                            last_used: None,
                        }]
                    } else {
                        vec![]
                    },
                    password_last_used: r
                        .random_bool(0.5)
                        .then(|| now - r.random_range(1..200) * day),
                    no_password: false,
                };
                let mut users = users;
                for e in 1..=self.epoch {
                    drift(&mut users, &id, n, e, self.seed, now);
                }
                let mut events = events;
                if !suspended {
                    other_credentials(&mut users, n, self.seed, now);
                    events.extend(key_events(&users, &id, n, self.seed, now));
                }
                SimAccount {
                    id,
                    name,
                    status: if suspended { "SUSPENDED" } else { "ACTIVE" }.to_string(),
                    users: if suspended { vec![] } else { users },
                    events: if suspended { vec![] } else { events },
                    root,
                    parent: generated_parent(n),
                }
            })
            .collect();
        SimOrg {
            management_account: "999999999999".into(),
            accounts,
            ous: generated_ous(),
        }
    }
}

/// `demo`'s break-glass users, in the first account of the Security OU that `skip` leaves alone:
/// `breakglass-sealed` (a password never used, a FIDO key, nothing else) and `breakglass-used` (signed in
/// two days ago, and holding an access key used the same day). Returns the account's id.
pub fn add_break_glass(org: &mut SimOrg, now: i64, skip: &[String]) -> Option<String> {
    let day = 86_400;
    let a = org.accounts.iter_mut().find(|a| {
        a.status == "ACTIVE" && a.parent == "ou-sim0-security" && !skip.contains(&a.id)
    })?;
    let id = a.id.clone();
    let user = |name: &str, used: Option<i64>| SimUser {
        name: name.to_string(),
        created: now - 400 * day,
        login_profile: true,
        password_last_used: used,
        keys: Vec::new(),
        mfa: vec![format!("arn:aws:iam::{id}:u2f/user/{name}/fido-safe")],
        credentials: Vec::new(),
        policies: Vec::new(),
    };
    let mut used = user("breakglass-used", Some(now - 2 * day));
    used.keys.push(SimKey {
        id: format!("AKIABREAKGLASS{}", &id[6..]),
        active: true,
        created: now - 30 * day,
        last_used: Some((now - 2 * day, "iam".into(), "us-east-1".into())),
    });
    a.users.push(user("breakglass-sealed", None));
    a.users.push(used);
    Some(id)
}

/// `demo`'s API-key user and quarantined user, in the first ACTIVE account outside the Security OU that
/// `skip` leaves alone: `logs-api-key` (no password, no access key, a CloudWatch Logs API key made 120 days
/// ago that never expires, as the CloudWatch console makes one) and `ci-leaked` (an active access key that
/// AWS found exposed: AWSCompromisedKeyQuarantineV3 attached). Returns the account's id.
pub fn add_api_key_and_quarantine(org: &mut SimOrg, now: i64, skip: &[String]) -> Option<String> {
    let day = 86_400;
    let a = org.accounts.iter_mut().find(|a| {
        a.status == "ACTIVE" && a.parent != "ou-sim0-security" && !skip.contains(&a.id)
    })?;
    let id = a.id.clone();
    let user = |name: &str| SimUser {
        name: name.to_string(),
        created: now - 130 * day,
        login_profile: false,
        password_last_used: None,
        keys: Vec::new(),
        mfa: Vec::new(),
        credentials: Vec::new(),
        policies: Vec::new(),
    };
    let mut logs = user("logs-api-key");
    logs.credentials.push(SimCredential {
        kind: SimCredentialKind::Service,
        id: format!("ACCALOGSAPIKEY{}", &id[6..]),
        service: "logs.amazonaws.com".into(),
        active: true,
        created: now - 120 * day,
        expires: None,
    });
    let mut leaked = user("ci-leaked");
    leaked.keys.push(SimKey {
        id: format!("AKIALEAKEDCI{}", &id[4..]),
        active: true,
        created: now - 20 * day,
        last_used: Some((now - day, "s3".into(), "us-east-1".into())),
    });
    leaked.policies.push("AWSCompromisedKeyQuarantineV3".into());
    a.users.push(logs);
    a.users.push(leaked);
    Some(id)
}

/// One week of an account's life (epoch `e`): some accounts lose a user, gain a console user without MFA,
/// deactivate a key, give a user MFA, or rotate a key. The same seed gives the same week.
fn drift(users: &mut Vec<SimUser>, id: &str, n: usize, e: u32, seed: u64, now: i64) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xD21F_7000 ^ (n as u64) << 8 ^ u64::from(e));
    let day = 86_400;
    if n.is_multiple_of(3) && users.len() > 2 {
        let i = rng.random_range(0..users.len());
        users.remove(i);
    }
    if n % 4 == 1 {
        users.push(SimUser {
            name: format!("new-e{e}-{n}"),
            created: now - 2 * day,
            login_profile: true,
            password_last_used: Some(now - day),
            keys: vec![SimKey {
                id: format!("AKIAE{e:03}{n:012}"),
                active: true,
                created: now - 2 * day,
                last_used: None,
            }],
            mfa: vec![],
            credentials: Vec::new(),
            policies: Vec::new(),
        });
    }
    if n % 5 == 2 {
        if let Some(k) = users
            .iter_mut()
            .flat_map(|u| u.keys.iter_mut())
            .find(|k| k.active)
        {
            k.active = false;
        }
    }
    if n.is_multiple_of(2) {
        if let Some(u) = users
            .iter_mut()
            .find(|u| u.login_profile && u.mfa.is_empty())
        {
            u.mfa = vec![format!("arn:aws:iam::{id}:mfa/{}", u.name)];
        }
    }
    if n % 6 == 5 {
        if let Some(u) = users.iter_mut().find(|u| !u.keys.is_empty()) {
            u.keys.remove(0);
            u.keys.push(SimKey {
                id: format!("AKIAR{e:03}{n:012}"),
                active: true,
                created: now - day,
                last_used: Some((now - 3600, "s3".into(), "us-east-1".into())),
            });
        }
    }
}

/// Service-specific credentials, SSH public keys and signing certificates of a generated account's users,
/// from a generator of their own (every other draw stays as it was): one user in ten has a CodeCommit Git
/// password, one in twenty a Keyspaces password, one in ten a Bedrock API key (half of them without
/// expiry), one in twenty a signing certificate and one in ten an SSH public key.
fn other_credentials(users: &mut [SimUser], n: usize, seed: u64, now: i64) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x0C2E_D000 ^ (n as u64).wrapping_mul(0x2545_F491));
    let day = 86_400;
    for (u, user) in users.iter_mut().enumerate() {
        let mut add = |kind, prefix: &str, service: &str, created: i64, expires: Option<i64>| {
            user.credentials.push(SimCredential {
                kind,
                id: format!("{prefix}{n:06}{u:04}{:04}", user.credentials.len()),
                service: service.to_string(),
                active: true,
                created,
                expires,
            });
        };
        if rng.random_range(0..10) == 0 {
            let age = rng.random_range(1..300) * day;
            add(
                SimCredentialKind::Service,
                "ACCA",
                "codecommit.amazonaws.com",
                now - age,
                None,
            );
        }
        if rng.random_range(0..20) == 0 {
            let age = rng.random_range(1..300) * day;
            add(
                SimCredentialKind::Service,
                "ACCA",
                "cassandra.amazonaws.com",
                now - age,
                None,
            );
        }
        if rng.random_range(0..10) == 0 {
            let age = rng.random_range(1..60) * day;
            let expires = rng.random_bool(0.5).then_some(now - age + 30 * day);
            add(
                SimCredentialKind::Service,
                "ACCA",
                "bedrock.amazonaws.com",
                now - age,
                expires,
            );
        }
        if rng.random_range(0..20) == 0 {
            let age = rng.random_range(1..900) * day;
            add(
                SimCredentialKind::SigningCertificate,
                "CERT",
                "",
                now - age,
                None,
            );
        }
        if rng.random_range(0..10) == 0 {
            let age = rng.random_range(1..900) * day;
            add(SimCredentialKind::SshPublicKey, "APKA", "", now - age, None);
        }
    }
    // The API keys of the services added since (a generator of their own, so that the draws above stay as
    // they were): one user in twenty has a Claude Platform, CloudWatch or CloudWatch Logs key, half of
    // them with an expiry (some already past).
    let mut rng = StdRng::seed_from_u64(seed ^ 0x0A91_CE75 ^ (n as u64).wrapping_mul(0x2545_F491));
    for (u, user) in users.iter_mut().enumerate() {
        if rng.random_range(0..20) != 0 {
            continue;
        }
        let service = [
            "aws-external-anthropic.amazonaws.com",
            "cloudwatch.amazonaws.com",
            "logs.amazonaws.com",
        ][rng.random_range(0..3)];
        let created = now - rng.random_range(1..200) * day;
        let expires = rng
            .random_bool(0.5)
            .then(|| created + rng.random_range(1..120) * day);
        user.credentials.push(SimCredential {
            kind: SimCredentialKind::Service,
            id: format!("ACCA{n:06}{u:04}{:04}", user.credentials.len()),
            service: service.to_string(),
            active: true,
            created,
            expires,
        });
    }
}

/// The CreateAccessKey events of a generated account's keys created in the last 88 days (inside the
/// default 90-day window), each naming its creator: mostly the user itself, else an admin's assumed
/// role, another IAM user, or the root user. Every fifth account also has a key created and deleted three
/// days apart, gone from the inventory (`key_short_lived`).
fn key_events(users: &[SimUser], id: &str, n: usize, seed: u64, now: i64) -> Vec<SimEvent> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x00CE_A7ED ^ (n as u64).wrapping_mul(0x9FB2_1C65));
    let day = 86_400;
    let mut out = Vec::new();
    let event =
        |no: usize, name: &str, time: i64, actor: SimActor, key: &str, user: Option<&str>| {
            SimEvent {
                id: format!("{n:08x}-{no:04x}-4000-9000-00000000cafe"),
                name: name.to_string(),
                region: "us-east-1".to_string(),
                time,
                username: Some(
                    actor.user_name.clone().unwrap_or_else(|| {
                        actor.arn.rsplit('/').next().unwrap_or("root").to_string()
                    }),
                ),
                resources: vec![key.to_string()],
                access_key_id: Some(format!("ASIA{n:08}{no:08}")),
                source_ip: format!("198.51.100.{}", no % 250),
                source: "iam.amazonaws.com".to_string(),
                actor: Some(actor),
                key_id: Some(key.to_string()),
                key_user: user.map(str::to_string),
            }
        };
    let user_actor = |name: &str| SimActor {
        kind: "IAMUser".into(),
        arn: format!("arn:aws:iam::{id}:user/{name}"),
        user_name: Some(name.to_string()),
        user_agent: "aws-cli/2.22.0 Python/3.12.6 Linux/6.8".into(),
    };
    let mut no = 0;
    for u in users {
        for k in u.keys.iter().filter(|k| k.created >= now - 88 * day) {
            no += 1;
            let (actor, user) = match rng.random_range(0..10) {
                0..=5 => (user_actor(&u.name), None),
                6 | 7 => (
                    SimActor {
                        kind: "AssumedRole".into(),
                        arn: format!("arn:aws:sts::{id}:assumed-role/AdminRole/alice@example.com"),
                        user_name: None,
                        user_agent: "console.amazonaws.com".into(),
                    },
                    Some(u.name.as_str()),
                ),
                8 => (user_actor("ops-admin"), Some(u.name.as_str())),
                _ => (
                    SimActor {
                        kind: "Root".into(),
                        arn: format!("arn:aws:iam::{id}:root"),
                        user_name: None,
                        user_agent: "console.amazonaws.com".into(),
                    },
                    Some(u.name.as_str()),
                ),
            };
            out.push(event(no, "CreateAccessKey", k.created, actor, &k.id, user));
        }
    }
    if n % 5 == 1 {
        if let Some(u) = users.first() {
            let key = format!("AKIASHORT{n:011}");
            let created = now - 20 * day;
            out.push(event(
                9998,
                "CreateAccessKey",
                created,
                user_actor(&u.name),
                &key,
                None,
            ));
            out.push(event(
                9999,
                "DeleteAccessKey",
                created + 3 * day,
                user_actor(&u.name),
                &key,
                None,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_sized() {
        let s = Scenario {
            accounts: 25,
            suspended_every: 10,
            now: 1_772_724_622,
            ..Scenario::default()
        };
        let a = s.generate();
        assert_eq!(a, s.generate());
        assert_eq!(a.accounts.len(), 25);
        assert_eq!(
            a.accounts
                .iter()
                .filter(|x| x.status == "SUSPENDED")
                .count(),
            2
        );
        assert!(a.accounts.iter().all(|x| x.users.len() <= 20));
        // A later epoch changes some users and keys, the same way each time.
        let later = Scenario {
            epoch: 1,
            ..s.clone()
        };
        assert_eq!(later.generate(), later.generate());
        assert_ne!(later.generate(), a);
    }
}
