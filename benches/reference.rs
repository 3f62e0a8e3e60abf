//! The benchmark's yardstick: a bare-SDK reference that makes the auditor's own calls with the plain SDK
//! clients, so that each row can state the auditor's CPU per call as a ratio to the SDK's on the same
//! machine in the same run (absolute CPU figures do not travel between machines).
//!
//! The bench writes a plan (the member-account calls the auditor made, from the simulator's call log:
//! AssumeRole, then each IAM and CloudTrail call with its parameter) and runs this same bench binary as a
//! child with `IAM_AUDIT_BENCH_REFERENCE=PLAN`. The child, in a process of its own so that its CPU time
//! is its own, does what a straightforward SDK program does: one `SdkConfig` (one HTTP client), one STS
//! client, and per account an IAM and a CloudTrail client built from the assumed role's credentials,
//! its calls made one after another, `concurrency` accounts at once. No pacing, no in-flight cap, no
//! reports, no retries beyond the SDK's defaults: it runs against a simulator without quotas.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;

use futures::StreamExt;

/// One call of the plan: the account, the action (`iam:ListAccessKeys`), the region, its parameter.
pub struct Step {
    pub account: String,
    pub action: String,
    pub region: String,
    pub detail: String,
}

/// Write the plan: per account, its calls in the order they were made. Only calls the reference can
/// make again (member-account IAM and CloudTrail, and AssumeRole) are kept; at most `accounts` accounts.
pub fn write_plan(path: &Path, calls: &[iam_audit::sim::Call], accounts: usize) -> usize {
    let mut by: BTreeMap<String, Vec<&iam_audit::sim::Call>> = BTreeMap::new();
    let mut assumed: BTreeMap<String, &iam_audit::sim::Call> = BTreeMap::new();
    for c in calls {
        if c.action == "sts:AssumeRole" && c.outcome == "ok" {
            let target = c.detail.split(':').nth(4).unwrap_or("").to_string();
            assumed.entry(target).or_insert(c);
        } else if c.action.starts_with("iam:") || c.action.starts_with("cloudtrail:") {
            by.entry(c.account.clone()).or_default().push(c);
        }
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("plan"));
    let mut n = 0;
    for (account, calls) in by
        .iter()
        .filter(|(a, _)| assumed.contains_key(*a))
        .take(accounts)
    {
        let role = &assumed[account].detail;
        writeln!(f, "{account}\tsts:AssumeRole\tus-east-1\t{role}").unwrap();
        n += 1;
        for c in calls {
            writeln!(f, "{account}\t{}\t{}\t{}", c.action, c.region, c.detail).unwrap();
            n += 1;
        }
    }
    n
}

fn read_plan(path: &Path) -> Vec<(String, Vec<Step>)> {
    let mut out: Vec<(String, Vec<Step>)> = Vec::new();
    for line in std::io::BufReader::new(std::fs::File::open(path).expect("plan")).lines() {
        let line = line.unwrap();
        let mut p = line.splitn(4, '\t');
        let step = Step {
            account: p.next().unwrap_or("").into(),
            action: p.next().unwrap_or("").into(),
            region: p.next().unwrap_or("").into(),
            detail: p.next().unwrap_or("").into(),
        };
        match out.last_mut() {
            Some((a, steps)) if *a == step.account => steps.push(step),
            _ => out.push((step.account.clone(), vec![step])),
        }
    }
    out
}

/// In the child: make every call of the plan, `concurrency` accounts at once. Prints the calls made.
pub fn run(plan: &Path, concurrency: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let calls = rt.block_on(async {
        let base = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .load()
            .await;
        let sts = aws_sdk_sts::Client::new(&base);
        let plan = read_plan(plan);
        futures::stream::iter(plan)
            .map(|(_, steps)| account(&base, &sts, steps))
            .buffer_unordered(concurrency)
            .fold(0usize, |n, made| async move { n + made })
            .await
    });
    println!("{calls}");
}

/// One account's calls, one after another; the calls made (answered, whatever the answer).
async fn account(
    base: &aws_config::SdkConfig,
    sts: &aws_sdk_sts::Client,
    steps: Vec<Step>,
) -> usize {
    let mut steps = steps.into_iter();
    let Some(first) = steps.next() else {
        return 0;
    };
    let Ok(assumed) = sts
        .assume_role()
        .role_arn(&first.detail)
        .role_session_name("reference")
        .send()
        .await
    else {
        return 1;
    };
    let Some(c) = assumed.credentials() else {
        return 1;
    };
    let creds = aws_credential_types::Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        None,
        "reference",
    );
    let iam = aws_sdk_iam::Client::from_conf(
        aws_sdk_iam::config::Builder::from(base)
            .credentials_provider(creds.clone())
            .build(),
    );
    let mut trails: BTreeMap<String, aws_sdk_cloudtrail::Client> = BTreeMap::new();
    let mut made = 1;
    for s in steps {
        let d = s.detail.as_str();
        made += 1;
        let _ = match s.action.as_str() {
            "iam:ListUsers" => iam.list_users().send().await.map(|_| ()).map_err(|_| ()),
            "iam:ListAccessKeys" => iam
                .list_access_keys()
                .user_name(d)
                .send()
                .await
                .map(|_| ())
                .map_err(|_| ()),
            "iam:GetAccessKeyLastUsed" => iam
                .get_access_key_last_used()
                .access_key_id(d)
                .send()
                .await
                .map(|_| ())
                .map_err(|_| ()),
            "iam:ListMFADevices" => iam
                .list_mfa_devices()
                .user_name(d)
                .send()
                .await
                .map(|_| ())
                .map_err(|_| ()),
            "iam:GetLoginProfile" => iam
                .get_login_profile()
                .user_name(d)
                .send()
                .await
                .map(|_| ())
                .map_err(|_| ()),
            "iam:GetAccountSummary" => iam
                .get_account_summary()
                .send()
                .await
                .map(|_| ())
                .map_err(|_| ()),
            "iam:ListVirtualMFADevices" => iam
                .list_virtual_mfa_devices()
                .send()
                .await
                .map(|_| ())
                .map_err(|_| ()),
            "iam:GenerateCredentialReport" => iam
                .generate_credential_report()
                .send()
                .await
                .map(|_| ())
                .map_err(|_| ()),
            "iam:GetCredentialReport" => iam
                .get_credential_report()
                .send()
                .await
                .map(|_| ())
                .map_err(|_| ()),
            "iam:ListServiceSpecificCredentials" => iam
                .list_service_specific_credentials()
                .all_users(true)
                .send()
                .await
                .map(|_| ())
                .map_err(|_| ()),
            "iam:ListSigningCertificates" => iam
                .list_signing_certificates()
                .user_name(d)
                .send()
                .await
                .map(|_| ())
                .map_err(|_| ()),
            "iam:ListEntitiesForPolicy" => iam
                .list_entities_for_policy()
                .policy_arn(d)
                .entity_filter(aws_sdk_iam::types::EntityType::User)
                .send()
                .await
                .map(|_| ())
                .map_err(|_| ()),
            "iam:ListSSHPublicKeys" => iam
                .list_ssh_public_keys()
                .user_name(d)
                .send()
                .await
                .map(|_| ())
                .map_err(|_| ()),
            "cloudtrail:LookupEvents" => {
                let trail = trails.entry(s.region.clone()).or_insert_with(|| {
                    aws_sdk_cloudtrail::Client::from_conf(
                        aws_sdk_cloudtrail::config::Builder::from(base)
                            .region(aws_config::Region::new(s.region.clone()))
                            .credentials_provider(creds.clone())
                            .build(),
                    )
                });
                let name = d.strip_prefix("EventName=").unwrap_or(d);
                trail
                    .lookup_events()
                    .lookup_attributes(
                        aws_sdk_cloudtrail::types::LookupAttribute::builder()
                            .attribute_key(aws_sdk_cloudtrail::types::LookupAttributeKey::EventName)
                            .attribute_value(name)
                            .build()
                            .unwrap(),
                    )
                    .max_results(50)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|_| ())
            }
            _ => {
                made -= 1;
                Ok(())
            }
        };
    }
    made
}
