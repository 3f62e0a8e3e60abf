//! `iam-audit demo`: the whole engine against the embedded simulated organization, so a newcomer sees
//! every report without an AWS account.

use std::sync::Arc;

use iam_audit::Config;

use super::args::DemoArgs;
use super::display::{init_logging, Progress};
use super::{run_with_progress, settings_from};

/// `iam-audit demo`: start the simulator on loopback, audit it with the real engine, print where the
/// reports are.
#[cfg(feature = "sim")]
pub async fn demo(args: DemoArgs) -> i32 {
    use iam_audit::sim::{Faults, Scenario, Sim};
    let progress = Arc::new(Progress::new(&args.display));
    init_logging(&args.display, progress.multi());
    let scenario = match &args.scenario {
        // A scenario file describes the whole simulated AWS, faults included.
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| Scenario::from_toml(&t))
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: scenario {}: {e}", path.display());
                return 2;
            }
        },
        None => Scenario {
            seed: args.seed,
            epoch: args
                .epoch
                .unwrap_or_else(|| iam_audit::report::files::run_count(&args.output_dir) as u32),
            accounts: args.accounts,
            suspended_every: 12,
            users_min: 2.min(args.users),
            users_max: args.users,
            events_per_account: args.events,
            faults: Faults {
                latency_ms: args.latency_ms,
                jitter_ms: 10.min(args.latency_ms),
                iam_rate: 10.0,
                iam_burst: 10.0,
                cloudtrail_rate: 2.0,
                cloudtrail_burst: 2.0,
                log_calls: false,
                // Centralized root access: the accounts that refuse the audit role still have their
                // root user read, through sts:AssumeRoot.
                root_credentials_management: true,
                ..Faults::default()
            },
            ..Scenario::default()
        },
    };
    let mut org = scenario.generate();
    let active: Vec<String> = org
        .accounts
        .iter()
        .filter(|a| a.status == "ACTIVE")
        .map(|a| a.id.clone())
        .collect();
    let mut faults = scenario.faults.clone();
    if args.scenario.is_none() {
        // The first ACTIVE accounts deny AssumeRole, the next ones LookupEvents.
        let denied = |skip| {
            active
                .iter()
                .skip(skip)
                .take(args.denied)
                .map(|id| id.to_string())
                .collect()
        };
        faults.deny_assume_role = denied(0);
        faults.deny_lookup_events = denied(args.denied);
    }
    let skip = [
        faults.deny_assume_role.clone(),
        faults.deny_lookup_events.clone(),
    ]
    .concat();
    let now = match scenario.now {
        0 => chrono::Utc::now().timestamp(),
        t => t,
    };
    let break_glass =
        args.scenario.is_none() && iam_audit::sim::add_break_glass(&mut org, now, &skip).is_some();
    if args.scenario.is_none() {
        iam_audit::sim::add_api_key_and_quarantine(&mut org, now, &skip);
    }
    let org_summary = (org.accounts.len(), active.len());
    let sim = match Sim::start(org, faults.clone()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot start the simulator on 127.0.0.1: {e}");
            return 1;
        }
    };
    if !args.display.quiet {
        let active = org_summary.1;
        eprintln!(
            "demo: a simulated organization of {} accounts ({active} active) on {} ({} ms latency, IAM {} req/s and LookupEvents {} req/s per account, {} accounts denying AssumeRole, {} denying LookupEvents)",
            org_summary.0,
            sim.endpoint(),
            faults.latency_ms,
            faults.iam_rate,
            faults.cloudtrail_rate,
            faults.deny_assume_role.len(),
            faults.deny_lookup_events.len(),
        );
    }
    let config = Config {
        role: Some("IAMAuditRole".into()),
        output_dir: Some(args.output_dir.clone()),
        concurrency: Some(args.concurrency),
        max_attempts: Some(10),
        initial_backoff_ms: Some(200),
        ..Config::default()
    };
    let mut settings = match settings_from(config, args.config.as_ref()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if break_glass {
        settings.builtin_exceptions = Some(demo_exceptions(settings.started_at));
    }
    settings.endpoint_override = Some(iam_audit::config::EndpointOverride {
        url: sim.endpoint(),
        access_key_id: "AKIADEMOMANAGEMENT01".into(),
        secret_access_key: "demo-secret-not-a-real-key".into(),
    });
    run_with_progress(settings, progress, args.display.quiet).await
}

/// The demo's exceptions (used unless the config names a file): its break-glass users asserted sealed,
/// for half a year from the run.
#[cfg(feature = "sim")]
fn demo_exceptions(started: chrono::DateTime<chrono::Utc>) -> (String, String) {
    let expires = started.date_naive() + chrono::Duration::days(182);
    let text = format!(
        "version: 1
rules:
  - id: break-glass
    kind: break_glass
    owner: security@example.com
    reason: Emergency access users; the passwords and FIDO keys are in the safe
    expires: {expires}
    match: {{ users: [\"breakglass-*\"] }}
"
    );
    ("demo's break-glass rule".to_string(), text)
}
