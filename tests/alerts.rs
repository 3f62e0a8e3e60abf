//! Alerts as the people who get them see them: a webhook of our own on 127.0.0.1 receives the run's
//! message (after a 429 that names its Retry-After), a run with nothing new stays silent under
//! `--notify-only-new`, a receiver that keeps failing costs a warning and nothing else, and the webhook's
//! secret path shows up nowhere. An SNS topic of moto's delivers the message to an SQS queue.

use std::collections::BTreeSet;

use iam_audit::sim::{Faults, Scenario, Sim, SimOrg};

use crate::support::*;

fn org() -> SimOrg {
    Scenario {
        seed: 21,
        accounts: 6,
        users_min: 2,
        users_max: 6,
        events_per_account: 2,
        ..Scenario::default()
    }
    .generate()
}

fn faults(skipped: &str) -> Faults {
    Faults {
        deny_assume_role: [skipped.to_string()].into(),
        report_delay_ms: 20,
        ..Faults::default()
    }
}

const SECRET: &str = "T0000/B0000/hook-secret-4f9c";

/// The lines an alert lists for a first run: every finding of severity High or above in the findings file.
fn expected_listed(findings: &[serde_json::Value]) -> BTreeSet<String> {
    findings
        .iter()
        .filter(|f| f["severity_id"].as_u64().unwrap() >= 4)
        .map(|f| {
            format!(
                "- [{}] {}: {} ({}), {}",
                f["severity"].as_str().unwrap(),
                f["finding_info"]["title"].as_str().unwrap(),
                f["cloud"]["account"]["name"].as_str().unwrap(),
                f["cloud"]["account"]["uid"].as_str().unwrap(),
                // An account is named by its id, a user or key by its name.
                if f["resources"][0]["type"] == "AwsAccount" {
                    f["resources"][0]["uid"].as_str().unwrap()
                } else {
                    f["resources"][0]["name"].as_str().unwrap()
                },
            )
        })
        .collect()
}

fn count(rows: &[std::collections::BTreeMap<String, String>], status: &str) -> usize {
    rows.iter().filter(|r| r["audit_status"] == status).count()
}

fn assert_secret_nowhere(out: &RunOutput) {
    assert!(!out.stderr.contains(SECRET), "{}", out.stderr);
    for f in &out.files {
        let bytes = std::fs::read(f).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(SECRET),
            "{} holds the webhook's secret",
            f.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_alert_reaches_a_webhook_once_then_only_when_something_is_new() {
    let org = org();
    let skipped = org.accounts[0].id.clone();
    let sim = Sim::start(org, faults(&skipped)).await.unwrap();
    let hook = Receiver::start(&[(429, Some("1")), (200, None)]).await;
    let url = format!("{}/services/{SECRET}", hook.url_base);
    let dir = tempfile::tempdir().unwrap();

    let out = fast_audit_in(
        &sim,
        dir.path(),
        &["--notify", &url, "--notify-format", "json"],
    )
    .await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    let got = hook.got();
    assert_eq!(got.len(), 2, "a 429, then the same message again");
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(got[1].path, format!("/services/{SECRET}"));
    assert_eq!(got[1].headers["content-type"], "application/json");
    let msg: serde_json::Value = serde_json::from_str(&got[1].body).unwrap();
    let text = msg["text"].as_str().unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let stamp = out
        .findings_path
        .as_ref()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()["findings_".len().."findings_".len() + 15]
        .to_string();
    let accounts = &out.accounts;
    assert_eq!(
        lines[0],
        format!(
            "iam-audit {stamp}: {} accounts, {} audited, {} partial, {} skipped, {} not active",
            accounts.len(),
            count(accounts, "audited"),
            count(accounts, "partial"),
            count(accounts, "skipped"),
            count(accounts, "not_active"),
        )
    );
    let listed = expected_listed(&out.findings);
    assert!(listed.len() > 1 && listed.len() <= 20, "{listed:?}");
    let critical = out
        .findings
        .iter()
        .filter(|f| f["severity_id"] == 5)
        .count();
    let high = out
        .findings
        .iter()
        .filter(|f| f["severity_id"] == 4)
        .count();
    let by = [(critical, "Critical"), (high, "High")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, s)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join(", ");
    assert_eq!(
        lines[1],
        format!(
            "{} new findings at or above High (no earlier run compared: every finding is new) ({by}):",
            listed.len()
        )
    );
    let got_listed: BTreeSet<String> = lines[2..2 + listed.len()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(got_listed, listed);
    assert!(
        listed.iter().any(|l| l.contains(&format!("({skipped})"))),
        "the blind account is news"
    );
    assert_eq!(lines.len(), 2 + listed.len() + 1);
    assert!(lines.last().unwrap().starts_with("Summary page: "));
    assert_eq!(msg["coverage"]["skipped"], 1);
    assert_eq!(msg["new_at_or_above"], listed.len());
    assert_eq!(msg["more"], 0);
    assert!(
        out.stderr
            .contains(&format!("alert: sent to webhook {}", &hook.url_base[7..])),
        "{}",
        out.stderr
    );
    assert_secret_nowhere(&out);

    // The same organization again: nothing is new, and --notify-only-new sends nothing.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let again = fast_audit_in(&sim, dir.path(), &["--notify", &url, "--notify-only-new"]).await;
    assert_eq!(again.code, 3, "{}", again.stderr);
    assert_eq!(hook.got().len(), 2, "nothing new, nothing sent");
    assert!(!again.stderr.contains("alert:"), "{}", again.stderr);

    // Without --notify-only-new the quiet week is one line, in Slack's shape.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let third = fast_audit_in(
        &sim,
        dir.path(),
        &["--notify", &url, "--notify-format", "slack"],
    )
    .await;
    assert_eq!(third.code, 3, "{}", third.stderr);
    let got = hook.got();
    assert_eq!(got.len(), 3);
    let slack: serde_json::Value = serde_json::from_str(&got[2].body).unwrap();
    let text = slack["text"].as_str().unwrap();
    assert_eq!(
        slack.as_object().unwrap().len(),
        1,
        "Slack gets {{\"text\"}}"
    );
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .starts_with("No new findings at or above High since "),
        "{text}"
    );
    assert!(
        text.contains("\nIn all: 0 new findings, 0 resolved.\n"),
        "{text}"
    );
}

/// A receiver that always fails: the run ends as it would have, with a warning that names the host only;
/// the URL came from IAM_AUDIT_NOTIFY, so it is on no command line either.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_webhook_is_a_warning_and_its_url_stays_secret() {
    let org = org();
    let skipped = org.accounts[0].id.clone();
    let sim = Sim::start(org, faults(&skipped)).await.unwrap();
    let hook = Receiver::start(&[(503, None)]).await;
    let url = format!("{}/services/{SECRET}", hook.url_base);
    let dir = tempfile::tempdir().unwrap();
    let endpoint = sim.endpoint();
    let out = run_bin(
        &[
            "--role",
            "IAMAuditRole",
            "--output-dir",
            dir.path().to_str().unwrap(),
            "--no-progress",
            "--iam-rate",
            "200",
        ],
        &[
            FAKE_KEY,
            FAKE_SECRET,
            ("AWS_ENDPOINT_URL", &endpoint),
            ("IAM_AUDIT_NOTIFY", &url),
        ],
        dir.path(),
    )
    .await;
    assert_eq!(
        out.code, 3,
        "the alert does not change the exit code: {}",
        out.stderr
    );
    assert_eq!(hook.got().len(), 5, "five attempts, then it gives up");
    assert!(
        out.stderr.contains(&format!(
            "warning: the alert to webhook {} failed (HTTP 503: ok); the reports are written",
            &hook.url_base[7..]
        )),
        "{}",
        out.stderr
    );
    assert_eq!(out.accounts.len(), 6);
    assert_secret_nowhere(&out);

    // A plain-http URL off the loopback interface is refused before anything runs, without the URL.
    let bad = run_bin(
        &[
            "--role",
            "R",
            "--output-dir",
            dir.path().to_str().unwrap(),
            "--notify",
            "http://example.com/services/T0000/B0000/hook-secret-4f9c",
        ],
        &[FAKE_KEY, FAKE_SECRET, ("AWS_ENDPOINT_URL", &endpoint)],
        dir.path(),
    )
    .await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("notify: notify entry 1: plain http to example.com would send the findings and the URL's secret unencrypted; use https"),
        "{}",
        bad.stderr
    );
    assert!(!bad.stderr.contains(SECRET));
}

/// An SNS topic in moto, with an SQS queue subscribed: the message published with the caller's
/// credentials arrives with its subject.
#[tokio::test(flavor = "multi_thread")]
async fn an_sns_alert_reaches_the_topic() {
    let moto = Moto::start();
    let py = |script: &str| moto.python(script, &[("AWS_DEFAULT_REGION", "eu-west-1")]);
    let topic = py(
        "sns = boto3.client('sns', endpoint_url=MOTO); sqs = boto3.client('sqs', endpoint_url=MOTO)\n\
         q = sqs.create_queue(QueueName='alerts')['QueueUrl']\n\
         qa = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=['QueueArn'])['Attributes']['QueueArn']\n\
         t = sns.create_topic(Name='iam-audit')['TopicArn']\n\
         sns.subscribe(TopicArn=t, Protocol='sqs', Endpoint=qa)\n\
         print(t)",
    );
    assert!(topic.starts_with("arn:aws:sns:eu-west-1:"), "{topic}");
    let org = org();
    let skipped = org.accounts[0].id.clone();
    let sim = Sim::start(org, faults(&skipped)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let endpoint = sim.endpoint();
    let notify = format!("sns:{topic}");
    let out = run_bin(
        &[
            "--role",
            "IAMAuditRole",
            "--output-dir",
            dir.path().to_str().unwrap(),
            "--no-progress",
            "--notify",
            &notify,
        ],
        &[
            FAKE_KEY,
            FAKE_SECRET,
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_ENDPOINT_URL_SNS", &moto.endpoint),
        ],
        dir.path(),
    )
    .await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("alert: sent to SNS topic {topic}")),
        "{}",
        out.stderr
    );
    let delivered = py(
        "sqs = boto3.client('sqs', endpoint_url=MOTO)\n\
         q = sqs.get_queue_url(QueueName='alerts')['QueueUrl']\n\
         m = sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=10, WaitTimeSeconds=5).get('Messages', [])\n\
         print(json.dumps([json.loads(x['Body']) for x in m]))",
    );
    let delivered: Vec<serde_json::Value> = serde_json::from_str(&delivered).unwrap();
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    let subject = delivered[0]["Subject"].as_str().unwrap();
    let message = delivered[0]["Message"].as_str().unwrap();
    assert!(
        subject.starts_with("iam-audit ") && subject.ends_with(" 1 skipped, 0 not active"),
        "{subject}"
    );
    assert_eq!(message.lines().next().unwrap(), subject);
    assert_eq!(
        message.lines().filter(|l| l.starts_with("- [")).count(),
        expected_listed(&out.findings).len()
    );
}

/// A scheduled audit that fails outright (here: the accounts cannot be listed, exit 1) still tells its
/// destinations, even under --notify-only-new: a silent failure would be a blind spot.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_run_is_alerted_too() {
    let sim = Sim::start(
        org(),
        Faults {
            deny_list_accounts: true,
            ..Faults::default()
        },
    )
    .await
    .unwrap();
    let hook = Receiver::start(&[(200, None)]).await;
    let url = format!("{}/services/{SECRET}", hook.url_base);
    let dir = tempfile::tempdir().unwrap();
    let out = audit_in(
        &sim,
        dir.path(),
        &[
            "--notify",
            &url,
            "--notify-only-new",
            "--notify-format",
            "slack",
        ],
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    let got = hook.got();
    assert_eq!(got.len(), 1, "one alert of the failure");
    let text = serde_json::from_str::<serde_json::Value>(&got[0].body).unwrap()["text"]
        .as_str()
        .unwrap()
        .to_string();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("iam-audit: the run failed (exit 1)"));
    let error = lines.next().unwrap();
    assert!(
        error.starts_with("Error: ") && error.contains("AccessDeniedException"),
        "{text}"
    );
    assert!(
        out.stderr
            .contains("the failure was alerted to webhook 127.0.0.1:"),
        "{}",
        out.stderr
    );
    assert_secret_nowhere(&out);
}

// Story: a member account named with a format's markup (a Slack mention, a disguised link, an ampersand)
// reaches each format as text, never as markup: Slack gets it escaped, Teams as a plain-text TextRun, JSON
// as a string; the SNS subject stays under SNS's 100 characters.
#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_account_name_is_text_in_every_format() {
    let hostile = "<!channel> [pay here](https://evil.example) & *now*";
    let mut org = org();
    org.accounts[1].name = hostile.to_string();
    let only = org.accounts[1].id.clone();
    let sim = Sim::start(org, faults("000000000000")).await.unwrap();
    let endpoint = sim.endpoint();
    for format in ["slack", "teams", "json"] {
        let hook = Receiver::start(&[(200, None)]).await;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("{}/hook", hook.url_base);
        let out = run_bin(
            &[
                "--role",
                "IAMAuditRole",
                "--output-dir",
                dir.path().to_str().unwrap(),
                "--no-progress",
                "--iam-rate",
                "200",
                "--notify",
                &url,
                "--notify-format",
                format,
                "--notify-min-severity",
                "low",
                "--include-accounts",
                &only,
            ],
            &[FAKE_KEY, FAKE_SECRET, ("AWS_ENDPOINT_URL", &endpoint)],
            dir.path(),
        )
        .await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        let got = hook.got();
        assert_eq!(got.len(), 1, "{format}");
        let body: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
        match format {
            "slack" => {
                let text = body["text"].as_str().unwrap();
                assert!(
                    text.contains("&lt;!channel&gt; [pay here](https://evil.example) &amp; *now*"),
                    "{text}"
                );
                assert!(!text.contains('<') && !text.contains('>'), "{text}");
            }
            "teams" => {
                let blocks = body["attachments"][0]["content"]["body"]
                    .as_array()
                    .unwrap();
                assert!(
                    blocks.iter().all(|b| b["type"] == "RichTextBlock"
                        && b["inlines"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .all(|i| i["type"] == "TextRun")),
                    "{body}"
                );
                assert!(
                    blocks
                        .iter()
                        .any(|b| b["inlines"][0]["text"].as_str().unwrap().contains(hostile)),
                    "{body}"
                );
            }
            _ => {
                let listed = body["listed"].as_array().unwrap();
                assert!(
                    listed.iter().any(|f| f["account_name"] == hostile),
                    "{body}"
                );
            }
        }
    }
}
