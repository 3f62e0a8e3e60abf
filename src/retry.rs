//! Failures and whether to retry them. Every AWS error is turned into a `Failure` (the AWS error code and
//! message, as the accounts report shows them) and classified by `classify`, kept apart from any retry loop
//! so it can be tested alone. The SDK's adaptive retries handle single calls; `classify` drives our own
//! retries around whole steps (AssumeRole, a ListAccounts page) and the choice to stop a region early.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use backon::{ExponentialBuilder, Retryable};

/// An AWS call that failed for good (after the SDK's own retries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The AWS error code (`AccessDenied`, `Throttling`, ...) or, for failures with no response, one of
    /// ours: `TimeoutError`, `DispatchFailure`, `ResponseError`, `ConstructionFailure`, `CredentialsError`.
    pub code: String,
    pub message: String,
    /// HTTP status, when a response arrived.
    pub status: Option<u16>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{}: {}", self.code, self.message)
        }
    }
}

/// What to do about a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// The caller went over a quota: retry after a backoff.
    Throttled,
    /// A server or network fault: retry after a backoff.
    Transient,
    /// Denied, missing, malformed: retrying gives the same answer.
    Permanent,
}

/// Error codes AWS uses for "slow down" (IAM/STS `Throttling`, CloudTrail `ThrottlingException`,
/// Organizations `TooManyRequestsException`, plus the generic ones the SDK also treats as throttling).
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
    "RequestLimitExceeded",
    "SlowDown",
    "PriorRequestNotComplete",
    "ProvisionedThroughputExceededException",
    "BandwidthLimitExceeded",
    "EC2ThrottledException",
];

const TRANSIENT_CODES: &[&str] = &[
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "ServiceFailure",
    "ServiceException",
    "TimeoutError",
    "DispatchFailure",
    "IDPCommunicationError",
];
// Not `ResponseError` (an answer that could not be read or parsed): the SDK has already retried it
// `max_attempts` times, and an answer still unparseable after that is not going to change.

/// Is this failure worth another try?
pub fn classify(f: &Failure) -> Retry {
    if THROTTLING_CODES.contains(&f.code.as_str()) || f.status == Some(429) {
        return Retry::Throttled;
    }
    if TRANSIENT_CODES.contains(&f.code.as_str()) || f.status.is_some_and(|s| s >= 500) {
        return Retry::Transient;
    }
    Retry::Permanent
}

/// Our retries around a whole step (an AssumeRole, a ListAccounts page, a call the SDK gave up on): up to
/// `times` more tries after jittered exponential backoff from `min` to `max`, for throttles and transient
/// faults only.
pub async fn retry_step<T, F, Fut>(
    min: Duration,
    max: Duration,
    times: usize,
    step: F,
) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    step.retry(
        ExponentialBuilder::default()
            .with_min_delay(min)
            .with_max_delay(max.max(min))
            .with_max_times(times)
            .with_jitter(),
    )
    .when(|f: &Failure| classify(f) != Retry::Permanent)
    .notify(|f: &Failure, wait: Duration| tracing::debug!(error = %f, ?wait, "retrying"))
    .await
}

/// `AccessDenied`-like codes: the caller lacks a permission, so further calls of the same action are
/// pointless.
pub fn is_denied(f: &Failure) -> bool {
    matches!(
        f.code.as_str(),
        "AccessDenied"
            | "AccessDeniedException"
            | "UnauthorizedOperation"
            | "UnauthorizedException"
            | "OperationNotPermittedException"
            | "AWSOrganizationsNotInUseException"
    )
}

/// What to do about a failure, for the accounts report: the fixes of the README's troubleshooting table.
/// `None` when the code and message say nothing a user can act on.
pub fn fix(action: &str, f: &Failure) -> Option<&'static str> {
    let m = f.message.as_str();
    if m.contains("service control policy") {
        return Some("fix: an SCP on the account or its OU denies this action; exempt the audit role in the SCP");
    }
    if m.contains("permissions boundary") {
        return Some(
            "fix: the audit role's permissions boundary denies this action; allow it there",
        );
    }
    if action.starts_with("sts:AssumeRole") && is_denied(f) {
        return Some("fix: deploy the audit role in this account (StackSet), or make its trust policy trust the management account (and the ExternalId, if set)");
    }
    if f.code == "InvalidClientTokenId" || f.code == "UnrecognizedClientException" {
        return Some("fix: the credentials are not valid in this account's partition or region; run from the partition's own management credentials (--region)");
    }
    if f.code == "ExpiredToken"
        || f.code == "ExpiredTokenException"
        || m.contains("SSO session")
        || m.contains("token has expired")
    {
        return Some("fix: the caller's session expired; for an SSO profile run `aws sso login --profile P` and run again");
    }
    if is_denied(f) && m.contains("not authorized to perform") {
        return Some(
            "fix: add the action to the audit role's policy (README: Setting up the audit role)",
        );
    }
    match f.code.as_str() {
        "Timeout" => Some("fix: raise --account-budget-secs, or read the users with the credential report (--strategy auto)"),
        "PageLimit" => Some("fix: if the listing really is that long, raise max_pages in the config file; otherwise the service kept paginating: report it"),
        _ => None,
    }
}

/// The session expired under us: refresh the credentials and call again.
pub fn is_expired_token(f: &Failure) -> bool {
    matches!(
        f.code.as_str(),
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired"
    )
}

/// Collapse whitespace and cap the length, so a message fits one CSV cell and one log line.
fn tidy(message: &str) -> String {
    let mut out = message.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.len() > 600 {
        let mut cut = 600;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

impl Failure {
    pub fn new(code: impl Into<String>, message: impl AsRef<str>) -> Failure {
        Failure {
            code: code.into(),
            message: tidy(message.as_ref()),
            status: None,
        }
    }

    /// From any SDK error. A service error gives its AWS code and message; a credentials failure inside
    /// the call (the role could not be assumed again) is unwrapped to the STS failure that caused it.
    pub fn from_sdk<E>(err: &SdkError<E, HttpResponse>) -> Failure
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        match err {
            SdkError::ServiceError(ctx) => {
                let e = ctx.err();
                let status = ctx.raw().status().as_u16();
                let code = e.code().map(str::to_string).unwrap_or_else(|| {
                    if status >= 500 {
                        format!("HTTP{status}")
                    } else {
                        "UnknownError".to_string()
                    }
                });
                let message = match e.message() {
                    Some(m) if !m.trim().is_empty() => tidy(m),
                    // A 5xx without an AWS error body (a proxy's page, a server that does not implement
                    // the action): say so rather than leave the message blank.
                    _ if status >= 500 => format!(
                        "the server answered HTTP {status} without an AWS error (a proxy, or a server that does not implement the action)"
                    ),
                    _ => String::new(),
                };
                Failure {
                    code,
                    message,
                    status: Some(status),
                }
            }
            other => {
                if let Some(f) = credentials_failure(other) {
                    return f;
                }
                let code = match other {
                    SdkError::TimeoutError(_) => "TimeoutError",
                    SdkError::DispatchFailure(_) => "DispatchFailure",
                    SdkError::ResponseError(_) => "ResponseError",
                    SdkError::ConstructionFailure(_) => "ConstructionFailure",
                    _ => "UnknownError",
                };
                let status = match other {
                    SdkError::ResponseError(r) => Some(r.raw().status().as_u16()),
                    _ => None,
                };
                Failure {
                    code: code.into(),
                    message: tidy(&DisplayErrorContext(other).to_string()),
                    status,
                }
            }
        }
    }
}

/// A `Failure` as a std error: how the session's credentials provider hands an AssumeRole failure to the
/// SDK, inside a `CredentialsError`, and how `Failure::from_sdk` recovers it from a failed call.
#[derive(Debug)]
pub struct FailureError(pub Failure);

impl fmt::Display for FailureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
impl StdError for FailureError {}

/// Walk an error's source chain for the `Failure` behind a credentials failure.
fn credentials_failure(err: &(dyn StdError + 'static)) -> Option<Failure> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    let mut saw_credentials = false;
    while let Some(e) = cur {
        if e.is::<aws_credential_types::provider::error::CredentialsError>() {
            saw_credentials = true;
        }
        if let Some(ours) = e.downcast_ref::<FailureError>() {
            return Some(ours.0.clone());
        }
        cur = e.source();
    }
    saw_credentials.then(|| Failure::new("CredentialsError", DisplayErrorContext(err).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(code: &str, status: Option<u16>) -> Failure {
        Failure {
            code: code.into(),
            message: String::new(),
            status,
        }
    }

    #[test]
    fn throttling_codes_of_each_service_are_throttles() {
        // IAM and STS: Throttling (HTTP 400); CloudTrail: ThrottlingException; Organizations:
        // TooManyRequestsException (design §4).
        for code in [
            "Throttling",
            "ThrottlingException",
            "TooManyRequestsException",
        ] {
            assert_eq!(classify(&f(code, Some(400))), Retry::Throttled, "{code}");
        }
        assert_eq!(classify(&f("Whatever", Some(429))), Retry::Throttled);
    }

    #[test]
    fn server_and_network_faults_are_transient() {
        assert_eq!(classify(&f("InternalFailure", Some(500))), Retry::Transient);
        assert_eq!(classify(&f("HTTP503", Some(503))), Retry::Transient);
        assert_eq!(
            classify(&f("ServiceUnavailable", Some(503))),
            Retry::Transient
        );
        assert_eq!(classify(&f("DispatchFailure", None)), Retry::Transient);
        assert_eq!(classify(&f("TimeoutError", None)), Retry::Transient);
        assert_eq!(classify(&f("ResponseError", Some(200))), Retry::Permanent);
    }

    #[test]
    fn denials_and_missing_things_are_permanent() {
        for code in [
            "AccessDenied",
            "AccessDeniedException",
            "NoSuchEntity",
            "ValidationError",
        ] {
            assert_eq!(classify(&f(code, Some(400))), Retry::Permanent, "{code}");
        }
        assert!(is_denied(&f("AccessDenied", Some(403))));
        assert!(!is_denied(&f("Throttling", Some(400))));
    }

    #[test]
    fn expired_tokens_are_recognised() {
        assert!(is_expired_token(&f("ExpiredToken", Some(400))));
        assert!(is_expired_token(&f("ExpiredTokenException", Some(400))));
        assert!(!is_expired_token(&f("InvalidClientTokenId", Some(403))));
    }

    #[test]
    fn display_is_code_colon_message_on_one_line() {
        let fl = Failure::new(
            "AccessDenied",
            "User: arn:aws:iam::1:user/a\n  is not authorized",
        );
        assert_eq!(
            fl.to_string(),
            "AccessDenied: User: arn:aws:iam::1:user/a is not authorized"
        );
        assert_eq!(Failure::new("Oops", "").to_string(), "Oops");
    }
}
