//! The run's connection to AWS, set up once: the base `SdkConfig` (profile or default chain, one shared
//! HTTP client, adaptive retries), the management credentials resolved once and cached, one STS client that
//! assumes every account's role, the Organizations client, and prebuilt IAM and CloudTrail client configs
//! from which each account's session derives its own clients cheaply.
//!
//! `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>` are honoured by the SDK; nothing here overrides them.

use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::{tls, ConnectorBuilder};
use aws_smithy_runtime::client::identity::IdentityCache;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

use crate::config::Settings;
use crate::limits::{Cap, InFlight, MarkRetries, PacedHttpClient, ReadyEstimate};
use crate::stats::{CallStats, CountCalls};

/// A setup failure while loading credentials.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsSetupError {
    #[error("AWS profile '{profile}' was not found: {detail}. List the profiles with `aws configure list-profiles`, or create it with `aws configure --profile {profile}` (or `aws configure sso --profile {profile}`)")]
    UnknownProfile { profile: String, detail: String },
    #[error("no AWS credentials for the management account: {detail}. Pass --profile, set AWS_PROFILE, or export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (for SSO profiles run `aws sso login` first)")]
    NoCredentials { detail: String },
}

/// Centralized root access, as iam:ListOrganizationsFeatures says (once per run, from the management
/// identity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootAccess {
    /// Not asked (optional actions off).
    NotAsked,
    /// At least one feature on.
    On {
        credentials_management: bool,
        root_sessions: bool,
    },
    /// Neither RootCredentialsManagement nor RootSessions: CIS v7.0 2.1.1 fails.
    Off,
    /// The call failed: why.
    Unknown(String),
}

impl RootAccess {
    /// The summary's line.
    pub fn line(&self) -> Option<String> {
        let on = |b: bool| if b { "on" } else { "off" };
        Some(match self {
            RootAccess::NotAsked => return None,
            RootAccess::On {
                credentials_management,
                root_sessions,
            } => format!(
                "centralized root access: RootCredentialsManagement {}, RootSessions {}",
                on(*credentials_management),
                on(*root_sessions)
            ),
            RootAccess::Off => "centralized root access: off (neither RootCredentialsManagement nor RootSessions): a finding on the management account's root user (CIS v7.0 2.1.1)".to_string(),
            RootAccess::Unknown(why) => format!(
                "centralized root access: unknown (iam:ListOrganizationsFeatures: {why}); every member's root MFA is judged, and no root session is tried"
            ),
        })
    }
}

/// The engine's handle on AWS. Cheap to clone: everything inside is shared.
#[derive(Clone)]
pub struct Aws {
    base: SdkConfig,
    http: SharedHttpClient,
    sts: aws_sdk_sts::Client,
    iam: aws_sdk_iam::Client,
    cloudtrail: Vec<(String, aws_sdk_cloudtrail::Client)>,
    in_flight: InFlight,
    stats: Arc<CallStats>,
    partition: &'static str,
    /// The organization manages its member accounts' root credentials (RootCredentialsManagement).
    root_credentials_managed: bool,
    /// What ListOrganizationsFeatures said of centralized root access.
    root_access: RootAccess,
    /// How long credential reports take to generate in this run, as its accounts measure it.
    report_ready: Arc<ReadyEstimate>,
    /// The optional actions each role was refused across the run (`limits::optional`).
    optional: Arc<crate::limits::optional::Learner>,
    /// The caller's own account (sts:GetCallerIdentity), asked once when first needed.
    caller_account: Arc<tokio::sync::OnceCell<Result<String, crate::retry::Failure>>>,
}

/// How long a credential report is first thought to take, before any account has measured one.
const REPORT_GUESS: Duration = Duration::from_secs(2);

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

pub use crate::config::partition_of;

impl Aws {
    /// An S3 client of these settings: `AWS_ENDPOINT_URL_S3` first, path-style on a custom endpoint,
    /// in `region` (a bucket of another region) or the settings' region.
    pub fn s3(&self, region: Option<String>) -> aws_sdk_s3::Client {
        let mut b = aws_sdk_s3::config::Builder::from(self.base());
        let s3_endpoint = std::env::var("AWS_ENDPOINT_URL_S3")
            .ok()
            .filter(|v| !v.is_empty());
        // `AWS_ENDPOINT_URL_S3` wins over an endpoint set in code (`demo` points every other service at its
        // simulator, which serves no S3), as it wins over `AWS_ENDPOINT_URL` in the SDK's own order.
        if let Some(url) = &s3_endpoint {
            b = b.endpoint_url(url);
        }
        // A custom endpoint (moto, MinIO, a VPC endpoint URL) addresses buckets by path.
        if self.base().endpoint_url().is_some() || s3_endpoint.is_some() {
            b = b.force_path_style(true);
        }
        if let Some(r) = region {
            b = b.region(aws_config::Region::new(r));
        }
        aws_sdk_s3::Client::from_conf(b.build())
    }

    /// Load the base config and check that there are credentials for the management account.
    pub async fn connect(settings: &Settings) -> Result<Aws, CredentialsSetupError> {
        let retry = RetryConfig::adaptive()
            .with_max_attempts(settings.keys.max_attempts)
            .with_initial_backoff(settings.initial_backoff())
            .with_max_backoff(settings.max_backoff());
        let http = shared_http_client();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(settings.keys.region.clone()))
            .http_client(http.clone())
            .retry_config(retry)
            // The requests and answers are small; the timeouts bound a stalled call (an endpoint that
            // accepts and never answers, a proxy that drops packets): one attempt, and the whole call
            // with its SDK retries. The SDK's stalled stream protection would add a 1-second timer to
            // every request for nothing.
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10).min(settings.call_timeout()))
                    .operation_attempt_timeout(settings.attempt_timeout())
                    .operation_timeout(settings.call_timeout())
                    .build(),
            );
        if let Some(profile) = &settings.keys.profile {
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
            if let Some(profile) = &settings.keys.profile {
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
        let stats = Arc::new(CallStats::default());
        let in_flight = InFlight::new(in_flight_cap(settings), stats.clone());
        // One STS client for every AssumeRole of the run. It keeps the base config's identity cache, so
        // the management credentials (an SSO token exchange, a profile's own AssumeRole, ...) are resolved
        // once and renewed before they expire, not once per account: aws-config's AssumeRoleProvider
        // builds a client per role with no identity cache (aws-config src/sts/assume_role.rs).
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&base)
                .http_client(PacedHttpClient::shared(
                    http.clone(),
                    None,
                    in_flight.clone(),
                ))
                .build(),
        );
        // One IAM client, and one CloudTrail client per region, for every account: each call sets the
        // account's credentials, paced HTTP client and retry partition as a config override (see
        // `session`). A client per account cost ~15 KB each, most of an account's memory. These clients
        // have no credentials of their own, so a call without its account's override fails instead of
        // reading the management account. No identity cache: the session caches its credentials itself.
        let iam = aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::config::Builder::from(&base)
                .credentials_provider(NoCredentials)
                .identity_cache(IdentityCache::no_cache())
                .interceptor(CountCalls(stats.clone()))
                .interceptor(MarkRetries)
                .build(),
        );
        let cloudtrail = settings
            .regions
            .iter()
            .map(|region| {
                let client = aws_sdk_cloudtrail::Client::from_conf(
                    aws_sdk_cloudtrail::config::Builder::from(&base)
                        .region(Region::new(region.clone()))
                        .credentials_provider(NoCredentials)
                        .identity_cache(IdentityCache::no_cache())
                        .interceptor(CountCalls(stats.clone()))
                        .interceptor(MarkRetries)
                        .build(),
                );
                (region.clone(), client)
            })
            .collect();
        Ok(Aws {
            in_flight,
            http,
            partition: partition_of(&settings.keys.region),
            sts,
            iam,
            cloudtrail,
            base,
            stats,
            root_credentials_managed: false,
            root_access: RootAccess::NotAsked,
            report_ready: Arc::new(ReadyEstimate::new(REPORT_GUESS)),
            optional: Arc::new(crate::limits::optional::Learner::new(
                crate::limits::optional::RUN_REFUSALS,
            )),
            caller_account: Arc::default(),
        })
    }

    /// The account an S3 bucket of ours must belong to (`ExpectedBucketOwner`): `s3_expected_owner`, else
    /// the caller's own.
    pub async fn expected_bucket_owner(
        &self,
        settings: &Settings,
    ) -> Result<String, crate::retry::Failure> {
        match &settings.keys.s3_expected_owner {
            Some(o) => Ok(o.clone()),
            None => self.caller_account().await,
        }
    }

    /// The caller's own account, from `sts:GetCallerIdentity` (which needs no permission), asked once per
    /// run: the bucket owner the reports expect, and whose IAM users the caller's credentials would read.
    pub async fn caller_account(&self) -> Result<String, crate::retry::Failure> {
        self.caller_account
            .get_or_init(|| async {
                let out = self
                    .sts
                    .get_caller_identity()
                    .send()
                    .await
                    .map_err(|e| crate::retry::Failure::from_sdk(&e))?;
                match out.account() {
                    Some(a) if !a.is_empty() => Ok(a.to_string()),
                    _ => Err(crate::retry::Failure::new(
                        "MalformedResponse",
                        "GetCallerIdentity answered without an Account",
                    )),
                }
            })
            .await
            .clone()
    }

    /// Whether the organization manages its member accounts' root credentials centrally, read once with
    /// the caller's own credentials (iam:ListOrganizationsFeatures, in the management account). An
    /// optional action: refused or failing, every account's root MFA is checked, and the log says why.
    pub async fn read_root_credentials_management(&mut self) {
        let client = aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::config::Builder::from(&self.base)
                .interceptor(CountCalls(self.stats.clone()))
                .build(),
        );
        match client.list_organizations_features().send().await {
            Ok(out) => {
                use aws_sdk_iam::types::FeatureType;
                let on = out.enabled_features();
                self.root_credentials_managed =
                    on.contains(&FeatureType::RootCredentialsManagement);
                let sessions = on.contains(&FeatureType::RootSessions);
                self.root_access = if self.root_credentials_managed || sessions {
                    RootAccess::On {
                        credentials_management: self.root_credentials_managed,
                        root_sessions: sessions,
                    }
                } else {
                    RootAccess::Off
                };
                tracing::debug!(
                    managed = self.root_credentials_managed,
                    "root credentials management read"
                );
            }
            Err(e) => {
                let f = crate::retry::Failure::from_sdk(&e);
                self.root_access = RootAccess::Unknown(f.to_string());
                tracing::info!(
                    "iam:ListOrganizationsFeatures failed ({f}); root MFA is checked in every account, as if root credentials were not managed centrally"
                );
            }
        }
    }

    /// The caller's own credentials (the management identity), for auditing the management account
    /// itself.
    pub fn caller_credentials(
        &self,
    ) -> Option<aws_credential_types::provider::SharedCredentialsProvider> {
        self.base.credentials_provider()
    }

    /// The base SDK config (region, credentials, the shared HTTP client, retries, timeouts).
    pub fn base(&self) -> &SdkConfig {
        &self.base
    }

    /// The endpoint every service is sent to (`AWS_ENDPOINT_URL`, the profile's `endpoint_url`, or the
    /// run's endpoint override), if one is set.
    pub fn endpoint_url(&self) -> Option<&str> {
        self.base.endpoint_url()
    }

    pub fn root_credentials_managed(&self) -> bool {
        self.root_credentials_managed
    }

    /// What the run knows of the organization's centralized root access.
    pub fn root_access(&self) -> RootAccess {
        self.root_access.clone()
    }

    pub fn stats(&self) -> &Arc<CallStats> {
        &self.stats
    }

    /// The run's estimate of how long credential reports take.
    pub fn report_ready(&self) -> &Arc<ReadyEstimate> {
        &self.report_ready
    }

    pub fn partition(&self) -> &'static str {
        self.partition
    }

    /// The optional actions refused across the run, by role (`limits::optional`).
    pub fn optional(&self) -> &Arc<crate::limits::optional::Learner> {
        &self.optional
    }

    /// The Organizations client of the management account.
    pub fn organizations(&self) -> aws_sdk_organizations::Client {
        let conf = aws_sdk_organizations::config::Builder::from(&self.base)
            .interceptor(CountCalls(self.stats.clone()))
            .build();
        aws_sdk_organizations::Client::from_conf(conf)
    }

    /// The one STS client that assumes every account's role.
    pub fn sts(&self) -> &aws_sdk_sts::Client {
        &self.sts
    }

    /// The run's shared HTTP client (one connection pool).
    pub fn http(&self) -> &SharedHttpClient {
        &self.http
    }

    pub fn in_flight(&self) -> &InFlight {
        &self.in_flight
    }

    /// The IAM client every account calls through, with its own credentials (see `session`).
    pub fn iam(&self) -> &aws_sdk_iam::Client {
        &self.iam
    }

    /// The CloudTrail client of each configured region, shared the same way.
    pub fn cloudtrail(&self) -> &[(String, aws_sdk_cloudtrail::Client)] {
        &self.cloudtrail
    }
}

/// The credentials of the shared per-account clients: none. Every call supplies its account's.
#[derive(Debug)]
struct NoCredentials;

impl ProvideCredentials for NoCredentials {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::ready(Err(
            aws_credential_types::provider::error::CredentialsError::not_loaded(
                "a member-account call was made without its account's credentials",
            ),
        ))
    }
}

/// The cap on requests in flight: the configured one, or one that follows the latency (see `limits`),
/// sized for the most the buckets can grant at once.
fn in_flight_cap(settings: &Settings) -> Cap {
    match settings.keys.max_in_flight {
        Some(n) => Cap::Fixed(n),
        None => Cap::Adaptive {
            rate: settings.keys.concurrency as f64
                * (f64::from(settings.keys.iam_rate)
                    + f64::from(settings.keys.cloudtrail_rate) * settings.regions.len() as f64),
            ceiling: MAX_IN_FLIGHT_CEILING,
        },
    }
}

/// The most requests in flight the adaptive cap allows, whatever the latency and the concurrency: the
/// memory bound by design. Each request on the wire holds an HTTP/1.1 connection (about 45 KB of hyper's
/// buffers and request channel, more with TLS) and its built SDK operation (about 20 KB): 400 of them are
/// about 26 MB (heap profiles, docs/performance.md). Throughput is then at most 400 / latency: 3,600 calls
/// per second at 110 ms, 1,450 at 275 ms, so that 10,000 accounts of 5 users (155,000 calls) take under
/// two minutes even 250 ms from the region; `max_in_flight` raises it for more.
const MAX_IN_FLIGHT_CEILING: usize = 400;

/// Idle connections kept per host (IAM, STS, each region's CloudTrail): beyond these, a connection freed
/// is closed rather than kept for the rest of the run.
const MAX_IDLE_CONNECTIONS: usize = 16;

/// One HTTPS client (one connection pool) for every SDK client of the run: without it each of the
/// thousands of per-account clients would build its own pool. HTTPS_PROXY/NO_PROXY are honoured.
fn shared_http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        // A connection goes back to the pool a moment after its answer is read, and a request that
        // starts in that moment opens another: on a fast network, hundreds over a run. Idle ones beyond
        // this are closed instead of kept for the rest of the run.
        .pool_max_idle_per_host(MAX_IDLE_CONNECTIONS)
        .build_with_connector_fn(|settings, components| {
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
}
