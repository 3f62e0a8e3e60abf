//! The IAM inventory of one account, by the configured strategy (design §2, `--strategy`):
//!
//! - `api`: ListUsers (every page), then per user ListAccessKeys, ListMFADevices, GetLoginProfile and
//!   GetAccessKeyLastUsed per key; the root user from GetAccountSummary. 3 + keys calls per user.
//! - `credential_report` (`credential_report.rs`): the account's credential report, plus ListAccessKeys
//!   for users with keys (the report has no key ids). About one call per user.
//! - `auto`: the report where the role may generate it, `api` where it may not (said in the accounts
//!   report).
//!
//! Either way ListVirtualMFADevices, once per account, tells the root user's virtual MFA from hardware.
//! Users fan out concurrently (bounded by `user_concurrency`), every call goes through the account's
//! session, paced by its IAM bucket. Each key becomes one `KeyRow`, each user (and the root user) one
//! `UserRow`, sent as soon as they are complete; flags come from `risk`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures::StreamExt;

use crate::config::Strategy;
use crate::pages::{next_page, page_limit, Next};
use crate::report::{KeyRow, LastUsed, Mfa, Password, Record, Sink, Source, UserRow, ROOT_USER};
use crate::retry::{is_denied, Failure};
use crate::risk::{key_flags, user_flags, Flags, KeyFacts, UserFacts};
use crate::session::{utc, Part, Session};

/// ListUsers page size: IAM's maximum. IAM may return fewer with IsTruncated still true.
const USERS_PAGE: i32 = 1000;

/// The serial of the root user's virtual MFA device ends so.
const ROOT_VIRTUAL_MFA: &str = ":mfa/root-account-mfa-device";

/// MFA type from a device serial: an `arn:…:mfa/…` serial is a virtual device; a `u2f` ARN (FIDO security
/// key) or a plain serial (a hardware TOTP token such as `GAHT12345678`) is hardware.
pub fn mfa_type(serial: &str) -> Mfa {
    if let Some(rest) = serial.strip_prefix("arn:") {
        // arn:partition:iam::account:mfa/name or arn:partition:iam::account:u2f/...
        let resource = rest.splitn(5, ':').nth(4).unwrap_or("");
        if resource.starts_with("mfa/") {
            return Mfa::Virtual;
        }
        return Mfa::Hardware;
    }
    Mfa::Hardware
}

/// The strongest MFA of a user's devices: Hardware wins over Virtual.
pub fn strongest_mfa<'a>(serials: impl IntoIterator<Item = &'a str>) -> Mfa {
    serials.into_iter().map(mfa_type).max().unwrap_or(Mfa::None)
}

/// What the IAM part tells the accounts report beyond its rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IamOutcome {
    /// How the users were read; `None` when nothing was.
    pub strategy: Option<Source>,
    pub credential_report_time: Option<DateTime<Utc>>,
    /// Active root keys (`0`, `1`, `2`; `present` from the account summary; `unknown`).
    pub root_access_keys: String,
    /// Root MFA: `Hardware`, `Virtual`, `None` or `unknown`.
    pub root_mfa: String,
}

pub(crate) fn malformed(session: &Session, action: &str, message: String) {
    session.fail(
        Part::Iam,
        action,
        &Failure::new("MalformedResponse", message),
    );
}

/// The account's virtual MFA devices in use, by the ARN of their user (the root user's is
/// `arn:…:iam::ACCOUNT:root`). `Err` when the action is refused or fails: then MFA types the report
/// cannot tell stay `unknown`.
pub(crate) type VirtualMfa = Result<HashMap<String, Vec<String>>, Failure>;

pub(crate) async fn list_virtual_mfa(session: &Session) -> VirtualMfa {
    let read = read_virtual_mfa(session).await;
    if let Err(f) = &read {
        note(
            session,
            "iam:ListVirtualMFADevices",
            f,
            "MFA types the credential report cannot tell are unknown",
        );
    }
    read
}

async fn read_virtual_mfa(session: &Session) -> VirtualMfa {
    let iam = session.iam();
    let mut by_user: HashMap<String, Vec<String>> = HashMap::new();
    let mut marker: Option<String> = None;
    let max_pages = session.settings().max_pages;
    for _ in 0..max_pages {
        let page = iam
            .try_call("iam:ListVirtualMFADevices", |c, o| {
                c.list_virtual_mfa_devices()
                    .assignment_status(aws_sdk_iam::types::AssignmentStatusType::Assigned)
                    .set_marker(marker.clone())
                    .customize()
                    .config_override(o)
                    .send()
            })
            .await?;
        for d in page.virtual_mfa_devices() {
            let serial = d.serial_number();
            let owner = match d.user() {
                Some(u) => u.arn().to_string(),
                None if serial.ends_with(ROOT_VIRTUAL_MFA) => "root".to_string(),
                None => continue,
            };
            let owner = if owner.ends_with(":root") {
                "root".to_string()
            } else {
                owner
            };
            by_user.entry(owner).or_default().push(serial.to_string());
        }
        match next_page(page.is_truncated(), page.marker(), marker.as_deref()) {
            Next::Page(next) => marker = Some(next),
            Next::Done => return Ok(by_user),
            Next::Stuck => {
                return Err(Failure::new(
                    "MalformedResponse",
                    "ListVirtualMFADevices: IsTruncated is true but no new Marker was returned",
                ))
            }
        }
    }
    Err(page_limit("ListVirtualMFADevices", max_pages))
}

/// Record an optional action's failure in the accounts report without marking the account partial.
pub(crate) fn note(session: &Session, action: &str, f: &Failure, consequence: &str) {
    session.problem(
        action,
        &Failure::new(f.code.clone(), format!("{}; {consequence}", f.message)),
    );
}

/// Run the IAM inventory of one account; rows go to the writer as they are built.
pub async fn inventory(session: &Session, sink: &Sink) -> IamOutcome {
    let strategy = session.settings().strategy;
    let report = async {
        if strategy == Strategy::Api {
            None
        } else {
            Some(crate::credential_report::fetch(session).await)
        }
    };
    let (report, virtual_mfa, summary) =
        tokio::join!(report, list_virtual_mfa(session), account_summary(session));
    match report {
        Some(Ok(report)) => {
            return crate::credential_report::inventory(
                session,
                sink,
                report,
                &summary,
                &virtual_mfa,
            )
            .await
        }
        Some(Err(f)) if strategy == Strategy::Auto => {
            let why = if is_denied(&f.failure) {
                "the role may not read the credential report; audited with per-user calls (--strategy api)"
            } else {
                "the credential report could not be read; audited with per-user calls (--strategy api)"
            };
            note(session, f.action(), &f.failure, why);
        }
        Some(Err(f)) => {
            session.fail(Part::Iam, f.action(), &f.failure);
            return IamOutcome {
                strategy: Some(Source::CredentialReport),
                credential_report_time: None,
                root_access_keys: "unknown".into(),
                root_mfa: "unknown".into(),
            };
        }
        None => {}
    }
    api_inventory(session, sink, &summary, &virtual_mfa).await
}

/// The strongest MFA of a user whose report says `mfa_active`, from the virtual devices: a user with
/// none of them has a hardware or FIDO device.
pub(crate) fn mfa_from_virtual(active: bool, virtual_devices: Option<usize>) -> Mfa {
    match (active, virtual_devices) {
        (false, _) => Mfa::None,
        (true, Some(0)) => Mfa::Hardware,
        (true, Some(_)) => Mfa::Virtual,
        (true, None) => Mfa::Unknown,
    }
}

/// One user's facts, its keys' facts (with ids, where known), and how to write them.
pub(crate) struct Audited<'a> {
    pub name: &'a str,
    pub arn: &'a str,
    pub facts: UserFacts,
    pub keys: Vec<(Option<String>, KeyFacts)>,
    pub mfa_devices: Option<usize>,
    pub source: Source,
    pub note: String,
}

/// Send the user's key rows (with its user's flags) and its user row (with its keys' flags). `false` when
/// the writer is gone.
pub(crate) async fn send_user(session: &Session, sink: &Sink, a: Audited<'_>) -> bool {
    let s = session.settings();
    let now = s.started_at;
    let key_facts: Vec<KeyFacts> = a.keys.iter().map(|(_, k)| k.clone()).collect();
    let own = user_flags(&a.facts, &key_facts, now, s.thresholds);
    let mut all = own;
    for (id, k) in &a.keys {
        // The root user's keys are one finding, root_access_key, whatever their age or use.
        let flags = if a.facts.root {
            Flags::default()
        } else {
            key_flags(&a.facts, k, now, s.thresholds)
        };
        all = all.union(flags);
        let Some(id) = id else { continue };
        let row = KeyRow {
            account_id: session.account().id.clone(),
            account_name: session.account().name.clone(),
            username: a.name.to_string(),
            password: a.facts.password,
            password_last_used: a.facts.password_last_used,
            access_key_id: id.clone(),
            status: if k.active { "Active" } else { "Inactive" }.to_string(),
            created_date: k.created,
            last_used: k.last_used.clone(),
            mfa: a.facts.mfa,
            mfa_devices: a.mfa_devices,
            key_age_days: k.created.map(|c| (now - c).num_days()),
            risk: flags.union(own),
            source: a.source,
        };
        if !sink.send(Record::Key(row)).await {
            return false;
        }
    }
    let active: Vec<&KeyFacts> = key_facts.iter().filter(|k| k.active).collect();
    let active_keys = if a.facts.root && a.keys.is_empty() {
        a.facts.active_keys_without_ids
    } else {
        Some(active.len() as u32)
    };
    let last_activity = key_facts
        .iter()
        .filter_map(|k| {
            k.last_used
                .as_ref()
                .ok()
                .and_then(|u| u.as_ref().map(|u| u.date))
        })
        .chain(a.facts.password_last_used)
        .max();
    let row = UserRow {
        account_id: session.account().id.clone(),
        account_name: session.account().name.clone(),
        username: a.name.to_string(),
        arn: a.arn.to_string(),
        created: a.facts.created,
        password: a.facts.password,
        password_last_used: a.facts.password_last_used,
        mfa_active: a.facts.mfa_active,
        mfa: a.facts.mfa,
        mfa_devices: a.mfa_devices,
        active_keys,
        oldest_active_key_age_days: active
            .iter()
            .filter_map(|k| k.created.map(|c| (now - c).num_days()))
            .max(),
        last_activity,
        risk: all,
        source: a.source,
        note: a.note,
    };
    sink.send(Record::User(row)).await
}

pub(crate) const CENTRALIZED_NOTE: &str = "root credentials are managed by the organization (RootCredentialsManagement): root MFA is not a finding";

/// `root_access_keys` and `root_mfa` of the accounts report from a root row's facts.
pub(crate) fn root_cells(
    facts: &UserFacts,
    keys: &[(Option<String>, KeyFacts)],
) -> (String, String) {
    let access = if keys.is_empty() {
        match facts.active_keys_without_ids {
            Some(0) => "0".to_string(),
            Some(_) => "present".to_string(),
            None => "unknown".to_string(),
        }
    } else {
        keys.iter().filter(|(_, k)| k.active).count().to_string()
    };
    let mfa = match facts.mfa_active {
        None => "unknown".to_string(),
        Some(_) => facts.mfa.as_str().to_string(),
    };
    (access, mfa)
}

async fn api_inventory(
    session: &Session,
    sink: &Sink,
    summary: &Summary,
    virtual_mfa: &VirtualMfa,
) -> IamOutcome {
    let (access, mfa) = api_root(session, sink, summary, virtual_mfa, Source::Api).await;
    let iam = session.iam();
    let mut marker: Option<String> = None;
    let max_pages = session.settings().max_pages;
    for page_no in 0.. {
        if page_no == max_pages {
            session.fail(
                Part::Iam,
                "iam:ListUsers",
                &page_limit("ListUsers", max_pages),
            );
            break;
        }
        let page = iam
            .call("iam:ListUsers", |c, o| {
                c.list_users()
                    .max_items(USERS_PAGE)
                    .set_marker(marker.clone())
                    .customize()
                    .config_override(o)
                    .send()
            })
            .await;
        let Ok(page) = page else { break };
        let users = page.users();
        sink.count_users(users.len() as u64);
        let alive = futures::stream::iter(users.iter().cloned())
            .map(|u| audit_user(session, sink, u))
            .buffer_unordered(session.settings().user_concurrency)
            .all(|sent| async move { sent })
            .await;
        if !alive {
            break;
        }
        match next_page(page.is_truncated(), page.marker(), marker.as_deref()) {
            Next::Page(next) => marker = Some(next),
            Next::Done => break,
            Next::Stuck => {
                malformed(
                    session,
                    "iam:ListUsers",
                    "IsTruncated is true but no new Marker was returned; the remaining users were not listed".into(),
                );
                break;
            }
        }
    }
    IamOutcome {
        strategy: Some(Source::Api),
        credential_report_time: None,
        root_access_keys: access,
        root_mfa: mfa,
    }
}

/// GetAccountSummary's map (an optional action: refused, the failure is noted and returned).
pub(crate) type Summary = Result<HashMap<aws_sdk_iam::types::SummaryKeyType, i32>, Failure>;

pub(crate) async fn account_summary(session: &Session) -> Summary {
    let r = session
        .iam()
        .try_call("iam:GetAccountSummary", |c, o| {
            c.get_account_summary()
                .customize()
                .config_override(o)
                .send()
        })
        .await;
    match r {
        Ok(out) => Ok(out.summary_map().cloned().unwrap_or_default()),
        Err(f) => {
            note(
                session,
                "iam:GetAccountSummary",
                &f,
                "the root user's credentials are unknown unless the credential report has them",
            );
            Err(f)
        }
    }
}

/// The root user from GetAccountSummary (keys present, MFA enabled) and the virtual MFA list: under `api`,
/// and under the report when it has no root row.
pub(crate) async fn api_root(
    session: &Session,
    sink: &Sink,
    summary: &Summary,
    virtual_mfa: &VirtualMfa,
    source: Source,
) -> (String, String) {
    let account = &session.account().id;
    let centralized = session.centralized_root();
    let (facts, note_text) = match summary {
        Ok(map) => {
            use aws_sdk_iam::types::SummaryKeyType as K;
            let get = |k: K| map.get(&k).copied();
            let mfa_active = get(K::AccountMfaEnabled).map(|n| n > 0);
            let virtual_devices = virtual_mfa
                .as_ref()
                .ok()
                .map(|m| m.get("root").map_or(0, Vec::len));
            let password = match get(K::AccountPasswordPresent) {
                Some(0) => Password::NotConfigured,
                Some(_) => Password::Configured,
                None => Password::Unknown,
            };
            (
                UserFacts {
                    root: true,
                    created: None,
                    password,
                    password_last_used: None,
                    password_set: None,
                    mfa_active,
                    mfa: mfa_from_virtual(mfa_active.unwrap_or(false), virtual_devices),
                    active_keys_without_ids: get(K::AccountAccessKeysPresent)
                        .map(|n| n.max(0) as u32),
                    centralized_root: centralized,
                },
                if centralized {
                    CENTRALIZED_NOTE.to_string()
                } else {
                    "from GetAccountSummary: access keys present (active or not), MFA enabled"
                        .to_string()
                },
            )
        }
        Err(f) => (
            UserFacts {
                root: true,
                created: None,
                password: Password::Unknown,
                password_last_used: None,
                password_set: None,
                mfa_active: None,
                mfa: Mfa::Unknown,
                active_keys_without_ids: None,
                centralized_root: centralized,
            },
            format!("unknown: {f} (iam:GetAccountSummary)"),
        ),
    };
    let cells = root_cells(&facts, &[]);
    let arn = format!("arn:{}:iam::{account}:root", session.partition());
    send_user(
        session,
        sink,
        Audited {
            name: ROOT_USER,
            arn: &arn,
            facts,
            keys: Vec::new(),
            mfa_devices: None,
            source,
            note: note_text,
        },
    )
    .await;
    cells
}

/// Audit one user and send its rows. `false` when the writer is gone.
async fn audit_user(session: &Session, sink: &Sink, user: aws_sdk_iam::types::User) -> bool {
    let iam = session.iam();
    let name = user.user_name();
    let now = session.settings().started_at;

    let keys_fut = async {
        let ListedKeys { keys, deleted, .. } = list_access_keys(session, name).await;
        let last_used = futures::future::join_all(
            keys.iter()
                .map(|k| last_used(session, k.access_key_id().unwrap_or_default())),
        )
        .await;
        (deleted, keys.into_iter().zip(last_used).collect::<Vec<_>>())
    };
    let mfa_fut = mfa_devices(session, name);
    let password_fut = async {
        // NoSuchEntity is the answer "this user has no console password", not a failure.
        let r = iam
            .call("iam:GetLoginProfile", |c, o| async move {
                let r = c
                    .get_login_profile()
                    .user_name(name)
                    .customize()
                    .config_override(o)
                    .send()
                    .await;
                match r {
                    Ok(out) => Ok((
                        Password::Configured,
                        out.login_profile().and_then(|p| utc(p.create_date())),
                    )),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_no_such_entity_exception()) =>
                    {
                        Ok((Password::NotConfigured, None))
                    }
                    Err(e) => Err(e),
                }
            })
            .await;
        r.unwrap_or((Password::Unknown, None))
    };
    let ((deleted, keys), (mfa, mfa_devices), (password, password_set)) =
        tokio::join!(keys_fut, mfa_fut, password_fut);
    if deleted {
        // Listed, then deleted before its keys were read: no row (noted in the accounts report).
        return true;
    }

    let facts = UserFacts {
        root: false,
        created: utc(user.create_date()),
        password,
        password_last_used: user.password_last_used().and_then(utc),
        password_set,
        mfa_active: mfa_devices.map(|n| n > 0),
        mfa,
        active_keys_without_ids: None,
        centralized_root: false,
    };
    let keys = keys
        .into_iter()
        .map(|(k, last_used)| {
            let id = k.access_key_id().unwrap_or_default().to_string();
            let facts = KeyFacts {
                active: k.status().map(|s| s.as_str()) == Some("Active"),
                created: k.create_date().and_then(utc),
                last_used: last_used.map(|u| {
                    u.map(|(date, service, region)| LastUsed {
                        days_since: (now - date).num_days(),
                        date,
                        service,
                        region,
                    })
                }),
            };
            (Some(id), facts)
        })
        .collect();
    send_user(
        session,
        sink,
        Audited {
            name,
            arn: user.arn(),
            facts,
            keys,
            mfa_devices,
            source: Source::Api,
            note: String::new(),
        },
    )
    .await
}

/// One user's access keys as ListAccessKeys gave them.
pub(crate) struct ListedKeys {
    /// The keys read (all of them unless `failed`).
    pub keys: Vec<aws_sdk_iam::types::AccessKeyMetadata>,
    /// The user was deleted during the audit (noted in the accounts report).
    pub deleted: bool,
    /// A call failed (recorded as a failure of the IAM part); `keys` holds the pages read before.
    pub failed: bool,
}

/// Every key of one user: ListAccessKeys, every page (IAM allows two keys, but paginate as the API says).
pub(crate) async fn list_access_keys(session: &Session, name: &str) -> ListedKeys {
    let mut listed = ListedKeys {
        keys: Vec::new(),
        deleted: false,
        failed: false,
    };
    let mut marker: Option<String> = None;
    let max_pages = session.settings().max_pages;
    for page_no in 0.. {
        if page_no == max_pages {
            session.fail(
                Part::Iam,
                "iam:ListAccessKeys",
                &page_limit(&format!("ListAccessKeys for user {name}"), max_pages),
            );
            listed.failed = true;
            break;
        }
        let r = session
            .iam()
            .call_unless_deleted("iam:ListAccessKeys", &format!("user {name}"), |c, o| {
                c.list_access_keys()
                    .user_name(name)
                    .set_marker(marker.clone())
                    .customize()
                    .config_override(o)
                    .send()
            })
            .await;
        let page = match r {
            Ok(Some(page)) => page,
            Ok(None) => {
                listed.deleted = true;
                break;
            }
            Err(_) => {
                listed.failed = true;
                break;
            }
        };
        listed
            .keys
            .extend(valid_keys(session, name, page.access_key_metadata()));
        match next_page(page.is_truncated(), page.marker(), marker.as_deref()) {
            Next::Page(next) => marker = Some(next),
            Next::Done => break,
            Next::Stuck => {
                malformed(
                    session,
                    "iam:ListAccessKeys",
                    format!("IsTruncated is true but no new Marker was returned for user {name}; the user's remaining keys were not listed"),
                );
                break;
            }
        }
    }
    listed
}

/// ListMFADevices: the user's strongest MFA and its device count; `(Unknown, None)` when it failed
/// (recorded).
pub(crate) async fn mfa_devices(session: &Session, name: &str) -> (Mfa, Option<usize>) {
    let r = session
        .iam()
        .call_unless_deleted("iam:ListMFADevices", &format!("user {name}"), |c, o| {
            c.list_mfa_devices()
                .user_name(name)
                .customize()
                .config_override(o)
                .send()
        })
        .await;
    match r {
        Ok(None) => (Mfa::Unknown, None),
        Ok(Some(out)) => {
            let devices = out.mfa_devices();
            (
                strongest_mfa(devices.iter().map(|d| d.serial_number())),
                Some(devices.len()),
            )
        }
        Err(_) => (Mfa::Unknown, None),
    }
}

/// Keys with an id. Every field of AccessKeyMetadata is optional in the SDK's model, so a truncated or
/// garbled answer parses into keys without an id; such a key is reported as a malformed answer.
pub(crate) fn valid_keys(
    session: &Session,
    name: &str,
    keys: &[aws_sdk_iam::types::AccessKeyMetadata],
) -> Vec<aws_sdk_iam::types::AccessKeyMetadata> {
    let mut out = Vec::new();
    for key in keys {
        if key.access_key_id().is_some_and(|id| !id.is_empty()) {
            out.push(key.clone());
        } else {
            malformed(
                session,
                "iam:ListAccessKeys",
                format!("ListAccessKeys for user {name} returned a key without an AccessKeyId"),
            );
        }
    }
    out
}

/// GetAccessKeyLastUsed: `Ok(None)` never used; `Err` failed (recorded).
pub(crate) async fn last_used(
    session: &Session,
    id: &str,
) -> Result<Option<(DateTime<Utc>, String, String)>, ()> {
    session
        .iam()
        .call("iam:GetAccessKeyLastUsed", |c, o| {
            c.get_access_key_last_used()
                .access_key_id(id)
                .customize()
                .config_override(o)
                .send()
        })
        .await
        .map(|out| {
            out.access_key_last_used().and_then(|u| {
                Some((
                    utc(u.last_used_date()?)?,
                    non_empty(u.service_name(), "N/A"),
                    non_empty(u.region(), "N/A"),
                ))
            })
        })
        .map_err(|_| ())
}

pub(crate) fn non_empty(s: &str, default: &str) -> String {
    if s.is_empty() {
        default.to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mfa_types_from_serials() {
        assert_eq!(
            mfa_type("arn:aws:iam::123456789012:mfa/alice"),
            Mfa::Virtual
        );
        assert_eq!(
            mfa_type("arn:aws:iam::123456789012:mfa/path/alice-phone"),
            Mfa::Virtual
        );
        assert_eq!(
            mfa_type("arn:aws:iam::123456789012:u2f/user/alice/key-ABC"),
            Mfa::Hardware
        );
        assert_eq!(mfa_type("GAHT12345678"), Mfa::Hardware);
        assert_eq!(
            mfa_type("arn:aws-us-gov:iam::123456789012:mfa/bob"),
            Mfa::Virtual
        );
    }

    #[test]
    fn hardware_wins_over_virtual() {
        assert_eq!(strongest_mfa([]), Mfa::None);
        assert_eq!(strongest_mfa(["arn:aws:iam::1:mfa/a"]), Mfa::Virtual);
        assert_eq!(
            strongest_mfa(["arn:aws:iam::1:mfa/a", "GAHT1"]),
            Mfa::Hardware
        );
        assert_eq!(
            strongest_mfa(["arn:aws:iam::1:u2f/u/a/k", "arn:aws:iam::1:mfa/a"]),
            Mfa::Hardware
        );
    }
}
