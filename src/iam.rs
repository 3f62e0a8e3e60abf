//! The IAM inventory of one account: ListUsers (every page), then per user ListAccessKeys and, for users
//! that have keys, ListMFADevices, GetLoginProfile and GetAccessKeyLastUsed per key. Users fan out
//! concurrently (bounded by `user_concurrency`) and every call waits on the account's IAM bucket (in the
//! client's HTTP layer, see `limits`), so a
//! 500-user account is paced by its quota, not by latency. Each key becomes one `KeyRow`, sent as soon as
//! it is complete. Users without keys produce no row, as in the seed script.

use std::sync::atomic::Ordering;

use aws_sdk_iam::Client;
use aws_smithy_types::DateTime as SmithyTime;
use chrono::{DateTime, Utc};
use futures::StreamExt;

use crate::account::{AccountCtx, Tally};
use crate::pages::{next_page, Next, MAX_PAGES};
use crate::report::{KeyRow, LastUsed, Mfa, PartStatus, Password, Record};
use crate::retry::Failure;

/// ListUsers page size: IAM's maximum. IAM may return fewer with IsTruncated still true.
const USERS_PAGE: i32 = 1000;

/// RFC 3339 UTC with second precision, e.g. `2026-03-05T15:30:22Z` (design §3).
pub fn rfc3339(t: &SmithyTime) -> String {
    to_chrono(t)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn to_chrono(t: &SmithyTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

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

struct Part<'a> {
    ctx: &'a AccountCtx,
    client: &'a Client,
    tally: Tally,
}

impl Part<'_> {
    fn done<T>(&self, action: &str, r: Result<T, Failure>) -> Result<T, Failure> {
        self.tally.record(self.ctx, action, r)
    }

    fn malformed(&self, action: &str, message: String) {
        self.tally.fail(
            self.ctx,
            action,
            &Failure::new("MalformedResponse", message),
        );
    }
}

/// Run the IAM inventory of one account; rows go to the writer as they are built.
pub async fn inventory(ctx: &AccountCtx, client: &Client) -> PartStatus {
    let s = &ctx.settings;
    let part = Part {
        ctx,
        client,
        tally: Tally::default(),
    };
    let mut marker: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = part
            .ctx
            .call(|| {
                client
                    .list_users()
                    .max_items(USERS_PAGE)
                    .set_marker(marker.clone())
                    .send()
            })
            .await;
        let page = match part.done("iam:ListUsers", page) {
            Ok(p) => p,
            Err(_) => break,
        };
        let users = page.users();
        ctx.users.fetch_add(users.len() as u64, Ordering::Relaxed);
        let alive = futures::stream::iter(users.iter().cloned())
            .map(|u| audit_user(&part, u))
            .buffer_unordered(s.user_concurrency)
            .all(|sent| async move { sent })
            .await;
        if !alive {
            break;
        }
        match next_page(page.is_truncated(), page.marker(), marker.as_deref()) {
            Next::Page(next) => marker = Some(next),
            Next::Done => break,
            Next::Stuck => {
                part.malformed(
                    "iam:ListUsers",
                    "IsTruncated is true but no new Marker was returned; the remaining users were not listed".into(),
                );
                break;
            }
        }
    }
    part.tally.status()
}

/// Audit one user and send a row per access key. `false` when the writer is gone.
async fn audit_user(part: &Part<'_>, user: aws_sdk_iam::types::User) -> bool {
    let ctx = part.ctx;
    let name = user.user_name();
    let now = ctx.settings.started_at;

    // Every key of the user (IAM allows two, but paginate as the API says).
    let mut keys = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let r = ctx
            .call(|| {
                part.client
                    .list_access_keys()
                    .user_name(name)
                    .set_marker(marker.clone())
                    .send()
            })
            .await;
        let Ok(page) = part.done("iam:ListAccessKeys", r) else {
            break;
        };
        // Every field of AccessKeyMetadata is optional in the SDK's model, so a truncated or garbled answer
        // parses into keys without an id. Such a key is reported as a malformed answer, not as a row.
        for key in page.access_key_metadata() {
            if key.access_key_id().is_some_and(|id| !id.is_empty()) {
                keys.push(key.clone());
            } else {
                part.malformed(
                    "iam:ListAccessKeys",
                    format!("ListAccessKeys for user {name} returned a key without an AccessKeyId"),
                );
            }
        }
        match next_page(page.is_truncated(), page.marker(), marker.as_deref()) {
            Next::Page(next) => marker = Some(next),
            Next::Done => break,
            Next::Stuck => {
                part.malformed(
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
        let r = ctx
            .call(|| part.client.list_mfa_devices().user_name(name).send())
            .await;
        match part.done("iam:ListMFADevices", r) {
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
        let r = ctx
            .call(|| part.client.get_login_profile().user_name(name).send())
            .await;
        match r {
            Ok(_) => {
                part.tally.ok();
                Password::Configured
            }
            // NoSuchEntity is the answer "this user has no console password", not a failure.
            Err(f) if f.code == "NoSuchEntity" || f.code == "NoSuchEntityException" => {
                part.tally.ok();
                Password::NotConfigured
            }
            Err(f) => {
                part.tally.fail(ctx, "iam:GetLoginProfile", &f);
                Password::Unknown
            }
        }
    };
    let last_used_fut = futures::future::join_all(keys.iter().map(|k| async move {
        // Keys without an id were set aside as malformed above.
        let id = k.access_key_id().unwrap_or_default();
        let r = ctx
            .call(|| {
                part.client
                    .get_access_key_last_used()
                    .access_key_id(id)
                    .send()
            })
            .await;
        match part.done("iam:GetAccessKeyLastUsed", r) {
            Ok(out) => Ok(out.access_key_last_used().and_then(|u| {
                let date = u.last_used_date()?;
                Some(LastUsed {
                    date: rfc3339(date),
                    service: non_empty(u.service_name(), "N/A"),
                    region: non_empty(u.region(), "N/A"),
                    days_since: to_chrono(date).map(|d| (now - d).num_days()).unwrap_or(0),
                })
            })),
            Err(_) => Err(()),
        }
    }));
    let ((mfa, mfa_devices), password, last_used) =
        tokio::join!(mfa_fut, password_fut, last_used_fut);

    let password_last_used = user.password_last_used().map(rfc3339);
    for (key, last_used) in keys.iter().zip(last_used) {
        let created = key.create_date();
        let age = created.and_then(to_chrono).map(|c| (now - c).num_days());
        let status = key
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        let days_since = last_used
            .as_ref()
            .ok()
            .and_then(|u| u.as_ref().map(|u| u.days_since));
        let row = KeyRow {
            account_id: ctx.account.id.clone(),
            account_name: ctx.account.name.clone(),
            username: name.to_string(),
            password,
            password_last_used: password_last_used.clone(),
            access_key_id: key.access_key_id().unwrap_or_default().to_string(),
            risk: risk(status == "Active", age, days_since, password, mfa),
            status,
            created_date: created.map(rfc3339).unwrap_or_default(),
            last_used,
            mfa,
            mfa_devices,
            key_age_days: age,
        };
        ctx.keys.fetch_add(1, Ordering::Relaxed);
        if !ctx.send(Record::Key(row)).await {
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
    fn timestamps_are_rfc3339_seconds_utc() {
        assert_eq!(
            rfc3339(&SmithyTime::from_secs_and_nanos(1772724622, 999)),
            "2026-03-05T15:30:22Z"
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
