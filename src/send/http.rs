//! One HTTP(S) request at a time for what leaves the machine after the audit (webhooks, SNS, Security
//! Hub): the SDK's own TLS stack (rustls with aws-lc, the system's roots, `HTTPS_PROXY` honoured), each
//! attempt bounded in time, and retries on 429, 5xx and connection failures that honour `Retry-After`,
//! bounded in count and in total time.
//!
//! Errors never carry the URL: a webhook URL is a secret (its path is the credential).

use std::time::{Duration, Instant};

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::{tls, Connector, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::HttpConnector;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;

/// A request to send (and, on a retry, to send again).
#[derive(Clone)]
pub struct Request {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// Shared, not copied, by each attempt.
    pub body: bytes::Bytes,
}

/// An answer: its status, `Retry-After` and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<Duration>,
    /// Every header, its name in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// A header's value, by its name in lower case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How many times, and for how long, a request is tried.
#[derive(Debug, Clone, Copy)]
pub struct Patience {
    pub attempts: u32,
    /// The whole request with its retries: no attempt starts after it.
    pub total: Duration,
    /// One attempt, connection included.
    pub attempt: Duration,
    /// The first backoff (doubled each retry, with jitter) when the server gives no `Retry-After`.
    pub backoff: Duration,
}

impl Default for Patience {
    fn default() -> Self {
        Patience {
            attempts: 5,
            total: Duration::from_secs(60),
            attempt: Duration::from_secs(15),
            backoff: Duration::from_millis(500),
        }
    }
}

/// The longest `Retry-After` honoured: a server asking for more is not waited for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// The client. Cheap to share.
pub struct Http {
    connector: Connector,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

/// The most of an answer's body kept: a receiver that streams without end costs this much, no more.
const MAX_BODY: usize = 1024 * 1024;

impl Http {
    /// Through the proxy the environment names (`HTTPS_PROXY`, `NO_PROXY`), as the SDK goes.
    pub fn new() -> Http {
        Http::with_proxy(ProxyConfig::from_env())
    }

    /// Never through a proxy, whatever the environment says: for an endpoint of the machine itself (AWS
    /// Lambda's Runtime API), which a proxy would at best not reach and at worst read.
    pub fn direct() -> Http {
        Http::with_proxy(ProxyConfig::disabled())
    }

    fn with_proxy(proxy: ProxyConfig) -> Http {
        let mut builder = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ));
        builder.set_proxy_config(Some(proxy));
        Http {
            connector: builder.build(),
        }
    }

    /// One attempt. `Err` is a failure to get any answer (connection, TLS, timeout), without the URL.
    pub async fn once(&self, req: &Request, timeout: Duration) -> Result<Answer, String> {
        let mut builder = http::Request::builder().method(req.method).uri(&req.url);
        for (k, v) in &req.headers {
            builder = builder.header(k, v);
        }
        let request = builder.body(SdkBody::from(req.body.clone())).map_err(|e| {
            format!(
                "cannot build the request: {}",
                scrub(&e.to_string(), &req.url)
            )
        })?;
        let request = aws_smithy_runtime_api::http::Request::try_from(request).map_err(|e| {
            format!(
                "cannot build the request: {}",
                scrub(&e.to_string(), &req.url)
            )
        })?;
        let call = async {
            let response = self
                .connector
                .call(request)
                .await
                .map_err(|e| scrub(&crate::aws::error_chain(&e), &req.url))?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(parse_retry_after);
            let headers = response
                .headers()
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
                .collect();
            // At most MAX_BODY bytes are read; the rest of a longer answer is left unread.
            let mut stream = ByteStream::new(response.into_body());
            let mut body = Vec::new();
            while body.len() < MAX_BODY {
                let chunk = stream.try_next().await.map_err(|e| {
                    format!(
                        "the answer was cut short: {}",
                        scrub(&e.to_string(), &req.url)
                    )
                })?;
                let Some(chunk) = chunk else { break };
                let room = MAX_BODY - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(Answer {
                status,
                retry_after,
                headers,
                body,
            })
        };
        match tokio::time::timeout(timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {} s", timeout.as_secs())),
        }
    }

    /// The request with its retries (backon, as the rest of the tool retries): on a connection failure,
    /// 429 or 5xx it is sent again after `Retry-After` (at most 30 s) or an exponential backoff with
    /// jitter, while attempts and time remain. The last answer comes back whatever its status; `Err` when
    /// no attempt got one.
    pub async fn send(&self, req: &Request, patience: Patience) -> Result<Answer, String> {
        use backon::{ExponentialBuilder, Retryable};
        /// An attempt to try again: an answer asking for it, or none at all.
        enum Again {
            Answer(Answer),
            NoAnswer(String),
        }
        let started = Instant::now();
        let attempt = || async {
            let left = patience.total.saturating_sub(started.elapsed());
            match self.once(req, patience.attempt.min(left)).await {
                Ok(a) if a.status == 429 || a.status >= 500 => Err(Again::Answer(a)),
                Ok(a) => Ok(a),
                Err(e) => Err(Again::NoAnswer(e)),
            }
        };
        let result = attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(patience.backoff)
                    .with_max_delay(MAX_RETRY_AFTER)
                    .with_max_times(patience.attempts.saturating_sub(1) as usize)
                    .with_jitter(),
            )
            // The server's `Retry-After` over our backoff; no retry that would end past the total.
            .adjust(|e, backoff| {
                // `None`: the attempts are spent.
                let backoff = backoff?;
                let wait = match e {
                    Again::Answer(a) => a.retry_after.map_or(backoff, |r| r.min(MAX_RETRY_AFTER)),
                    Again::NoAnswer(_) => backoff,
                };
                (started.elapsed() + wait < patience.total).then_some(wait)
            })
            .notify(|e, wait| {
                let what = match e {
                    Again::Answer(a) => a.status.to_string(),
                    Again::NoAnswer(e) => e.clone(),
                };
                tracing::debug!(
                    "{} answered {what}; retry in {} ms",
                    host_of(&req.url),
                    wait.as_millis()
                );
            })
            .await;
        match result {
            Ok(a) | Err(Again::Answer(a)) => Ok(a),
            Err(Again::NoAnswer(e)) => Err(e),
        }
    }
}

/// `Retry-After` as seconds or as an HTTP date.
fn parse_retry_after(v: &str) -> Option<Duration> {
    let s = v.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(s).ok()?;
    let secs = (at.timestamp() - chrono::Utc::now().timestamp()).max(0);
    Some(Duration::from_secs(secs as u64))
}

/// The host of a URL, for messages: `hooks.slack.com`. Never the path, which may be the secret.
pub fn host_of(url: &str) -> String {
    crate::config::url_host(url).to_string()
}

/// `text` without the URL or its path (an error message of a library may quote them).
pub fn scrub(text: &str, url: &str) -> String {
    let mut out = text.replace(url, "<the URL>");
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    if let Some((_, path)) = rest.split_once('/') {
        if path.len() > 3 {
            out = out.replace(path, "<the URL's path>");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_scrubbing_keep_the_secret_out() {
        let url = "https://hooks.slack.com/services/T000/B000/XXXXSECRET";
        assert_eq!(host_of(url), "hooks.slack.com");
        assert_eq!(host_of("http://u:p@127.0.0.1:8080/x"), "127.0.0.1:8080");
        let said = format!("error sending request for url ({url}): refused");
        assert_eq!(
            scrub(&said, url),
            "error sending request for url (<the URL>): refused"
        );
        assert!(!scrub("GET /services/T000/B000/XXXXSECRET failed", url).contains("SECRET"));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
    }
}
