//! One member account's credentials: AssumeRole through the run's one STS client (each of the configured
//! roles in turn, or the caller's own credentials for the management account), cached and renewed before
//! they expire or at once after an `ExpiredToken`, and handed to the account's SDK calls.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;

use crate::aws::Aws;
use crate::config::Settings;
use crate::retry::{retry_step, Failure, FailureError};
use crate::stats::CallStats;

/// Credentials of one member account: AssumeRole through the run's shared STS client, cached here and
/// renewed before they expire (or at once after an `ExpiredToken`), shared by the account's clients.
#[derive(Debug)]
pub struct AccountCredentials {
    sts: aws_sdk_sts::Client,
    /// The roles to try, in order.
    role_arns: Vec<String>,
    /// Which way in worked: `Some(i)` the i-th role, `Some(usize::MAX)` the caller's own credentials.
    chosen: std::sync::atomic::AtomicUsize,
    /// The caller's credentials, for the management account when no role can be assumed there.
    caller: Option<CallerFallback>,
    session_name: String,
    external_id: Option<String>,
    duration: Duration,
    cached: tokio::sync::Mutex<Option<(Credentials, SystemTime)>>,
    stats: Arc<CallStats>,
    /// `Some(account)`: the account's root user through sts:AssumeRoot (centralized root access), with
    /// the IAMAuditRootUserCredentials task policy, instead of a role.
    root_of: Option<String>,
}

/// The task policy that scopes an AssumeRoot session to reading the root user's credentials.
pub const ROOT_AUDIT_TASK_POLICY: &str =
    "arn:aws:iam::aws:policy/root-task/IAMAuditRootUserCredentials";

/// The shortest root session AWS gives is asked for: the root user's few calls take seconds.
const ROOT_SESSION_SECS: i32 = 900;

impl AccountCredentials {
    /// The credentials of one account, reached through `role_arns` in turn, or `caller` (the
    /// management account's own credentials) when none can be assumed. Nothing is called yet.
    pub fn new(
        aws: &Aws,
        role_arns: Vec<String>,
        caller: Option<CallerFallback>,
        settings: &Settings,
    ) -> Arc<AccountCredentials> {
        Arc::new(AccountCredentials {
            sts: aws.sts().clone(),
            role_arns,
            chosen: AtomicUsize::new(NOT_CHOSEN),
            caller,
            session_name: settings.keys.session_name.clone(),
            external_id: settings.keys.external_id.clone(),
            duration: settings.session_duration(),
            cached: tokio::sync::Mutex::new(None),
            stats: aws.stats().clone(),
            root_of: None,
        })
    }

    /// The credentials of `account`'s root user, through sts:AssumeRoot from the caller's identity (the
    /// management account or IAM's delegated administrator). Nothing is called yet.
    pub fn root(aws: &Aws, account: &str, settings: &Settings) -> Arc<AccountCredentials> {
        Arc::new(AccountCredentials {
            sts: aws.sts().clone(),
            role_arns: Vec::new(),
            chosen: AtomicUsize::new(NOT_CHOSEN),
            caller: None,
            session_name: settings.keys.session_name.clone(),
            external_id: None,
            duration: Duration::from_secs(ROOT_SESSION_SECS as u64),
            cached: tokio::sync::Mutex::new(None),
            stats: aws.stats().clone(),
            root_of: Some(account.to_string()),
        })
    }

    /// The provider the account's SDK calls resolve their identity through (this cache).
    pub fn provider(self: &Arc<Self>) -> SharedCredentialsProvider {
        SharedCredentialsProvider::new(SharedAccountCredentials(self.clone()))
    }

    /// Current credentials, assuming the role if there are none or they are about to expire.
    pub async fn get(&self) -> Result<Credentials, Failure> {
        let mut slot = self.cached.lock().await;
        if let Some((creds, obtained)) = slot.as_ref() {
            if fresh(creds, *obtained, SystemTime::now()) {
                return Ok(creds.clone());
            }
        }
        let creds = match self.chosen.load(Ordering::Relaxed) {
            _ if self.root_of.is_some() => self.assume_root().await?,
            CALLER => self.caller_credentials().await?,
            NOT_CHOSEN => self.assume(&self.role_arns[0]).await?,
            i => self.assume(&self.role_arns[i]).await?,
        };
        *slot = Some((creds.clone(), SystemTime::now()));
        Ok(creds)
    }

    /// Find the way in: each role in order (a denied one is passed over), then, where allowed, the
    /// caller's own credentials. `Err` with every role's failure when none works.
    pub async fn choose(&self) -> Result<(), Failure> {
        let (min, max) = (Duration::from_millis(500), Duration::from_secs(20));
        if let Some(account) = &self.root_of {
            let creds = retry_step(min, max, 4, || self.assume_root())
                .await
                .map_err(|f| {
                    Failure::new(
                        f.code,
                        format!(
                            "{} (sts:AssumeRoot {account} with IAMAuditRootUserCredentials)",
                            f.message
                        ),
                    )
                })?;
            self.chosen.store(ROOT, Ordering::Relaxed);
            *self.cached.lock().await = Some((creds, SystemTime::now()));
            return Ok(());
        }
        // (code, "message (sts:AssumeRole arn)") of each role refused.
        let mut refused: Vec<(String, String)> = Vec::new();
        for (i, arn) in self.role_arns.iter().enumerate() {
            match retry_step(min, max, 4, || self.assume(arn)).await {
                Ok(creds) => {
                    self.chosen.store(i, Ordering::Relaxed);
                    *self.cached.lock().await = Some((creds, SystemTime::now()));
                    return Ok(());
                }
                Err(f) if crate::retry::is_denied(&f) => {
                    refused.push((f.code, format!("{} (sts:AssumeRole {arn})", f.message)));
                }
                Err(f) => {
                    return Err(Failure::new(
                        f.code,
                        format!("{} (sts:AssumeRole {arn})", f.message),
                    ))
                }
            }
        }
        if let Some(fallback) = &self.caller {
            // The caller's credentials read the caller's own account: run from a delegated
            // administrator, they would report its users as the management account's.
            let own = fallback.aws.caller_account().await.map_err(|f| {
                Failure::new(f.code, format!("{} (sts:GetCallerIdentity)", f.message))
            })?;
            if own != fallback.account {
                let mut message = format!(
                    "no audit role could be assumed here, and the caller's own credentials belong to account {own}, not {}: deploy the audit role in this account (deploy/aws/member-role-stackset.yaml as a plain stack, docs/setup.md)",
                    fallback.account
                );
                for (code, m) in &refused {
                    message.push_str(&format!(" | {code}: {m}"));
                }
                return Err(Failure::new("CallerIsNotTheAccount", message));
            }
            let creds = self.caller_credentials().await?;
            self.chosen.store(CALLER, Ordering::Relaxed);
            *self.cached.lock().await = Some((creds, SystemTime::now()));
            return Ok(());
        }
        let code = refused
            .first()
            .map_or("AccessDenied".to_string(), |(c, _)| c.clone());
        let message = refused
            .into_iter()
            .map(|(_, m)| m)
            .collect::<Vec<_>>()
            .join(" | ");
        Err(Failure::new(code, message))
    }

    /// The role used (its name), `caller`, or empty before one was chosen.
    pub fn used(&self) -> String {
        match self.chosen.load(Ordering::Relaxed) {
            ROOT => "assume_root".to_string(),
            CALLER => "caller".to_string(),
            NOT_CHOSEN => String::new(),
            i => self.role_arns[i]
                .split_once(":role/")
                .map(|(_, name)| name.to_string())
                .unwrap_or_default(),
        }
    }

    async fn caller_credentials(&self) -> Result<Credentials, Failure> {
        let Some(fallback) = &self.caller else {
            return Err(Failure::new("CredentialsError", "no caller credentials"));
        };
        fallback
            .provider
            .provide_credentials()
            .await
            .map_err(|e| Failure::new("CredentialsError", crate::aws::error_chain(&e)))
    }

    /// Forget the cached credentials (the service said they expired).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    /// sts:AssumeRoot on the client's regional endpoint (AssumeRoot refuses the global one), for the
    /// shortest session, scoped by the audit task policy.
    async fn assume_root(&self) -> Result<Credentials, Failure> {
        let account = self.root_of.as_deref().unwrap_or_default();
        let out = Box::pin(
            self.sts
                .assume_root()
                .target_principal(account)
                .task_policy_arn(
                    aws_sdk_sts::types::PolicyDescriptorType::builder()
                        .arn(ROOT_AUDIT_TASK_POLICY)
                        .build(),
                )
                .duration_seconds(ROOT_SESSION_SECS)
                .send(),
        )
        .await
        .map_err(|e| Failure::from_sdk(&e))?;
        session_credentials(out.credentials(), "AssumeRoot", "iam-audit-assume-root")
    }

    async fn assume(&self, role_arn: &str) -> Result<Credentials, Failure> {
        self.stats.assume_role.fetch_add(1, Ordering::Relaxed);
        // Boxed: the SDK's future is several KB, and every account waiting to start would reserve it.
        let out = Box::pin(
            self.sts
                .assume_role()
                .role_arn(role_arn)
                .role_session_name(&self.session_name)
                .set_external_id(self.external_id.clone())
                .duration_seconds(self.duration.as_secs() as i32)
                .send(),
        )
        .await
        .map_err(|e| Failure::from_sdk(&e))?;
        session_credentials(out.credentials(), "AssumeRole", "iam-audit-assume-role")
    }
}

/// The credentials an STS answer (`action`'s) handed out; a malformed answer without them is a failure.
fn session_credentials(
    c: Option<&aws_sdk_sts::types::Credentials>,
    action: &str,
    provider: &'static str,
) -> Result<Credentials, Failure> {
    let Some(c) = c else {
        return Err(Failure::new(
            "MalformedResponse",
            format!("{action} answered without Credentials"),
        ));
    };
    Ok(Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        SystemTime::try_from(*c.expiration()).ok(),
        provider,
    ))
}

/// The caller's own credentials as the way into the management account, where no role can be assumed.
pub struct CallerFallback {
    pub provider: SharedCredentialsProvider,
    /// The account they would audit: they may only if it is the caller's own.
    pub account: String,
    pub aws: Aws,
}

impl std::fmt::Debug for CallerFallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallerFallback")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

/// `AccountCredentials::chosen` before a choice, and for the caller's own credentials.
const NOT_CHOSEN: usize = usize::MAX - 1;
const CALLER: usize = usize::MAX;
/// `AccountCredentials::chosen` of a root session.
const ROOT: usize = usize::MAX - 2;

/// Refresh a fifth of the lifetime (at most five minutes) before expiry, so no call is signed with
/// credentials that die in flight.
fn fresh(creds: &Credentials, obtained: SystemTime, now: SystemTime) -> bool {
    let Some(expiry) = creds.expiry() else {
        return true;
    };
    let lifetime = expiry.duration_since(obtained).unwrap_or_default();
    let margin = (lifetime / 5).min(Duration::from_secs(300));
    now + margin < expiry
}

/// Adapter so the SDK clients resolve identities through the account's cache.
#[derive(Debug, Clone)]
struct SharedAccountCredentials(Arc<AccountCredentials>);

impl ProvideCredentials for SharedAccountCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.0.get().await.map_err(|f| {
                aws_credential_types::provider::error::CredentialsError::provider_error(
                    FailureError(f),
                )
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_refresh_before_expiry() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let c = Credentials::new(
            "AKID",
            "secret",
            Some("token".into()),
            Some(t0 + Duration::from_secs(3600)),
            "test",
        );
        assert!(fresh(&c, t0, t0 + Duration::from_secs(3000)));
        // Within five minutes of expiry: refresh.
        assert!(!fresh(&c, t0, t0 + Duration::from_secs(3301)));
        // A 60-second session is refreshed in its last 12 seconds.
        let short = Credentials::new(
            "AKID",
            "secret",
            None,
            Some(t0 + Duration::from_secs(60)),
            "test",
        );
        assert!(fresh(&short, t0, t0 + Duration::from_secs(47)));
        assert!(!fresh(&short, t0, t0 + Duration::from_secs(49)));
    }
}
