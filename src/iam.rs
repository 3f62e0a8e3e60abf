//! The IAM inventory of one account: ListUsers (every page), then per user ListAccessKeys and, for users
//! that have keys, ListMFADevices, GetLoginProfile and GetAccessKeyLastUsed per key. Users fan out
//! concurrently (bounded by `user_concurrency`) and every call goes through the account's session, paced
//! by its IAM bucket, so a 500-user account is paced by its quota, not by latency. Each key becomes one
//! `KeyRow`, sent as soon as it is complete. Users without keys produce no row, as in the seed script.

use futures::StreamExt;

use crate::pages::{next_page, Next, MAX_PAGES};
use crate::report::{KeyRow, LastUsed, Mfa, Password, Record, Sink};
use crate::retry::Failure;
use crate::session::{utc, Part, Session};

/// ListUsers page size: IAM's maximum. IAM may return fewer with IsTruncated still true.
const USERS_PAGE: i32 = 1000;

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

/// Risk findings of one key, `;`-joined: `key_older_than_90d` (an active key due for rotation, CIS 1.14),
/// `unused_45d` (an active key unused, or never used, for 45 days, CIS 1.12), `console_without_mfa` (a
/// console password and no MFA device, CIS 1.10).
pub fn risk(
    active: bool,
    age_days: Option<i64>,
    days_since_use: Option<i64>,
    password: Password,
    mfa: Mfa,
) -> String {
    let mut out = Vec::new();
    if active && age_days.is_some_and(|a| a > 90) {
        out.push("key_older_than_90d");
    }
    let idle = match days_since_use {
        Some(d) => d >= 45,
        None => age_days.is_some_and(|a| a >= 45),
    };
    if active && idle {
        out.push("unused_45d");
    }
    if password == Password::Configured && mfa == Mfa::None {
        out.push("console_without_mfa");
    }
    out.join(";")
}

fn malformed(session: &Session, action: &str, message: String) {
    session.fail(
        Part::Iam,
        action,
        &Failure::new("MalformedResponse", message),
    );
}

/// Run the IAM inventory of one account; rows go to the writer as they are built.
pub async fn inventory(session: &Session, sink: &Sink) {
    let iam = session.iam();
    let mut marker: Option<String> = None;
    for _ in 0..MAX_PAGES {
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
}

/// Audit one user and send a row per access key. `false` when the writer is gone.
async fn audit_user(session: &Session, sink: &Sink, user: aws_sdk_iam::types::User) -> bool {
    let iam = session.iam();
    let name = user.user_name();
    let now = session.settings().started_at;

    // Every key of the user (IAM allows two, but paginate as the API says).
    let mut keys = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let r = iam
            .call("iam:ListAccessKeys", |c, o| {
                c.list_access_keys()
                    .user_name(name)
                    .set_marker(marker.clone())
                    .customize()
                    .config_override(o)
                    .send()
            })
            .await;
        let Ok(page) = r else { break };
        // Every field of AccessKeyMetadata is optional in the SDK's model, so a truncated or garbled answer
        // parses into keys without an id. Such a key is reported as a malformed answer, not as a row.
        for key in page.access_key_metadata() {
            if key.access_key_id().is_some_and(|id| !id.is_empty()) {
                keys.push(key.clone());
            } else {
                malformed(
                    session,
                    "iam:ListAccessKeys",
                    format!("ListAccessKeys for user {name} returned a key without an AccessKeyId"),
                );
            }
        }
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
    if keys.is_empty() {
        return true;
    }

    let mfa_fut = async {
        match iam
            .call("iam:ListMFADevices", |c, o| {
                c.list_mfa_devices()
                    .user_name(name)
                    .customize()
                    .config_override(o)
                    .send()
            })
            .await
        {
            Ok(out) => {
                let devices = out.mfa_devices();
                (
                    strongest_mfa(devices.iter().map(|d| d.serial_number())),
                    Some(devices.len()),
                )
            }
            Err(_) => (Mfa::Unknown, None),
        }
    };
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
                    Ok(_) => Ok(Password::Configured),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_no_such_entity_exception()) =>
                    {
                        Ok(Password::NotConfigured)
                    }
                    Err(e) => Err(e),
                }
            })
            .await;
        r.unwrap_or(Password::Unknown)
    };
    let last_used_fut = futures::future::join_all(keys.iter().map(|k| async move {
        // Keys without an id were set aside as malformed above.
        let id = k.access_key_id().unwrap_or_default();
        let r = iam
            .call("iam:GetAccessKeyLastUsed", |c, o| {
                c.get_access_key_last_used()
                    .access_key_id(id)
                    .customize()
                    .config_override(o)
                    .send()
            })
            .await;
        r.map(|out| {
            out.access_key_last_used().and_then(|u| {
                let date = utc(u.last_used_date()?)?;
                Some(LastUsed {
                    date,
                    service: non_empty(u.service_name(), "N/A"),
                    region: non_empty(u.region(), "N/A"),
                    days_since: (now - date).num_days(),
                })
            })
        })
        .map_err(|_| ())
    }));
    let ((mfa, mfa_devices), password, last_used) =
        tokio::join!(mfa_fut, password_fut, last_used_fut);

    let password_last_used = user.password_last_used().and_then(utc);
    for (key, last_used) in keys.iter().zip(last_used) {
        let created = key.create_date().and_then(utc);
        let age = created.map(|c| (now - c).num_days());
        let status = key
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        let days_since = last_used
            .as_ref()
            .ok()
            .and_then(|u| u.as_ref().map(|u| u.days_since));
        let row = KeyRow {
            account_id: session.account().id.clone(),
            account_name: session.account().name.clone(),
            username: name.to_string(),
            password,
            password_last_used,
            access_key_id: key.access_key_id().unwrap_or_default().to_string(),
            risk: risk(status == "Active", age, days_since, password, mfa),
            status,
            created_date: created,
            last_used,
            mfa,
            mfa_devices,
            key_age_days: age,
        };
        if !sink.send(Record::Key(row)).await {
            return false;
        }
    }
    true
}

fn non_empty(s: &str, default: &str) -> String {
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

    #[test]
    fn risk_findings() {
        assert_eq!(
            risk(true, Some(120), Some(1), Password::NotConfigured, Mfa::None),
            "key_older_than_90d"
        );
        assert_eq!(
            risk(true, Some(50), None, Password::NotConfigured, Mfa::None),
            "unused_45d"
        );
        assert_eq!(
            risk(false, Some(500), None, Password::NotConfigured, Mfa::None),
            ""
        );
        assert_eq!(
            risk(true, Some(10), Some(2), Password::Configured, Mfa::None),
            "console_without_mfa"
        );
        assert_eq!(
            risk(true, Some(10), Some(2), Password::Configured, Mfa::Virtual),
            ""
        );
    }
}
