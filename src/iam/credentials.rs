//! The other long-term credentials of IAM users: service-specific credentials (CodeCommit Git passwords,
//! Amazon Keyspaces passwords, and the long-term API keys of Amazon Bedrock, Claude Platform on AWS, Amazon
//! CloudWatch and CloudWatch Logs: `SERVICES`), X.509 signing certificates and CodeCommit SSH public keys,
//! and the users AWS quarantined (`quarantine`). Every action here is optional: refused, the account is
//! still audited and the accounts report says what was not read and what to allow (once per action; the action is not
//! asked again in that account, nor in the run once two accounts refused it: `limits::optional`).
//!
//! - ListServiceSpecificCredentials with `AllUsers=true`, paged with `Marker`: one call per account (per
//!   page), not one per user. `ServiceName` is optional with `AllUsers` in the API reference; should IAM
//!   still refuse the request without it (ValidationError naming ServiceName), every service of
//!   `SERVICES` is asked, one at a time.
//! - ListSigningCertificates per user, only for the users the credential report shows a certificate
//!   for (`cert_1_*`, `cert_2_*`); per user under the `api` strategy.
//! - ListSSHPublicKeys per user, opt-in (`ssh_keys`): there is no account-wide listing.

use std::collections::HashMap;

use aws_sdk_iam::types::ServiceSpecificCredentialMetadata;

use crate::pages::{Fetched, Pager};
use crate::record::{CredentialRow, CredentialType, Flag, Flags, OtherCredentials, Password};
use crate::retry::Failure;
use crate::session::{utc, Session};

use super::calls::{grant, note};
use super::quarantine::Quarantined;

/// Every `ServiceName` IAM issues service-specific credentials for, asked one at a time only when
/// `AllUsers` alone is refused, with whether its credentials are API keys that may carry an expiry
/// (`CredentialAgeDays`; Git and Cassandra passwords cannot). From AWS's pages "API keys for AWS services"
/// (<https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_api_keys_for_aws_services.html>) and
/// "Service-specific credentials for IAM users"
/// (<https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_service-specific-creds.html>), read
/// 2026-12-06; docs/credentials.md has the same table.
pub(crate) const SERVICES: [(&str, bool); 6] = [
    ("codecommit.amazonaws.com", false),
    ("cassandra.amazonaws.com", false),
    ("bedrock.amazonaws.com", true),
    ("aws-external-anthropic.amazonaws.com", true),
    ("cloudwatch.amazonaws.com", true),
    ("logs.amazonaws.com", true),
];

/// Whether `service`'s credentials are API keys that can expire. A service not in `SERVICES` (one AWS
/// added since) is taken for an API key: every service added since the two password services issues them.
fn may_expire(service: &str) -> bool {
    SERVICES
        .iter()
        .find(|(s, _)| *s == service)
        .is_none_or(|(_, api_key)| *api_key)
}

const LIST_SERVICE: &str = "iam:ListServiceSpecificCredentials";
const LIST_CERTS: &str = "iam:ListSigningCertificates";
const LIST_SSH: &str = "iam:ListSSHPublicKeys";

/// One account's other credentials: the account-wide listing (the per-user ones are read per user).
pub(crate) struct Others {
    service: ServiceListing,
    /// The users AWS quarantined (`quarantine`).
    quarantined: Quarantined,
}

/// The account's service-specific credentials by user; `Err` when they could not be read (noted).
pub(crate) type ServiceListing =
    Result<HashMap<String, Vec<ServiceSpecificCredentialMetadata>>, ()>;

/// A user's other credentials, read and judged: the rows of the credentials file, the counts of the
/// users report, and the flags (their findings are about the user).
pub(crate) struct UserOthers {
    pub rows: Vec<CredentialRow>,
    pub counts: OtherCredentials,
    pub flags: Flags,
}

/// Whether the user may hold signing certificates: from the credential report's `cert_*` columns, or
/// unknown (the `api` strategy).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Certs {
    None,
    Some,
    Unknown,
}

impl Others {
    /// The account's other credentials: its service-specific ones (`read_service`) and its quarantined
    /// users (`quarantine::read`), read side by side.
    pub(crate) fn new(service: ServiceListing, quarantined: Quarantined) -> Others {
        Others {
            service,
            quarantined,
        }
    }

    /// Read the account's service-specific credentials (one listing for every user).
    pub(crate) async fn read_service(session: &Session) -> ServiceListing {
        let service = match list_all(session, None).await {
            Ok(all) => Ok(all),
            Err(f) if asks_for_service_name(&f) => by_service(session).await,
            Err(f) => Err(f),
        };
        service.map_err(|f| {
            note(
                session,
                LIST_SERVICE,
                &f,
                &format!("{NOT_READ}; {}", grant(&f, LIST_SERVICE)),
            );
        })
    }

    /// The other credentials of user `name`: its certificates and SSH keys listed side by side.
    pub(crate) async fn of_user(
        &self,
        session: &Session,
        name: &str,
        password: Password,
        certs: Certs,
    ) -> UserOthers {
        let (certs, ssh) = tokio::join!(
            self.certificates_of(session, name, certs),
            self.ssh_keys_of(session, name, password)
        );
        self.assemble(session, name, certs, ssh)
    }

    /// User `name`'s signing certificates (none to list when the report shows none); `None` when they
    /// could not be read (noted).
    pub(crate) async fn certificates_of(
        &self,
        session: &Session,
        name: &str,
        certs: Certs,
    ) -> Option<Vec<Listed>> {
        if certs == Certs::None {
            return Some(Vec::new());
        }
        self.certificates(session, name).await
    }

    /// User `name`'s SSH public keys, when `ssh_keys` asks for them (for `console`: when the user has a
    /// console password); `None` when not listed or not readable (noted).
    pub(crate) async fn ssh_keys_of(
        &self,
        session: &Session,
        name: &str,
        password: Password,
    ) -> Option<Vec<Listed>> {
        let want = match session.settings().keys.ssh_keys.as_str() {
            "all" => true,
            "console" => password == Password::Configured,
            _ => false,
        };
        if !want {
            return None;
        }
        self.ssh_keys(session, name).await
    }

    /// User `name`'s other credentials from its listings and the account's service-specific ones.
    pub(crate) fn assemble(
        &self,
        session: &Session,
        name: &str,
        cert_list: Option<Vec<Listed>>,
        ssh_list: Option<Vec<Listed>>,
    ) -> UserOthers {
        let s = session.settings();
        let now = s.started_at;
        let account = session.account();
        type Time = Option<chrono::DateTime<chrono::Utc>>;
        let row =
            |kind, service: &str, id: &str, status: &str, created: Time, expires: Time, source| {
                let age_days = created.map(|c| (now - c).num_days());
                CredentialRow {
                    account_id: account.id.clone(),
                    account_name: account.name.clone(),
                    username: name.to_string(),
                    kind,
                    service: service.to_string(),
                    credential_id: id.to_string(),
                    status: status.to_string(),
                    created,
                    expires,
                    age_days,
                    risk: Flags::default(),
                    source,
                }
            };
        let mut rows = Vec::new();
        let mut counts = OtherCredentials::default();
        if let Ok(by_user) = &self.service {
            let mine = by_user.get(name).map_or(&[][..], Vec::as_slice);
            counts.service_specific = Some(mine.len() as u32);
            for c in mine {
                let mut r = row(
                    CredentialType::ServiceSpecific,
                    c.service_name(),
                    c.service_specific_credential_id(),
                    c.status().as_str(),
                    utc(c.create_date()),
                    c.expiration_date().and_then(utc),
                    LIST_SERVICE,
                );
                // A key past its expiry no longer works, whatever its status says.
                if r.expires.is_some_and(|e| e <= now) {
                    r.status = "Expired".into();
                }
                let active = r.status == "Active";
                if active
                    && r.age_days
                        .is_some_and(|d| d > s.thresholds.key_max_age_days)
                {
                    r.risk.insert(Flag::ApiKeyOld);
                }
                if active && may_expire(&r.service) && r.expires.is_none() {
                    r.risk.insert(Flag::ApiKeyWithoutExpiry);
                }
                rows.push(r);
            }
        }
        if let Some(certs) = cert_list {
            counts.signing_certificates = Some(certs.len() as u32);
            for (id, status, created) in certs {
                rows.push(row(
                    CredentialType::SigningCertificate,
                    "",
                    &id,
                    &status,
                    created,
                    None,
                    LIST_CERTS,
                ));
            }
        }
        if let Some(keys) = ssh_list {
            counts.ssh_public_keys = Some(keys.len() as u32);
            for (id, status, created) in keys {
                rows.push(row(
                    CredentialType::SshPublicKey,
                    "codecommit.amazonaws.com",
                    &id,
                    &status,
                    created,
                    None,
                    LIST_SSH,
                ));
            }
        }
        let mut flags = rows.iter().fold(Flags::default(), |f, r| f.union(r.risk));
        if self
            .quarantined
            .as_ref()
            .is_ok_and(|q| q.contains_key(name))
        {
            flags.insert(Flag::KeyQuarantinedByAws);
        }
        UserOthers {
            rows,
            counts,
            flags,
        }
    }

    /// Note an optional per-user action's failure (once per action and code: the notes are distinct; a
    /// refusal stops the asking, `limits::optional`).
    fn failed(&self, session: &Session, action: &'static str, what: &str, f: &Failure) {
        note(
            session,
            action,
            f,
            &format!("{what} were not read; {}", grant(f, action)),
        );
    }

    async fn certificates(&self, session: &Session, name: &str) -> Option<Vec<Listed>> {
        let iam = session.iam();
        let fetch = |marker: Option<String>| async move {
            iam.optional(LIST_CERTS, |c, o| {
                c.list_signing_certificates()
                    .user_name(name)
                    .set_marker(marker.clone())
                    .customize()
                    .config_override(o)
                    .send()
            })
            .await
            .map(|p| {
                let items = p.certificates().iter().map(|c| {
                    let created = c.upload_date().and_then(utc);
                    (
                        c.certificate_id().into(),
                        c.status().as_str().into(),
                        created,
                    )
                });
                (
                    items.collect(),
                    p.is_truncated(),
                    p.marker().map(str::to_string),
                )
            })
        };
        self.per_user(session, LIST_CERTS, "signing certificates", name, fetch)
            .await
    }

    async fn ssh_keys(&self, session: &Session, name: &str) -> Option<Vec<Listed>> {
        let iam = session.iam();
        let fetch = |marker: Option<String>| async move {
            iam.optional(LIST_SSH, |c, o| {
                c.list_ssh_public_keys()
                    .user_name(name)
                    .set_marker(marker.clone())
                    .customize()
                    .config_override(o)
                    .send()
            })
            .await
            .map(|p| {
                let items = p.ssh_public_keys().iter().map(|k| {
                    let created = utc(k.upload_date());
                    (
                        k.ssh_public_key_id().into(),
                        k.status().as_str().into(),
                        created,
                    )
                });
                (
                    items.collect(),
                    p.is_truncated(),
                    p.marker().map(str::to_string),
                )
            })
        };
        self.per_user(session, LIST_SSH, "SSH public keys", name, fetch)
            .await
    }

    /// Every page of one user's listing of `action`; `None` when it was refused, or fails (noted). A
    /// user deleted during the audit has none left.
    async fn per_user<Fut>(
        &self,
        session: &Session,
        action: &'static str,
        what: &str,
        name: &str,
        fetch: impl Fn(Option<String>) -> Fut,
    ) -> Option<Vec<Listed>>
    where
        Fut: std::future::Future<Output = Result<Fetched<Vec<Listed>>, Failure>>,
    {
        let mut out = Vec::new();
        let mut pager = Pager::new(session.settings().keys.max_pages);
        while let Some(page) = pager.next(&fetch).await {
            match page {
                Ok(items) => out.extend(items),
                Err(e) => {
                    let listing = action.trim_start_matches("iam:");
                    let f = e.into_failure(&format!("{listing} for user {name}"));
                    if f.code == "NoSuchEntity" {
                        return Some(Vec::new());
                    }
                    self.failed(session, action, what, &f);
                    return None;
                }
            }
        }
        Some(out)
    }
}

/// (id, status, created) of a listed certificate or SSH key.
type Listed = (String, String, Option<chrono::DateTime<chrono::Utc>>);

const NOT_READ: &str =
    "service-specific credentials (CodeCommit and Keyspaces passwords, API keys) were not read";

/// Every service of `SERVICES`, one at a time (IAM refused `AllUsers` alone). A service IAM refuses or
/// fails on is noted with its name and the others are kept; `Err` when none could be read.
async fn by_service(
    session: &Session,
) -> Result<HashMap<String, Vec<ServiceSpecificCredentialMetadata>>, Failure> {
    let mut all: HashMap<String, Vec<ServiceSpecificCredentialMetadata>> = HashMap::new();
    let mut failed = Vec::new();
    for (service, _) in SERVICES {
        match list_all(session, Some(service)).await {
            Ok(found) => {
                for (user, creds) in found {
                    all.entry(user).or_default().extend(creds);
                }
            }
            Err(f) => failed.push((service, f)),
        }
    }
    if failed.len() == SERVICES.len() {
        return Err(failed.swap_remove(0).1);
    }
    for (service, f) in failed {
        let consequence = format!(
            "the service-specific credentials of {service} were not read; {}",
            grant(&f, LIST_SERVICE)
        );
        note(session, LIST_SERVICE, &f, &consequence);
    }
    Ok(all)
}

/// IAM refused `AllUsers` without a `ServiceName`.
fn asks_for_service_name(f: &Failure) -> bool {
    (f.code == "ValidationError" || f.code == "InvalidInput") && f.message.contains("ServiceName")
}

/// Every service-specific credential of the account (of one service, or all), by user.
async fn list_all(
    session: &Session,
    service: Option<&'static str>,
) -> Result<HashMap<String, Vec<ServiceSpecificCredentialMetadata>>, Failure> {
    let iam = session.iam();
    let mut by_user: HashMap<String, Vec<ServiceSpecificCredentialMetadata>> = HashMap::new();
    let mut pager = Pager::new(session.settings().keys.max_pages);
    while let Some(page) = pager
        .next(|marker| async move {
            iam.optional(LIST_SERVICE, |c, o| {
                c.list_service_specific_credentials()
                    .all_users(true)
                    .set_service_name(service.map(str::to_string))
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
        let page = page.map_err(|e| e.into_failure("ListServiceSpecificCredentials"))?;
        for c in page.service_specific_credentials() {
            by_user
                .entry(c.user_name().to_string())
                .or_default()
                .push(c.clone());
        }
    }
    Ok(by_user)
}
