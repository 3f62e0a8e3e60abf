//! Counters of every HTTP attempt the engine makes, kept by an SDK interceptor on every client, read by the
//! summary and the progress display. Nothing here sits in the data path; it imports nothing of ours.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Counters of every HTTP attempt the engine made.
#[derive(Debug, Default)]
pub struct CallStats {
    pub calls: AtomicU64,
    pub throttled: AtomicU64,
    pub server_errors: AtomicU64,
    pub assume_role: AtomicU64,
    /// Attempts that had to wait because `max_in_flight` requests were already in flight.
    pub in_flight_waits: AtomicU64,
}

impl CallStats {
    pub fn snapshot(&self) -> CallCounts {
        CallCounts {
            calls: self.calls.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            server_errors: self.server_errors.load(Ordering::Relaxed),
            assume_role: self.assume_role.load(Ordering::Relaxed),
            in_flight_waits: self.in_flight_waits.load(Ordering::Relaxed),
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
    /// Attempts that waited for a slot under `max_in_flight`.
    pub in_flight_waits: u64,
}

/// Counts attempts and their throttling/5xx answers. Reads only the status and the error code in the
/// (already buffered) error body; never headers, so no signature or token can leak from here.
#[derive(Debug, Clone)]
pub struct CountCalls(pub Arc<CallStats>);

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

#[cfg(test)]
mod tests {
    use super::*;

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
