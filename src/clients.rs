//! AWS clients. One base `SdkConfig` (profile or default chain, the global-services region, one shared HTTP
//! client, adaptive retries) is loaded once; every member account derives from it an assumed-role
//! credentials provider and IAM/CloudTrail clients with their own retry partitions, so one throttled
//! account cannot slow the others through a shared retry token bucket or adaptive limiter (design §4).
//!
//! `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>` are honoured by the SDK; nothing here overrides them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::{tls, ConnectorBuilder};
use aws_smithy_runtime::client::identity::IdentityCache;
use aws_smithy_runtime::client::retries::{RetryPartition, TokenBucket};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

use crate::config::Settings;
use crate::limits::{Bucket, PacedHttpClient};
use crate::retry::Failure;

/// Counters of every HTTP attempt the engine made, for the summary and the progress display.
#[derive(Debug, Default)]
pub struct CallStats {
    pub calls: AtomicU64,
    pub throttled: AtomicU64,
    pub server_errors: AtomicU64,
    pub assume_role: AtomicU64,
}

impl CallStats {
    pub fn snapshot(&self) -> CallCounts {
        CallCounts {
            calls: self.calls.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            server_errors: self.server_errors.load(Ordering::Relaxed),
            assume_role: self.assume_role.load(Ordering::Relaxed),
        }
    }
}

/// A copy of the counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CallCounts {
    /// HTTP attempts to IAM, CloudTrail and Organizations (retries included).
    pub calls: u64,
    /// Attempts answered with a throttling error.
    pub throttled: u64,
    /// Attempts answered with a 5xx.
    pub server_errors: u64,
    /// AssumeRole calls (first assumption and refreshes).
    pub assume_role: u64,
}

/// Counts attempts and their throttling/5xx answers. Reads only the status and the error code in the
/// (already buffered) error body; never headers, so no signature or token can leak from here.
#[derive(Debug, Clone)]
struct CountCalls(Arc<CallStats>);

impl Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "iam_audit::CountCalls"
    }

    fn read_before_transmit(
        &self,
        _ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.calls.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        ctx: &AfterDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let resp = ctx.response();
        let status = resp.status().as_u16();
        if status >= 500 {
            self.0.server_errors.fetch_add(1, Ordering::Relaxed);
        } else if status == 429 || (status >= 400 && body_says_throttled(resp.body().bytes())) {
            self.0.throttled.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// IAM/STS (XML `<Code>Throttling</Code>`), CloudTrail (`ThrottlingException`) and Organizations
/// (`TooManyRequestsException`) throttling bodies.
fn body_says_throttled(body: Option<&[u8]>) -> bool {
    let Some(body) = body else { return false };
    let window = &body[..body.len().min(512)];
    [
        &b"Throttling"[..],
        b"TooManyRequests",
        b"RequestLimitExceeded",
    ]
    .iter()
    .any(|needle| window.windows(needle.len()).any(|w| w == *needle))
}

/// The engine's handle on AWS: the base config everything derives from, and the counters.
#[derive(Clone)]
pub struct Aws {
    base: SdkConfig,
    in_flight: crate::limits::InFlight,
    http: aws_smithy_runtime_api::client::http::SharedHttpClient,
    retry: RetryConfig,
    stats: Arc<CallStats>,
    partition: &'static str,
}

/// A setup failure while loading credentials.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsSetupError {
    #[error("AWS profile '{profile}' was not found: {detail}. List the profiles with `aws configure list-profiles`, or create it with `aws configure --profile {profile}` (or `aws configure sso --profile {profile}`)")]
    UnknownProfile { profile: String, detail: String },
    #[error("no AWS credentials for the management account: {detail}. Pass --profile, set AWS_PROFILE, or export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (for SSO profiles run `aws sso login` first)")]
    NoCredentials { detail: String },
}

/// An error and its sources, `: `-joined, on one line (no Debug dumps).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts
        .join(": ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `--profile NAME` must name a profile of the AWS config or credentials file: otherwise the SDK would
/// only say that no credentials were found.
async fn check_profile_exists(profile: &str) -> Result<(), CredentialsSetupError> {
    use aws_types::os_shim_internal::{Env, Fs};
    let files = aws_runtime::env_config::file::EnvConfigFiles::default();
    let set = aws_config::profile::load(&Fs::real(), &Env::real(), &files, None)
        .await
        .map_err(|e| CredentialsSetupError::UnknownProfile {
            profile: profile.to_string(),
            detail: format!(
                "the AWS config files could not be read: {}",
                error_chain(&e)
            ),
        })?;
    if set.get_profile(profile).is_none() {
        let known: Vec<&str> = set.profiles().collect();
        return Err(CredentialsSetupError::UnknownProfile {
            profile: profile.to_string(),
            detail: if known.is_empty() {
                "no profiles are defined in ~/.aws/config or ~/.aws/credentials".to_string()
            } else {
                format!("the known profiles are {}", known.join(", "))
            },
        });
    }
    Ok(())
}

/// The AWS partition of a region, for role ARNs.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else {
        "aws"
    }
}

/// Credentials of one member account: AssumeRole through the SDK's refreshing provider, cached here and
/// renewed before they expire (or at once after an `ExpiredToken`), shared by the account's clients.
#[derive(Debug)]
pub struct AccountCredentials {
    inner: AssumeRoleProvider,
    cached: tokio::sync::Mutex<Option<(Credentials, SystemTime)>>,
    stats: Arc<CallStats>,
}

impl AccountCredentials {
    /// Current credentials, assuming the role if there are none or they are about to expire.
    pub async fn get(&self) -> Result<Credentials, Failure> {
        let mut slot = self.cached.lock().await;
        if let Some((creds, obtained)) = slot.as_ref() {
            if fresh(creds, *obtained, SystemTime::now()) {
                return Ok(creds.clone());
            }
        }
        self.stats.assume_role.fetch_add(1, Ordering::Relaxed);
        let creds = self
            .inner
            .provide_credentials()
            .await
            .map_err(|e| Failure::from_credentials(&e))?;
        *slot = Some((creds.clone(), SystemTime::now()));
        Ok(creds)
    }

    /// Forget the cached credentials (the service said they expired).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}

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

/// A `Failure` as a std error, carried inside `CredentialsError` and recovered by `Failure::from_sdk`.
#[derive(Debug)]
pub struct FailureError(pub Failure);

impl std::fmt::Display for FailureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
impl std::error::Error for FailureError {}

/// The clients of one member account.
pub struct AccountClients {
    pub credentials: Arc<AccountCredentials>,
    pub iam: aws_sdk_iam::Client,
    /// One CloudTrail client per configured region.
    pub cloudtrail: Vec<(String, aws_sdk_cloudtrail::Client)>,
}

impl Aws {
    /// Load the base config and check that there are credentials for the management account.
    pub async fn connect(settings: &Settings) -> Result<Aws, CredentialsSetupError> {
        let retry = RetryConfig::adaptive()
            .with_max_attempts(settings.max_attempts)
            .with_initial_backoff(settings.initial_backoff)
            .with_max_backoff(settings.max_backoff);
        let http = shared_http_client();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(settings.region.clone()))
            .http_client(http.clone())
            .retry_config(retry.clone())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_attempt_timeout(Duration::from_secs(60))
                    .build(),
            );
        if let Some(profile) = &settings.profile {
            check_profile_exists(profile).await?;
            loader = loader.profile_name(profile);
        }
        if let Some(o) = &settings.endpoint_override {
            loader = loader
                .endpoint_url(&o.url)
                .credentials_provider(Credentials::new(
                    o.access_key_id.clone(),
                    o.secret_access_key.clone(),
                    None,
                    None,
                    "iam-audit-endpoint-override",
                ));
        }
        let base = loader.load().await;
        let Some(provider) = base.credentials_provider() else {
            return Err(CredentialsSetupError::NoCredentials {
                detail: "no credentials provider is configured".into(),
            });
        };
        if let Err(e) = provider.provide_credentials().await {
            let detail = aws_smithy_types::error::display::DisplayErrorContext(&e).to_string();
            let detail = detail.split_whitespace().collect::<Vec<_>>().join(" ");
            if let Some(profile) = &settings.profile {
                if detail.contains("was not defined") || detail.contains("No profiles were defined")
                {
                    return Err(CredentialsSetupError::UnknownProfile {
                        profile: profile.clone(),
                        detail,
                    });
                }
            }
            return Err(CredentialsSetupError::NoCredentials { detail });
        }
        Ok(Aws {
            in_flight: crate::limits::InFlight::new(settings.max_in_flight),
            http,
            partition: partition_of(&settings.region),
            base,
            retry,
            stats: Arc::new(CallStats::default()),
        })
    }

    pub fn stats(&self) -> &Arc<CallStats> {
        &self.stats
    }

    pub fn partition(&self) -> &'static str {
        self.partition
    }

    /// The Organizations client of the management account.
    pub fn organizations(&self) -> aws_sdk_organizations::Client {
        let conf = aws_sdk_organizations::config::Builder::from(&self.base)
            .interceptor(CountCalls(self.stats.clone()))
            .build();
        aws_sdk_organizations::Client::from_conf(conf)
    }

    /// Credentials and clients of one member account.
    pub async fn account(&self, settings: &Settings, account_id: &str) -> AccountClients {
        let mut builder =
            AssumeRoleProvider::builder(settings.role_arn(account_id, self.partition))
                .configure(&self.base)
                .session_name(settings.session_name.clone())
                .session_length(settings.session_duration);
        if let Some(ext) = &settings.external_id {
            builder = builder.external_id(ext.clone());
        }
        let credentials = Arc::new(AccountCredentials {
            inner: builder.build().await,
            cached: tokio::sync::Mutex::new(None),
            stats: self.stats.clone(),
        });
        let provider =
            SharedCredentialsProvider::new(SharedAccountCredentials(credentials.clone()));
        let iam = aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::config::Builder::from(&self.base)
                .http_client(PacedHttpClient::shared(
                    self.http.clone(),
                    Bucket::new(settings.iam_rate, settings.iam_burst),
                    self.in_flight.clone(),
                ))
                .credentials_provider(provider.clone())
                .identity_cache(IdentityCache::no_cache())
                .retry_config(self.retry.clone())
                .retry_partition(own_partition(format!("iam-{account_id}")))
                .interceptor(CountCalls(self.stats.clone()))
                .build(),
        );
        let cloudtrail = settings
            .regions
            .iter()
            .map(|region| {
                let client = aws_sdk_cloudtrail::Client::from_conf(
                    aws_sdk_cloudtrail::config::Builder::from(&self.base)
                        .region(Region::new(region.clone()))
                        .http_client(PacedHttpClient::shared(
                            self.http.clone(),
                            Bucket::new(settings.cloudtrail_rate, settings.cloudtrail_burst),
                            self.in_flight.clone(),
                        ))
                        .credentials_provider(provider.clone())
                        .identity_cache(IdentityCache::no_cache())
                        .retry_config(self.retry.clone())
                        .retry_partition(own_partition(format!("cloudtrail-{account_id}-{region}")))
                        .interceptor(CountCalls(self.stats.clone()))
                        .build(),
                );
                (region.clone(), client)
            })
            .collect();
        AccountClients {
            credentials,
            iam,
            cloudtrail,
        }
    }
}

/// A retry partition owned by one account's client: its own retry token bucket and adaptive rate limiter,
/// so a throttled account slows only itself (design §4). A custom partition, not `RetryPartition::new`:
/// named partitions live for the whole process in the SDK's static maps (aws-smithy-runtime
/// `retries/strategy/standard.rs`), which would grow with every account audited. Throttling retries cost
/// no retry quota: our buckets already pace the calls, and an auditor would rather wait than lose a row;
/// 5xx and timeouts still draw on the quota, which stops retry storms in an outage.
fn own_partition(name: String) -> RetryPartition {
    RetryPartition::custom(name)
        .token_bucket(TokenBucket::builder().throttling_retry_cost(0).build())
        .build()
}

/// One HTTPS client (one connection pool) for every SDK client of the run: without it each of the
/// thousands of per-account clients would build its own pool. HTTPS_PROXY/NO_PROXY are honoured.
fn shared_http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_http_client::Builder::new().build_with_connector_fn(|settings, components| {
        let mut conn = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ));
        conn.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            conn.set_sleep_impl(components.sleep_impl());
        }
        conn.set_proxy_config(Some(ProxyConfig::from_env()));
        conn.build()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions() {
        assert_eq!(partition_of("us-east-1"), "aws");
        assert_eq!(partition_of("cn-north-1"), "aws-cn");
        assert_eq!(partition_of("us-gov-west-1"), "aws-us-gov");
    }

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

    #[test]
    fn throttling_bodies() {
        assert!(body_says_throttled(Some(
            b"<ErrorResponse><Error><Code>Throttling</Code>"
        )));
        assert!(body_says_throttled(Some(
            br#"{"__type":"ThrottlingException"}"#
        )));
        assert!(body_says_throttled(Some(
            br#"{"__type":"TooManyRequestsException"}"#
        )));
        assert!(!body_says_throttled(Some(b"<Code>AccessDenied</Code>")));
        assert!(!body_says_throttled(None));
    }
}
