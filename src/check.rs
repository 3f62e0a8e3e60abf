//! `iam-audit check`: before a long audit, find out which accounts the audit could not fully read. For each
//! ACTIVE account (or the one given with `--account`) it assumes the role and makes one small read of each
//! kind — ListUsers (1 user) and LookupEvents (1 event per region) — and reports what failed, with the AWS
//! error code. It calls only actions of the audit's least-privilege policy and writes no file. With
//! `--security-hub` it also sends each account an empty `BatchImportFindings` (which imports nothing) to
//! see whether the hub is on and the role may import.

use std::sync::Arc;

use futures::StreamExt;

use crate::aws::Aws;
use crate::config::ConfigError;
use crate::config::Settings;
use crate::error::AuditError;
use crate::org::{self, Account};
use crate::retry::Failure;
use crate::session::Session;

/// What one account allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckRow {
    pub account: Account,
    pub assume_role: Result<(), Failure>,
    pub iam: Result<(), Failure>,
    /// One result per configured region.
    pub cloudtrail: Vec<(String, Result<(), Failure>)>,
    /// With `--security-hub`: what an empty import proved (`Ok`: what could be said, which is never
    /// that the role may import), or the refusal that shows it may not.
    pub security_hub: Option<Result<String, Failure>>,
}

impl CheckRow {
    pub fn ok(&self) -> bool {
        self.assume_role.is_ok()
            && self.iam.is_ok()
            && self.cloudtrail.iter().all(|(_, r)| r.is_ok())
            && self.security_hub.as_ref().is_none_or(Result::is_ok)
    }
}

fn not_run() -> Result<(), Failure> {
    Err(Failure::new("NotChecked", "the role could not be assumed"))
}

async fn check_account(aws: &Aws, settings: Arc<Settings>, account: Account) -> CheckRow {
    let regions = settings.regions.clone();
    let settings_hub = settings.keys.security_hub;
    let session = Session::new(aws, settings, account.clone());
    if let Err(f) = session.assume().await {
        return CheckRow {
            account,
            assume_role: Err(f),
            iam: not_run(),
            cloudtrail: regions.into_iter().map(|r| (r, not_run())).collect(),
            security_hub: settings_hub.then(|| Err(not_run().unwrap_err())),
        };
    }
    let iam = session
        .iam()
        .call("iam:ListUsers", |c, o| {
            c.list_users()
                .max_items(1)
                .customize()
                .config_override(o)
                .send()
        })
        .await
        .map(|_| ());
    let s = session.settings();
    let attribute = aws_sdk_cloudtrail::types::LookupAttribute::builder()
        .attribute_key(aws_sdk_cloudtrail::types::LookupAttributeKey::EventName)
        .attribute_value(
            s.keys
                .event_names
                .first()
                .map(String::as_str)
                .unwrap_or("CreateUser"),
        )
        .build()
        .expect("key and value are set");
    let (start, end) = (
        aws_smithy_types::DateTime::from_secs(s.start.timestamp()),
        aws_smithy_types::DateTime::from_secs(s.end.timestamp()),
    );
    let mut cloudtrail = Vec::new();
    for (region, api) in session.cloudtrail() {
        let r = api
            .call("cloudtrail:LookupEvents", |c, o| {
                c.lookup_events()
                    .lookup_attributes(attribute.clone())
                    .start_time(start)
                    .end_time(end)
                    .max_results(1)
                    .customize()
                    .config_override(o)
                    .send()
            })
            .await
            .map(|_| ());
        cloudtrail.push((region.to_string(), r));
    }
    let security_hub = if settings_hub {
        let region = s
            .keys
            .security_hub_region
            .clone()
            .unwrap_or_else(|| s.keys.region.clone());
        let target = crate::send::AwsTarget::new(aws);
        Some(crate::send::securityhub::probe(&target, session.credentials(), &region).await)
    } else {
        None
    };
    CheckRow {
        account,
        assume_role: Ok(()),
        iam,
        cloudtrail,
        security_hub,
    }
}

/// Check every ACTIVE account, or only `only` (an account id). Rows come back in account order.
pub async fn check(settings: Settings, only: Option<String>) -> Result<Vec<CheckRow>, AuditError> {
    let aws = Aws::connect(&settings).await?;
    let accounts = match org::list_accounts(&aws.organizations(), settings.keys.max_pages).await {
        Ok(all) => match &only {
            Some(id) => match all.into_iter().find(|a| &a.id == id) {
                Some(a) => vec![a],
                None => {
                    return Err(AuditError::Config(ConfigError::Invalid {
                        key: "account",
                        message: format!("{id} is not an account of this organization"),
                    }))
                }
            },
            None => all.into_iter().filter(Account::is_active).collect(),
        },
        // A member-account operator may check one account without organizations:ListAccounts.
        Err(f) => match &only {
            Some(id) => {
                tracing::warn!(
                    "cannot list the organization's accounts ({f}); checking {id} alone"
                );
                vec![Account {
                    id: id.clone(),
                    name: String::new(),
                    status: "UNKNOWN".into(),
                    management: false,
                    partition: "",
                    org_id: "".into(),
                    place: None,
                }]
            }
            None => return Err(AuditError::ListAccounts { failure: f.failure }),
        },
    };
    let settings = Arc::new(settings);
    let mut rows: Vec<CheckRow> = futures::stream::iter(accounts)
        .map(|a| {
            let (aws, settings) = (aws.clone(), settings.clone());
            async move { check_account(&aws, settings, a).await }
        })
        .buffer_unordered(settings.keys.concurrency)
        .collect()
        .await;
    rows.sort_by(|a, b| a.account.id.cmp(&b.account.id));
    Ok(rows)
}
