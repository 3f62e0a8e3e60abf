//! What leaves the machine once the run's own files are safe: the findings imported into each audited
//! account's Security Hub (`--security-hub`, the only write to an audited account) and the alert
//! (`--notify`). Both read what the run wrote (the findings file, the summary), never the audit's
//! insides, and neither can fail the run: what did not go out is a warning of the summary and, for
//! Security Hub, a cell of the accounts report.
//!
//! `http` sends and retries; `sigv4` signs the two AWS calls made without a service crate.

pub mod asff;
pub mod http;
mod hub_cells;
pub mod hub_state;
pub mod notify;
pub mod securityhub;
pub mod sigv4;

use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;

use crate::aws::Aws;

/// Where the AWS calls of this room go, and as whom.
#[derive(Clone)]
pub struct AwsTarget {
    aws: Aws,
}

impl AwsTarget {
    pub fn new(aws: &Aws) -> AwsTarget {
        AwsTarget { aws: aws.clone() }
    }

    /// The endpoint of `service` (its SDK id, as in `AWS_ENDPOINT_URL_<ID>`) in `region`: that
    /// variable, else `AWS_ENDPOINT_URL` or the run's endpoint override, else AWS's own
    /// (`https://PREFIX.REGION.amazonaws.com`, `.com.cn` in China).
    pub fn endpoint(&self, service_id: &str, prefix: &str, region: &str) -> String {
        let var = format!(
            "AWS_ENDPOINT_URL_{}",
            service_id.to_ascii_uppercase().replace([' ', '-'], "_")
        );
        let configured = std::env::var(&var)
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| self.aws.endpoint_url().map(str::to_string));
        match configured {
            Some(url) => {
                let url = url.trim_end_matches('/');
                format!("{url}/")
            }
            None if region.starts_with("cn-") => {
                format!("https://{prefix}.{region}.amazonaws.com.cn/")
            }
            None => format!("https://{prefix}.{region}.amazonaws.com/"),
        }
    }

    /// The caller's own (management) credentials.
    pub async fn caller(&self) -> Result<Credentials, String> {
        let Some(provider) = self.aws.caller_credentials() else {
            return Err("no credentials provider for the caller".into());
        };
        provider
            .provide_credentials()
            .await
            .map_err(|e| format!("the caller's credentials: {}", crate::aws::error_chain(&e)))
    }

    pub fn aws(&self) -> &Aws {
        &self.aws
    }
}

/// The error code and message of an AWS answer, from its JSON (`__type`, `message`), its
/// `x-amzn-errortype`-style body or its XML (`<Code>`, `<Message>`), on one line and short.
pub fn aws_error(answer: &http::Answer) -> String {
    let text = answer.text();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
        let code = v
            .get("__type")
            .or_else(|| v.get("code"))
            .or_else(|| v.get("Code"))
            .and_then(|c| c.as_str())
            .map(|c| c.rsplit('#').next().unwrap_or(c).to_string());
        let message = v
            .get("message")
            .or_else(|| v.get("Message"))
            .and_then(|m| m.as_str());
        if let Some(code) = code {
            return match message {
                Some(m) => format!("{code}: {}", one_line(m)),
                None => code,
            };
        }
    }
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{name}>"))? + start;
        Some(text[start..end].to_string())
    };
    match (tag("Code"), tag("Message")) {
        (Some(c), Some(m)) => format!("{c}: {}", one_line(&m)),
        (Some(c), None) => c,
        _ => one_line(&text),
    }
}

fn one_line(s: &str) -> String {
    let s: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    s.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: &str) -> http::Answer {
        http::Answer {
            status: 400,
            retry_after: None,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn aws_errors_read_from_json_and_xml() {
        assert_eq!(
            aws_error(&answer(
                r#"{"__type":"com.amazon#InvalidAccessException","Message":"Account 1 is not subscribed to AWS Security Hub"}"#
            )),
            "InvalidAccessException: Account 1 is not subscribed to AWS Security Hub"
        );
        assert_eq!(
            aws_error(&answer("<ErrorResponse><Error><Type>Sender</Type><Code>NotFound</Code><Message>Topic does not exist</Message></Error></ErrorResponse>")),
            "NotFound: Topic does not exist"
        );
    }
}
