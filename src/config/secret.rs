//! A setting that is a secret: a webhook URL, whose path is its credential. It is read from the command
//! line, the config file, `IAM_AUDIT_NOTIFY` or a file, and shown nowhere: `Debug` and the documents say
//! `<secret>`, and whoever sends to it names only its host.

use super::key::{Count, KeyValue, Kind};

#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that sends to it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

impl KeyValue for Vec<Secret> {
    const KIND: Kind = Kind::List;
    type Lit = &'static [&'static str];
    fn from_lit(lit: &'static [&'static str]) -> Vec<Secret> {
        lit.iter().map(|s| Secret::new(*s)).collect()
    }
    fn show(&self) -> String {
        vec!["<secret>"; self.len()].join(", ")
    }
    fn toml(&self) -> String {
        format!("[{}]", vec!["\"<secret>\""; self.len()].join(", "))
    }
}

impl Count for Vec<Secret> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_shows() {
        let s = vec![Secret::new("https://hooks.slack.com/services/T/B/SECRET")];
        assert_eq!(format!("{s:?}"), "[<secret>]");
        assert_eq!(s.show(), "<secret>");
        assert_eq!(s[0].expose(), "https://hooks.slack.com/services/T/B/SECRET");
    }
}

/// Where an alert goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// An HTTPS webhook (plain HTTP only on the loopback interface).
    Webhook(Secret),
    /// An SNS topic, published to with the caller's (management) credentials.
    Sns { arn: String, region: String },
}

impl Destination {
    /// How messages name it: the webhook's host, never its path; the topic's ARN.
    pub fn label(&self) -> String {
        match self {
            Destination::Webhook(url) => format!("webhook {}", url_host(url.expose())),
            Destination::Sns { arn, .. } => format!("SNS topic {arn}"),
        }
    }
}

/// The host (and port) of a URL, for messages: `hooks.slack.com`. Never the path or the user info,
/// which may be the secret.
pub fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    host.rsplit('@').next().unwrap_or("")
}

/// The variable that may hold alert destinations (whitespace- or comma-separated), so a URL need not
/// appear on a command line (where `ps` shows it) or in a file.
pub const NOTIFY_ENV: &str = "IAM_AUDIT_NOTIFY";

/// Every alert destination: `notify`, then `IAM_AUDIT_NOTIFY`, then the lines of `notify_file` (blank
/// lines and `#` comments skipped), each checked. Errors name a destination by its position and host only.
pub(crate) fn destinations(
    notify: &Option<Vec<Secret>>,
    file: Option<&std::path::Path>,
) -> Result<Vec<Destination>, super::ConfigError> {
    let mut raw: Vec<(String, String)> = Vec::new();
    for (i, s) in notify.iter().flatten().enumerate() {
        raw.push((format!("notify entry {}", i + 1), s.expose().to_string()));
    }
    if let Ok(v) = std::env::var(NOTIFY_ENV) {
        for (i, s) in v
            .split([',', ' ', '\n', '\t'])
            .filter(|s| !s.is_empty())
            .enumerate()
        {
            raw.push((format!("{NOTIFY_ENV} entry {}", i + 1), s.to_string()));
        }
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            super::invalid(
                "notify_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            raw.push((
                format!("{} line {}", path.display(), n + 1),
                line.to_string(),
            ));
        }
    }
    raw.into_iter()
        .map(|(place, value)| {
            parse(&value).map_err(|why| super::invalid("notify", format!("{place}: {why}")))
        })
        .collect()
}

fn parse(value: &str) -> Result<Destination, String> {
    if let Some(arn) = value.strip_prefix("sns:") {
        // arn:PARTITION:sns:REGION:ACCOUNT:TOPIC
        let parts: Vec<&str> = arn.split(':').collect();
        let ok = parts.len() == 6
            && parts[0] == "arn"
            && parts[1].starts_with("aws")
            && parts[2] == "sns"
            && !parts[3].is_empty()
            && parts[4].len() == 12
            && parts[4].bytes().all(|b| b.is_ascii_digit())
            && !parts[5].is_empty();
        if !ok {
            return Err(format!(
                "'{arn}' is not an SNS topic ARN; write sns:arn:aws:sns:REGION:ACCOUNT_ID:TOPIC"
            ));
        }
        return Ok(Destination::Sns {
            arn: arn.to_string(),
            region: parts[3].to_string(),
        });
    }
    let Some((scheme, rest)) = value.split_once("://") else {
        return Err(
            "not a URL (https://…) or an SNS topic (sns:arn:aws:sns:…); the value is not shown, it may be a secret"
                .into(),
        );
    };
    let host = url_host(rest);
    let name = host
        .strip_prefix('[')
        .and_then(|h| h.split_once(']').map(|(h, _)| h))
        .unwrap_or_else(|| host.split(':').next().unwrap_or(""));
    if name.is_empty() {
        return Err("the URL has no host".into());
    }
    // Loopback by the address itself: `127.attacker.example` is a host name, not 127.0.0.0/8.
    let loopback = name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match scheme {
        "https" => Ok(Destination::Webhook(Secret::new(value))),
        "http" if loopback => Ok(Destination::Webhook(Secret::new(value))),
        "http" => Err(format!(
            "plain http to {name} would send the findings and the URL's secret unencrypted; use https (http is accepted on the loopback interface only)"
        )),
        other => Err(format!("scheme '{other}' is not supported; use https")),
    }
}

#[cfg(test)]
mod destination_tests {
    use super::*;

    #[test]
    fn destinations_are_checked_without_showing_them() {
        let ok = parse("https://hooks.slack.com/services/T/B/SECRET").unwrap();
        assert_eq!(ok.label(), "webhook hooks.slack.com");
        assert_eq!(
            parse("http://127.0.0.1:9999/hook").unwrap().label(),
            "webhook 127.0.0.1:9999"
        );
        let e = parse("http://example.com/services/SECRET").unwrap_err();
        assert!(e.contains("use https") && !e.contains("SECRET"), "{e}");
        // Loopback is an address, not a name that starts like one.
        for not_loopback in ["http://127.attacker.example/x", "http://127.0.0.1.nip.io/x"] {
            let e = parse(not_loopback).unwrap_err();
            assert!(e.contains("use https"), "{not_loopback}: {e}");
        }
        for loopback in [
            "http://127.0.0.2:8/x",
            "http://[::1]:8/x",
            "http://localhost:8/x",
        ] {
            assert!(parse(loopback).is_ok(), "{loopback}");
        }
        let e = parse("hooks.slack.com/services/SECRET").unwrap_err();
        assert!(!e.contains("SECRET"), "{e}");
        assert_eq!(
            parse("sns:arn:aws:sns:eu-west-1:123456789012:audit").unwrap(),
            Destination::Sns {
                arn: "arn:aws:sns:eu-west-1:123456789012:audit".into(),
                region: "eu-west-1".into()
            }
        );
        assert!(parse("sns:arn:aws:sqs:eu-west-1:123456789012:q")
            .unwrap_err()
            .contains("not an SNS topic ARN"));
    }
}
