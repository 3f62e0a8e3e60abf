//! AWS Lambda's custom runtime (`provided.al2023`): when `AWS_LAMBDA_RUNTIME_API` is set, the binary
//! serves invocations instead of parsing a command line (the `lambda` feature).
//!
//! Each invocation is one stretch of one audit. Its JSON may set any key of the config file (never a
//! secret: alert destinations come from the function's environment), over the file `IAM_AUDIT_CONFIG`
//! names. The reports go to S3 (`output_dir = "s3://…"`): the function's disk does not outlive it. The
//! run stops starting accounts at the invocation's deadline less `lambda_margin_secs` and the shutdown
//! grace, closes the running ones, uploads its files, and answers `{"status": "incomplete", "resume":
//! "s3://…"}`; a state object under the prefix (`iam-audit-lambda.json`) tells the next invocation to
//! resume that run, so an organization of any size finishes over several invocations and no account is
//! audited twice.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use iam_audit::send::http::{Http, Request};
use iam_audit::{Config, Settings};
use serde_json::{json, Value};

/// The state object under the prefix: the run the next invocation resumes, if incomplete.
const STATE: &str = "iam-audit-lambda.json";

/// Keys an invocation may not set: they hold secrets, which belong in the function's environment. An
/// SNS topic (`notify` entries `sns:arn:…`) is not one: the Lambda template's schedules name theirs.
const SECRET_KEYS: [&str; 2] = ["notify", "notify_file"];

/// The one key of an invocation that is not a config key: `"resume_only": true` continues an incomplete
/// run and does nothing when there is none (the frequent schedule beside the weekly one).
const RESUME_ONLY: &str = "resume_only";

/// Serve invocations until the Runtime API stops answering; the exit code then.
pub async fn serve(api: String) -> i32 {
    // The Runtime API is on the machine: never through a proxy (HTTP_PROXY may be set for the audit).
    let http = Http::direct();
    let base = format!("http://{api}/2018-06-01/runtime");
    loop {
        let next = Request {
            method: "GET",
            url: format!("{base}/invocation/next"),
            headers: Vec::new(),
            body: Default::default(),
        };
        // The call blocks until an invocation comes.
        let answer = match http.once(&next, Duration::from_secs(24 * 3600)).await {
            Ok(a) if a.status == 200 => a,
            Ok(a) => {
                eprintln!(
                    "error: the Lambda Runtime API answered HTTP {} to invocation/next; exiting",
                    a.status
                );
                return 1;
            }
            Err(e) => {
                eprintln!("error: the Lambda Runtime API is unreachable ({e}); exiting");
                return 1;
            }
        };
        // Without its request id an invocation cannot be answered, even with an error: say so and stop,
        // and Lambda starts the runtime again.
        let Some(id) = answer
            .header("lambda-runtime-aws-request-id")
            .filter(|id| {
                !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
            .map(str::to_string)
        else {
            eprintln!(
                "error: the Lambda Runtime API handed out an invocation without a usable Lambda-Runtime-Aws-Request-Id; nothing was audited; exiting"
            );
            return 1;
        };
        let deadline = answer
            .header("lambda-runtime-deadline-ms")
            .and_then(|d| d.parse::<u64>().ok())
            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
            .unwrap_or_else(|| SystemTime::now() + Duration::from_secs(900));
        let invoked = match serde_json::from_slice::<Value>(&answer.body) {
            Ok(event) => invoke(event, deadline).await,
            Err(e) => Err(format!(
                "the invocation's payload is not JSON ({e}); it must be a JSON object of config keys; nothing was audited"
            )),
        };
        let (path, body) = match invoked {
            Ok(v) => (format!("{base}/invocation/{id}/response"), v),
            Err(message) => {
                eprintln!("error: {message}");
                (
                    format!("{base}/invocation/{id}/error"),
                    json!({ "errorType": "IamAuditError", "errorMessage": message }),
                )
            }
        };
        let post = Request {
            method: "POST",
            url: path,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(&body).expect("JSON").into(),
        };
        if let Err(e) = http.once(&post, Duration::from_secs(30)).await {
            eprintln!("error: cannot answer the invocation ({e})");
        }
    }
}

/// The settings an invocation asks for: its keys over the function's config file.
fn config_of(event: &Value) -> Result<Config, String> {
    let Value::Object(obj) = event else {
        return Err(
            "the invocation's payload must be a JSON object of config keys ({} given); nothing was audited"
                .replace("{}", match event {
                    Value::Null => "null",
                    Value::Array(_) => "an array",
                    Value::String(_) => "a string",
                    Value::Number(_) => "a number",
                    Value::Bool(_) => "a boolean",
                    Value::Object(_) => "an object",
                }),
        );
    };
    let obj = obj.clone();
    let only_topics = |v: &Value| {
        v.as_array().is_some_and(|a| {
            a.iter()
                .all(|d| d.as_str().is_some_and(|d| d.starts_with("sns:arn:")))
        })
    };
    if let Some(k) = SECRET_KEYS.iter().find(|k| {
        obj.get(**k)
            .is_some_and(|v| **k != "notify" || !only_topics(v))
    }) {
        return Err(format!(
            "the invocation may not set `{k}` but to SNS topics (sns:arn:…): a webhook URL is a secret; give it in the function's environment (IAM_AUDIT_NOTIFY) or its config file"
        ));
    }
    let mut obj = obj;
    obj.remove(RESUME_ONLY);
    let from_event: Config = serde_json::from_value(Value::Object(obj))
        .map_err(|e| format!("the invocation's payload: {e}"))?;
    let file = match std::env::var("IAM_AUDIT_CONFIG") {
        Ok(path) if !path.is_empty() => {
            Config::from_file(std::path::Path::new(&path)).map_err(|e| e.to_string())?
        }
        _ => Config::default(),
    };
    Ok(from_event.or(file))
}

/// What an invocation does with the run the state object names.
#[derive(Debug, PartialEq)]
enum Step {
    /// Its accounts report is under the prefix, and it is the latest run there: resume it.
    Resume(String, iam_audit::config::Format),
    /// Its stamp was claimed but its accounts report never arrived, and no later run is there: run it
    /// again from the start under the same stamp (its other files, if any, are written again).
    Restart(String),
    /// No run to continue (or one a later run passed: its stamp, to warn of).
    Start(Option<String>),
}

fn next_step(
    state: Option<&Value>,
    latest: Option<(String, iam_audit::config::Format)>,
    names: &[String],
) -> Step {
    let Some(stamp) = state
        .filter(|s| s["status"] == "incomplete")
        .and_then(|s| s["stamp"].as_str())
        .filter(|s| iam_audit::report::stamp_time(s).is_some())
    else {
        return Step::Start(None);
    };
    match latest {
        Some((latest, format)) if latest == stamp => Step::Resume(latest, format),
        Some((latest, _)) if !iam_audit::report::files::stamp_before(&latest, stamp) => {
            Step::Start(Some(stamp.to_string()))
        }
        _ if names.contains(&iam_audit::store::claim_name(stamp)) => {
            Step::Restart(stamp.to_string())
        }
        _ => Step::Start(Some(stamp.to_string())),
    }
}

/// One invocation: resume the run the state object names, or start one; stop in time; say how it ended.
async fn invoke(event: Value, deadline: SystemTime) -> Result<Value, String> {
    let mut config = config_of(&event)?;
    let now = chrono::Utc::now();
    let first = Settings::resolve(config.clone(), now).map_err(|e| e.to_string())?;
    let Some(location) = first.remote.clone() else {
        return Err(
            "in AWS Lambda, output_dir must be s3://BUCKET/PREFIX/: the function's disk does not outlive the invocation"
                .into(),
        );
    };
    let prefix_url = format!("s3://{}/{}", location.bucket, location.prefix);
    // The run to resume, if the last invocation left one.
    let aws = iam_audit::aws::Aws::connect(&first)
        .await
        .map_err(|e| e.to_string())?;
    let remote = iam_audit::store::Remote::open(&aws, &first, &location)
        .await
        .map_err(|e| e.to_string())?;
    // Its staging directory is not needed: the run makes its own; this one reads and writes the state.
    remote.remove_staging();
    // Whether the state object exists comes from the listing: a GetObject of a missing key is a 403, not
    // a 404, under a policy that may list only the prefix.
    let names = remote.names().await.map_err(|e| e.to_string())?;
    let state = match names.iter().any(|n| n == STATE) {
        true => remote.get_text(STATE).await.map_err(|e| e.to_string())?,
        false => None,
    };
    let latest = iam_audit::report::files::runs_among(&names)
        .into_iter()
        .next();
    let state: Option<Value> = state.and_then(|t| serde_json::from_str(&t).ok());
    let next = next_step(state.as_ref(), latest, &names);
    // Invocations in a row before this one that finished no account of the run it resumes.
    let stalled = match &next {
        Step::Resume(..) => state
            .as_ref()
            .and_then(|s| s["stalled"].as_u64())
            .unwrap_or(0),
        _ => 0,
    };
    let (resume, restart) = match next {
        Step::Resume(stamp, format) => {
            config.format = Some(format.as_str().to_string());
            (Some(stamp), None)
        }
        Step::Restart(stamp) => (None, Some(stamp)),
        Step::Start(warning) => {
            if let Some(stamp) = warning {
                eprintln!(
                    "warning: the state object names run {stamp}, which is not the latest run under {prefix_url}; starting a new run"
                );
            }
            (None, None)
        }
    };
    if resume.is_none() && restart.is_none() && event[RESUME_ONLY] == json!(true) {
        return Ok(json!({ "status": "idle", "reports": prefix_url }));
    }
    let start = resume
        .as_deref()
        .or(restart.as_deref())
        .and_then(iam_audit::report::stamp_time)
        .unwrap_or(now);
    let mut settings = Settings::resolve(config, start).map_err(|e| e.to_string())?;
    settings.resume_stamp = resume.clone();
    // Stop in time: no account starts after the deadline less the margin and the grace. An invocation
    // without that time writes nothing.
    let keep = Duration::from_secs(settings.keys.lambda_margin_secs) + settings.shutdown_grace();
    let left = deadline
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    let Some(run_for) = left.checked_sub(keep).filter(|d| !d.is_zero()) else {
        return Err(format!(
            "the invocation has {:.0} s left, no more than lambda_margin_secs ({}) and shutdown_grace_secs ({}): raise the function's timeout or lower the margin; nothing was written",
            left.as_secs_f64(),
            settings.keys.lambda_margin_secs,
            settings.keys.shutdown_grace_secs
        ));
    };
    // A new run takes its stamp, and the state object names it before anything else is written: an
    // invocation that dies anywhere after this leaves the next one that run, to resume or to restart
    // under the same stamp, never an orphan beside a second run.
    if resume.is_none() {
        let stamp = match restart {
            Some(stamp) => stamp,
            None => remote
                .claim_stamp(&settings.stamp())
                .await
                .map_err(|e| e.to_string())?,
        };
        let state = json!({ "status": "incomplete", "stamp": stamp });
        remote
            .put_text(STATE, &state.to_string())
            .await
            .map_err(|e| e.to_string())?;
        settings.claimed_stamp = Some(stamp);
    }
    // An invocation stopped by its deadline is not the end of the run: the one that completes it alerts.
    settings.alert_when_stopped = false;
    let shutdown = iam_audit::Shutdown::default();
    let grace = settings.shutdown_grace();
    let timer = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(run_for).await;
            shutdown.stop_starting.cancel();
            tokio::time::sleep(grace).await;
            shutdown.abort.cancel();
        })
    };
    let stopped = shutdown.stop_starting.clone();
    let result = iam_audit::run(settings, Arc::new(iam_audit::Silent), shutdown).await;
    timer.abort();
    let summary = result.map_err(|e| e.to_string())?;
    eprintln!("{summary}");
    let ran = Ran {
        stopped: stopped.is_cancelled(),
        run_for,
        stalled,
    };
    finish(&remote, &summary, ran, &prefix_url).await
}

/// How an invocation's run went, beside its summary.
struct Ran {
    /// The deadline stopped it.
    stopped: bool,
    /// The time it had.
    run_for: Duration,
    /// Invocations in a row before it that finished no account.
    stalled: u64,
}

/// The state object for the next invocation, and this invocation's answer. An invocation stopped by its
/// deadline before it finished any account is said: once as a warning, and as an error when the one
/// before it finished none either (at that timeout the run cannot progress, and would not say so).
async fn finish(
    remote: &iam_audit::store::Remote,
    summary: &iam_audit::summary::Summary,
    ran: Ran,
    prefix_url: &str,
) -> Result<Value, String> {
    let stamp = summary
        .accounts_file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .and_then(|n| {
            n.strip_prefix("accounts_")
                .and_then(|r| r.rsplit_once('.').map(|(s, _)| s.to_string()))
        })
        .unwrap_or_default();
    let incomplete = ran.stopped && summary.partial + summary.skipped > 0;
    let finished_here = (summary.audited + summary.not_active).saturating_sub(summary.resumed);
    let stalled = if incomplete && finished_here == 0 {
        ran.stalled + 1
    } else {
        0
    };
    let state = json!({
        "status": if incomplete { "incomplete" } else { "complete" },
        "stamp": stamp,
        "stalled": stalled,
    });
    // The state object goes with the reports: the same bucket, owner and encryption.
    remote
        .put_text(STATE, &state.to_string())
        .await
        .map_err(|e| e.to_string())?;
    let counts = json!({
        "accounts": summary.accounts,
        "audited": summary.audited,
        "partial": summary.partial,
        "skipped": summary.skipped,
        "not_active": summary.not_active,
        "done_before": summary.resumed,
    });
    let mut answer = if incomplete {
        json!({ "status": "incomplete", "resume": prefix_url, "run": stamp, "accounts": counts })
    } else {
        json!({
            "status": "complete",
            "run": stamp,
            "reports": prefix_url,
            "exit_code": summary.exit_code(),
            "accounts": counts,
        })
    };
    if stalled > 0 {
        let what = format!(
            "this invocation finished no account of run {stamp} in the {:.1} s it had after reading the earlier run and before lambda_margin_secs and shutdown_grace_secs",
            ran.run_for.as_secs_f64()
        );
        let fix = "raise the function's timeout (or lower lambda_margin_secs)";
        if stalled >= 2 {
            return Err(format!(
                "{what}, nor did the invocation before it: at this timeout the run cannot progress; {fix}. The run stays incomplete under {prefix_url}"
            ));
        }
        eprintln!("warning: {what}; the next invocation resumes it, and fails if it finishes none either: {fix}");
        answer["warning"] = json!(format!("{what}; {fix}"));
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_object_names_a_run_to_resume_restart_or_pass() {
        use iam_audit::config::Format::Csv;
        let state = |s: &str| json!({ "status": "incomplete", "stamp": s });
        let claim = |s: &str| iam_audit::store::claim_name(s);
        let a = "20261206_060000";
        let b = "20261206_070000";
        // Its accounts report is there and latest: resume.
        assert_eq!(
            next_step(Some(&state(a)), Some((a.into(), Csv)), &[claim(a)]),
            Step::Resume(a.into(), Csv)
        );
        // Claimed, no accounts report, an older run latest: the same stamp again.
        assert_eq!(
            next_step(
                Some(&state(b)),
                Some((a.into(), Csv)),
                &[claim(a), claim(b)]
            ),
            Step::Restart(b.into())
        );
        assert_eq!(
            next_step(Some(&state(b)), None, &[claim(b)]),
            Step::Restart(b.into())
        );
        // A later run passed it, or its claim is gone: a new run, with a warning.
        assert_eq!(
            next_step(Some(&state(a)), Some((b.into(), Csv)), &[claim(a)]),
            Step::Start(Some(a.into()))
        );
        assert_eq!(
            next_step(Some(&state(b)), Some((a.into(), Csv)), &[]),
            Step::Start(Some(b.into()))
        );
        // Complete, unreadable or absent: a new run, quietly.
        let done = json!({ "status": "complete", "stamp": a });
        assert_eq!(next_step(Some(&done), None, &[]), Step::Start(None));
        let odd = json!({ "status": "incomplete", "stamp": "../x" });
        assert_eq!(next_step(Some(&odd), None, &[]), Step::Start(None));
        assert_eq!(next_step(None, None, &[]), Step::Start(None));
    }

    #[test]
    fn an_invocation_sets_config_keys_but_no_secret() {
        let c = config_of(&json!({ "role": "IAMAuditRole", "concurrency": 8 })).unwrap();
        assert_eq!(
            (c.role.as_deref(), c.concurrency),
            (Some("IAMAuditRole"), Some(8))
        );
        let e = config_of(&json!({ "notify": ["https://hooks.slack.com/x"] })).unwrap_err();
        assert!(e.starts_with("the invocation may not set `notify`"), "{e}");
        let e = config_of(&json!({ "notify": ["sns:arn:aws:sns:eu-west-1:1:t", "https://x"] }))
            .unwrap_err();
        assert!(e.starts_with("the invocation may not set `notify`"), "{e}");
        let topic = config_of(&json!({ "notify": ["sns:arn:aws:sns:eu-west-1:111111111111:t"] }));
        assert!(topic.is_ok(), "{topic:?}");
        let e = config_of(&json!({ "concurency": 8 })).unwrap_err();
        assert!(e.contains("unknown field `concurency`"), "{e}");
        assert!(config_of(&json!([1])).is_err());
        assert_eq!(
            config_of(&json!({ "resume_only": true, "role": "R" }))
                .unwrap()
                .role
                .as_deref(),
            Some("R")
        );
    }
}
