//! The IAM calls both strategies make, each through the account's session (paced, retried, tallied):
//! ListAccessKeys, ListMFADevices and GetAccessKeyLastUsed for one user; ListVirtualMFADevices and
//! GetAccountSummary once per account. Also how a device's serial tells its MFA type. Nothing here builds
//! rows or judges; `rows` and `risk` do.

use std::collections::HashMap;

use crate::limits::optional::NOT_ASKED;
use crate::pages::{PageError, Pager};
use crate::record::{LastUse, LastUsed, Mfa, Password};
use crate::retry::{is_denied, Failure};
use crate::session::{utc, Part, Session};

/// The serial of the root user's virtual MFA device ends so.
const ROOT_VIRTUAL_MFA: &str = ":mfa/root-account-mfa-device";

/// The key of the root user's devices in the virtual MFA devices by user (`VirtualMfa`).
pub const ROOT_OWNER: &str = "root";

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

/// Record a garbled answer as a failure of the IAM part.
pub(crate) fn malformed(session: &Session, action: &str, message: String) {
    session.fail(
        Part::Iam,
        action,
        &Failure::new("MalformedResponse", message),
    );
}

/// Record an optional action's failure in the accounts report without marking the account partial; not
/// when it was not asked because optional actions are off (the summary says so once) or because this
/// account refused it already (noted then).
pub(crate) fn note(session: &Session, action: &str, f: &Failure, consequence: &str) {
    use crate::limits::optional::{OFF, REFUSED_HERE};
    if f.code == OFF || f.code == REFUSED_HERE {
        return;
    }
    session.problem(
        action,
        &Failure::new(f.code.clone(), format!("{}; {consequence}", f.message)),
    );
}

/// What to do about a failed optional action.
pub(crate) fn grant(f: &Failure, action: &str) -> String {
    if is_denied(f) || f.code == NOT_ASKED {
        format!("allow {action} to the audit role")
    } else {
        "the audit goes on without them".to_string()
    }
}

/// The account's virtual MFA devices in use, by the ARN of their user (`root` for the root user). `Err`
/// when the action is refused or fails: then MFA types the report cannot tell stay `unknown`.
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
    let mut pager = Pager::new(session.settings().keys.max_pages);
    while let Some(page) = pager
        .next(|marker| async move {
            iam.optional("iam:ListVirtualMFADevices", |c, o| {
                c.list_virtual_mfa_devices()
                    .assignment_status(aws_sdk_iam::types::AssignmentStatusType::Assigned)
                    .set_marker(marker.clone())
                    .customize()
                    .config_override(o)
                    .send()
            })
            .await
            .map(|p| {
                let (more, next) = (p.is_truncated(), p.marker().map(str::to_string));
                (p, more, next)
            })
        })
        .await
    {
        let page = page.map_err(|e| e.into_failure("ListVirtualMFADevices"))?;
        for d in page.virtual_mfa_devices() {
            let serial = d.serial_number();
            let owner = match d.user() {
                Some(u) if !u.arn().ends_with(":root") => u.arn().to_string(),
                Some(_) => ROOT_OWNER.to_string(),
                None if serial.ends_with(ROOT_VIRTUAL_MFA) => ROOT_OWNER.to_string(),
                None => continue,
            };
            by_user.entry(owner).or_default().push(serial.to_string());
        }
    }
    Ok(by_user)
}

/// GetAccountSummary's map (an optional action: refused, the failure is noted and returned).
pub(crate) type Summary = Result<HashMap<aws_sdk_iam::types::SummaryKeyType, i32>, Failure>;

pub(crate) async fn account_summary(session: &Session) -> Summary {
    let r = session
        .iam()
        .optional("iam:GetAccountSummary", |c, o| {
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
    let iam = session.iam();
    let mut pager = Pager::new(session.settings().keys.max_pages);
    let fetch = |marker: Option<String>| async move {
        let page = iam
            .call_unless_deleted("iam:ListAccessKeys", name, |c, o| {
                c.list_access_keys()
                    .user_name(name)
                    .set_marker(marker.clone())
                    .customize()
                    .config_override(o)
                    .send()
            })
            .await?;
        // `None`: the user was deleted; that is the end of its keys.
        Ok(match page {
            Some(p) => {
                let (more, next) = (p.is_truncated(), p.marker().map(str::to_string));
                (Some(p), more, next)
            }
            None => (None, false, None),
        })
    };
    while let Some(page) = pager.next(fetch).await {
        match page {
            Ok(Some(page)) => {
                listed
                    .keys
                    .extend(valid_keys(session, name, page.access_key_metadata()))
            }
            Ok(None) => listed.deleted = true,
            // Recorded by the call.
            Err(PageError::Failed(_)) => listed.failed = true,
            Err(e) => {
                if matches!(e, PageError::Limit(_)) {
                    listed.failed = true;
                }
                session.fail(
                    Part::Iam,
                    "iam:ListAccessKeys",
                    &e.into_failure(&format!("ListAccessKeys for user {name}")),
                );
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
        .call_unless_deleted("iam:ListMFADevices", name, |c, o| {
            c.list_mfa_devices()
                .user_name(name)
                .customize()
                .config_override(o)
                .send()
        })
        .await;
    match r {
        Ok(Some(out)) => {
            let devices = out.mfa_devices();
            (
                strongest_mfa(devices.iter().map(|d| d.serial_number())),
                Some(devices.len()),
            )
        }
        Ok(None) | Err(_) => (Mfa::Unknown, None),
    }
}

/// Keys with an id. Every field of AccessKeyMetadata is optional in the SDK's model, so a truncated or
/// garbled answer parses into keys without an id; such a key is reported as a malformed answer.
fn valid_keys(
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

/// Whether a user has a console password, and since when: GetLoginProfile (for `None`, the caller: the
/// root user of a root session). `Unknown` when it failed (recorded).
pub(crate) async fn login_profile(
    session: &Session,
    user: Option<&str>,
) -> (Password, Option<chrono::DateTime<chrono::Utc>>) {
    let r = session
        .iam()
        .call("iam:GetLoginProfile", |c, o| async move {
            let r = c
                .get_login_profile()
                .set_user_name(user.map(str::to_string))
                .customize()
                .config_override(o)
                .send()
                .await;
            match r {
                Ok(out) => Ok((
                    Password::Configured,
                    out.login_profile().and_then(|p| utc(p.create_date())),
                )),
                // NoSuchEntity is the answer "no console password", not a failure.
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
}

/// GetAccessKeyLastUsed (a failure is recorded, and the last use is `Unknown`).
pub(crate) async fn last_used(session: &Session, id: &str) -> LastUse {
    let now = session.settings().started_at;
    let r = session
        .iam()
        .call("iam:GetAccessKeyLastUsed", |c, o| {
            c.get_access_key_last_used()
                .access_key_id(id)
                .customize()
                .config_override(o)
                .send()
        })
        .await;
    let Ok(out) = r else {
        return LastUse::Unknown;
    };
    let used = out.access_key_last_used().and_then(|u| {
        let date = utc(u.last_used_date()?)?;
        Some(LastUsed {
            days_since: (now - date).num_days(),
            date,
            service: non_empty(u.service_name(), "N/A"),
            region: non_empty(u.region(), "N/A"),
        })
    });
    used.map_or(LastUse::Never, LastUse::Used)
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
