//! The alert sent when a run ends (`--notify`): one message saying how much of the organization was
//! seen, the new findings at or above `notify_min_severity` since the run compared with (every finding
//! on a first run), and the counts, posted to each destination: a Slack incoming webhook (`{"text"}`),
//! a Teams workflow (an Adaptive Card), any JSON webhook (the facts as fields), or an SNS topic (a
//! subject and plain text, for e-mail subscribers). Sent after the reports are final; a failure is a
//! warning of the summary, never a failed run.

use serde_json::{json, Value};

use crate::config::{Destination, Settings};
use crate::record::Severity;
use crate::summary::Summary;

use super::http::{Http, Patience, Request};

/// The new findings an alert lists; the rest are counted ("and 37 more").
pub const LISTED: usize = 20;

/// What one alert says, before it is shaped for a destination.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The first line, and the SNS subject.
    pub headline: String,
    /// The lines under it.
    pub lines: Vec<String>,
    /// The same facts as fields, for JSON webhooks.
    pub facts: Value,
    /// Nothing at or above the threshold is new (`notify_only_new` then sends nothing).
    pub nothing_new: bool,
}

impl Alert {
    pub fn text(&self) -> String {
        let mut t = self.headline.clone();
        for l in &self.lines {
            t.push('\n');
            t.push_str(l);
        }
        t
    }
}

fn severity_of(name: &str) -> Severity {
    Severity::from_name(name).unwrap_or(Severity::Low)
}

/// The alert of a finished run.
pub fn compose(summary: &Summary, stamp: &str, min: Severity) -> Alert {
    let d = &summary.changes;
    let headline = format!(
        "iam-audit {stamp}: {} accounts, {} audited, {} partial, {} skipped, {} not active",
        summary.accounts, summary.audited, summary.partial, summary.skipped, summary.not_active
    );
    let at_or_above: u64 = d
        .new_by_severity
        .iter()
        .filter(|(s, _)| **s >= min)
        .map(|(_, n)| *n)
        .sum();
    let listed: Vec<_> = d
        .sorted_new()
        .into_iter()
        .filter(|c| severity_of(&c.severity) >= min)
        .take(LISTED)
        .collect();
    let since = match (&d.against, &d.not_compared) {
        (Some(run), _) => format!("since {run}"),
        (None, Some(n)) => format!("({})", n.line()),
        (None, None) => "(no earlier run compared: every finding is new)".to_string(),
    };
    let mut lines = Vec::new();
    if at_or_above == 0 {
        lines.push(format!(
            "No new findings at or above {} {since}.",
            min.name()
        ));
    } else {
        let by: Vec<String> = Severity::ALL
            .iter()
            .rev()
            .filter(|s| **s >= min)
            .filter_map(|s| {
                let n = d.new_by_severity.get(s).copied().unwrap_or(0);
                (n > 0).then(|| format!("{n} {}", s.name()))
            })
            .collect();
        lines.push(format!(
            "{at_or_above} new findings at or above {} {since} ({}):",
            min.name(),
            by.join(", ")
        ));
        for c in &listed {
            lines.push(format!(
                "- [{}] {}: {} ({}), {}",
                c.severity, c.detail, c.account_name, c.account_id, c.resource
            ));
        }
        let more = at_or_above.saturating_sub(listed.len() as u64);
        if more > 0 {
            lines.push(format!("and {more} more (see the changes report)"));
        }
    }
    if d.against.is_some() {
        lines.push(format!(
            "In all: {} new findings, {} resolved.",
            d.new_findings, d.resolved_findings
        ));
    }
    if let Some(line) = d.exceptions.line() {
        lines.push(line);
    }
    lines.push(format!("Summary page: {}", summary.summary_file.display()));
    let findings: Vec<Value> = listed
        .iter()
        .map(|c| {
            json!({
                "severity": c.severity,
                "title": c.detail,
                "account_id": c.account_id,
                "account_name": c.account_name,
                "resource": c.resource,
                "uid": c.finding_uid,
            })
        })
        .collect();
    let by_severity: serde_json::Map<String, Value> = d
        .new_by_severity
        .iter()
        .map(|(s, n)| (s.name().to_string(), json!(n)))
        .collect();
    let facts = json!({
        "tool": "iam-audit",
        "run": stamp,
        "compared_with": d.against,
        "not_compared": d.not_compared.as_ref().map(|n| json!({"run": n.label, "reason": n.reason})),
        "coverage": {
            "accounts": summary.accounts,
            "audited": summary.audited,
            "partial": summary.partial,
            "skipped": summary.skipped,
            "not_active": summary.not_active,
        },
        "min_severity": min.name(),
        "new_at_or_above": at_or_above,
        "new_findings": d.new_findings,
        "resolved_findings": d.resolved_findings,
        "new_by_severity": by_severity,
        "exceptions": d.exceptions.active.then(|| json!({
            "accepted": d.exceptions.accepted,
            "reopened": d.exceptions.reopened,
            "expiring": d.exceptions.expiring,
            "expired": d.exceptions.expired,
            "stale": d.exceptions.stale,
            "too_broad": d.exceptions.too_broad,
        })),
        "listed": findings,
        "more": at_or_above.saturating_sub(listed.len() as u64),
    });
    Alert {
        headline,
        lines,
        facts,
        nothing_new: at_or_above == 0,
    }
}

/// The body format for a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Slack,
    Teams,
    Json,
}

impl Format {
    /// `auto` picks by the webhook's host: Slack's, Microsoft's (Teams workflows run on Power Automate
    /// and Logic Apps), else plain JSON.
    pub fn pick(setting: &str, host: &str) -> Format {
        let host = host.split(':').next().unwrap_or("");
        match setting {
            "slack" => Format::Slack,
            "teams" => Format::Teams,
            "json" => Format::Json,
            _ if host == "hooks.slack.com" => Format::Slack,
            _ if host.ends_with(".webhook.office.com")
                || host.ends_with(".logic.azure.com")
                || host.ends_with(".powerplatform.com")
                || host.ends_with(".powerautomate.com") =>
            {
                Format::Teams
            }
            _ => Format::Json,
        }
    }

    /// The message for this format. Account, user and resource names are the organization's, not ours,
    /// and may hold a format's markup (`<!channel>`, `[a link](https://…)`): each format gets the text
    /// with its markup made inert. Slack: `&`, `<` and `>` escaped, as Slack's message formatting asks,
    /// so no mention, command or disguised link can be spelled. Teams: every line a `TextRun` of a
    /// `RichTextBlock`, which Adaptive Cards render as plain text (a `TextBlock` would read markdown).
    pub fn body(self, alert: &Alert) -> Value {
        match self {
            Format::Slack => json!({ "text": slack_escape(&alert.text()) }),
            Format::Teams => {
                let run = |text: &str, bold: bool| {
                    json!({
                        "type": "RichTextBlock",
                        "inlines": [{ "type": "TextRun", "text": text, "weight": if bold { "Bolder" } else { "Default" } }]
                    })
                };
                let mut body = vec![run(&alert.headline, true)];
                for l in &alert.lines {
                    body.push(run(l, false));
                }
                json!({
                    "type": "message",
                    "attachments": [{
                        "contentType": "application/vnd.microsoft.card.adaptive",
                        "content": {
                            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                            "type": "AdaptiveCard",
                            "version": "1.4",
                            "body": body,
                        }
                    }]
                })
            }
            Format::Json => {
                let mut v = alert.facts.clone();
                v["text"] = json!(alert.text());
                v
            }
        }
    }
}

/// Text for a Slack message: `&`, `<` and `>` as Slack's formatting guide asks (`&amp;`, `&lt;`, `&gt;`),
/// the only characters that make markup (mentions, links) there.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// How an alert went, for the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The destination as messages name it (`webhook hooks.slack.com`, `SNS topic arn:…`).
    pub label: String,
    /// `None`: delivered. `Some`: why not, without the URL.
    pub failure: Option<String>,
}

/// Send the alert of a finished run to every destination, at once. Nothing is sent when there is no
/// destination, or nothing new and `notify_only_new`.
pub async fn send(
    settings: &Settings,
    summary: &Summary,
    stamp: &str,
    aws: Option<&super::AwsTarget>,
) -> Vec<Delivery> {
    if settings.notify.is_empty() {
        return Vec::new();
    }
    let min = Severity::from_name(&settings.keys.notify_min_severity).unwrap_or(Severity::High);
    let alert = compose(summary, stamp, min);
    if alert.nothing_new && settings.keys.notify_only_new {
        return Vec::new();
    }
    deliver(settings, &alert, aws).await
}

/// The alert of a run that failed before its reports were complete (exit 1): always news, whatever
/// `notify_only_new` says, since a scheduled audit that stops reporting is itself a blind spot.
pub fn failure(error: &str) -> Alert {
    let headline = "iam-audit: the run failed (exit 1)".to_string();
    let lines = vec![
        format!("Error: {error}"),
        "The reports are missing or incomplete; the run's log and exit code say more.".to_string(),
    ];
    let facts = json!({ "tool": "iam-audit", "failed": true, "error": error });
    Alert {
        headline,
        lines,
        facts,
        nothing_new: false,
    }
}

/// Post `alert` to every destination at once.
pub async fn deliver(
    settings: &Settings,
    alert: &Alert,
    aws: Option<&super::AwsTarget>,
) -> Vec<Delivery> {
    let http = Http::new();
    let sends = settings.notify.iter().map(|d| {
        let http = &http;
        async move {
            let failure = match d {
                Destination::Webhook(url) => {
                    post_webhook(http, url.expose(), &settings.keys.notify_format, alert).await
                }
                Destination::Sns { arn, region } => match aws {
                    Some(aws) => publish_sns(http, aws, arn, region, alert).await,
                    None => Err("no AWS credentials to publish with".to_string()),
                },
            }
            .err();
            Delivery {
                label: d.label(),
                failure,
            }
        }
    });
    futures::future::join_all(sends).await
}

async fn post_webhook(http: &Http, url: &str, format: &str, alert: &Alert) -> Result<(), String> {
    let host = super::http::host_of(url);
    let body = Format::pick(format, &host).body(alert);
    let req = Request {
        method: "POST",
        url: url.to_string(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: serde_json::to_vec(&body).expect("JSON").into(),
    };
    let answer = http.send(&req, Patience::default()).await?;
    if (200..300).contains(&answer.status) {
        Ok(())
    } else {
        let said: String = answer.text().chars().take(200).collect();
        Err(format!(
            "HTTP {}: {}",
            answer.status,
            super::http::scrub(said.trim(), url)
        ))
    }
}

/// The SNS subject: ASCII, no line breaks or control characters, and shorter than 100 characters (SNS
/// Publish: "less than 100 characters long"; it refuses others).
fn subject(headline: &str) -> String {
    let s: String = headline
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_control() {
                c
            } else {
                ' '
            }
        })
        .collect();
    s.chars().take(99).collect()
}

async fn publish_sns(
    http: &Http,
    aws: &super::AwsTarget,
    arn: &str,
    region: &str,
    alert: &Alert,
) -> Result<(), String> {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "Publish")
        .append_pair("Version", "2010-03-31")
        .append_pair("TopicArn", arn)
        .append_pair("Subject", &subject(&alert.headline))
        .append_pair("Message", &alert.text())
        .finish();
    let mut req = Request {
        method: "POST",
        url: aws.endpoint("SNS", "sns", region),
        headers: vec![(
            "content-type".into(),
            "application/x-www-form-urlencoded; charset=utf-8".into(),
        )],
        body: body.into_bytes().into(),
    };
    let credentials = aws.caller().await?;
    super::sigv4::sign_request(&mut req, &credentials, "sns", region)?;
    let answer = http.send(&req, Patience::default()).await?;
    if (200..300).contains(&answer.status) {
        Ok(())
    } else {
        Err(format!(
            "sns:Publish answered HTTP {}: {}",
            answer.status,
            super::aws_error(&answer)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::compare::Change;
    use crate::report::digest::Digest;

    fn change(sev: &str, n: usize) -> Change {
        Change {
            change: "new",
            kind: "finding",
            account_id: "111111111111".into(),
            account_name: "prod".into(),
            resource: format!("user{n}"),
            detail: "Console password without MFA".into(),
            before: String::new(),
            after: String::new(),
            severity: sev.into(),
            finding_uid: format!("iam-audit/111111111111/console_without_mfa/user{n}"),
        }
    }

    fn summary(against: Option<&str>, new: &[Change]) -> Summary {
        let mut d = match against {
            Some(a) => Digest::against(a),
            None => Digest::default(),
        };
        for c in new {
            *d.new_by_severity
                .entry(severity_of(&c.severity))
                .or_default() += 1;
            d.new.push(c.clone());
            d.new_findings += 1;
        }
        Summary {
            accounts: 3,
            audited: 2,
            skipped: 1,
            changes: d,
            summary_file: "/r/summary_x.html".into(),
            ..Summary::default()
        }
    }

    #[test]
    fn an_alert_lists_the_new_findings_at_or_above_the_threshold_then_counts_the_rest() {
        let mut new: Vec<Change> = (0..23).map(|n| change("High", n)).collect();
        new.push(change("Low", 99));
        let a = compose(
            &summary(Some("20261130_000000"), &new),
            "20261201_000000",
            Severity::High,
        );
        assert_eq!(
            a.headline,
            "iam-audit 20261201_000000: 3 accounts, 2 audited, 0 partial, 1 skipped, 0 not active"
        );
        assert_eq!(
            a.lines[0],
            "23 new findings at or above High since 20261130_000000 (23 High):"
        );
        assert_eq!(
            a.lines[1],
            "- [High] Console password without MFA: prod (111111111111), user0"
        );
        assert_eq!(a.lines[21], "and 3 more (see the changes report)");
        assert_eq!(a.lines[22], "In all: 24 new findings, 0 resolved.");
        assert!(!a.nothing_new);
        assert_eq!(a.facts["more"], 3);
    }

    #[test]
    fn nothing_new_is_one_line() {
        let a = compose(
            &summary(Some("S"), &[change("Low", 1)]),
            "T",
            Severity::High,
        );
        assert_eq!(a.lines[0], "No new findings at or above High since S.");
        assert!(a.nothing_new);
        let first = compose(&summary(None, &[]), "T", Severity::High);
        assert_eq!(
            first.lines[0],
            "No new findings at or above High (no earlier run compared: every finding is new)."
        );
    }

    #[test]
    fn formats_follow_the_host_and_sns_subjects_stay_ascii() {
        assert_eq!(Format::pick("auto", "hooks.slack.com"), Format::Slack);
        assert_eq!(
            Format::pick("auto", "prod-12.westeurope.logic.azure.com:443"),
            Format::Teams
        );
        assert_eq!(Format::pick("teams", "127.0.0.1:1"), Format::Teams);
        assert_eq!(Format::pick("auto", "127.0.0.1:1"), Format::Json);
        let a = compose(&summary(None, &[]), "T", Severity::High);
        let card = Format::Teams.body(&a);
        assert_eq!(
            card["attachments"][0]["content"]["body"][0]["inlines"][0]["text"],
            a.headline
        );
        assert_eq!(Format::Slack.body(&a), json!({ "text": a.text() }));
        assert_eq!(
            slack_escape("<!channel> & <https://x|y>"),
            "&lt;!channel&gt; &amp; &lt;https://x|y&gt;"
        );
        assert_eq!(subject("a\u{e9}b\nc"), "a b c");
        let failed = failure("cannot list the accounts: AccessDenied");
        assert_eq!(
            failed.text(),
            "iam-audit: the run failed (exit 1)\nError: cannot list the accounts: AccessDenied\nThe reports are missing or incomplete; the run's log and exit code say more."
        );
        assert_eq!(subject(&"x".repeat(150)).len(), 99);
    }
}
