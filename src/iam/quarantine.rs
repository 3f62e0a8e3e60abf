//! The users AWS has quarantined. When AWS finds an IAM user's access key exposed (in a public repository,
//! say), it attaches one of its compromised-key quarantine policies to that user and usually opens a
//! support case; the policy denies the actions attackers reach for first, not everything. A user with one
//! attached is `key_quarantined_by_aws` (Critical).
//!
//! ListPolicies (`Scope=AWS`, `OnlyAttached=true`) once per account names every AWS managed policy attached
//! there; only where a quarantine policy is among them does ListEntitiesForPolicy (`EntityFilter=User`)
//! name its users. That is one call in an account without one, where asking each policy's users would be
//! four. An account whose account summary shows no IAM user is not asked at all. Both actions are
//! optional: refused, the accounts report says what was not read and what to allow.

use std::collections::BTreeMap;

use aws_sdk_iam::types::{EntityType, PolicyScopeType, SummaryKeyType};

use crate::pages::Pager;
use crate::retry::Failure;
use crate::session::Session;

use super::calls::{grant, note, Summary};

/// AWS's compromised-key quarantine policies, oldest first (AWS managed policy reference:
/// <https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSCompromisedKeyQuarantineV3.html>).
pub(crate) const POLICIES: [&str; 4] = [
    "AWSCompromisedKeyQuarantine",
    "AWSCompromisedKeyQuarantineV2",
    "AWSCompromisedKeyQuarantineV3",
    "AWSCompromisedKeyQuarantineV4",
];

const LIST_POLICIES: &str = "iam:ListPolicies";
const LIST_ENTITIES: &str = "iam:ListEntitiesForPolicy";

/// The quarantined users of an account: user name → the quarantine policies attached to it. `Err` when
/// it could not be told (noted in the accounts report).
pub(crate) type Quarantined = Result<BTreeMap<String, Vec<String>>, ()>;

/// Which users of the account carry a quarantine policy.
pub(crate) async fn read(session: &Session, summary: &Summary) -> Quarantined {
    let no_users = summary
        .as_ref()
        .is_ok_and(|s| s.get(&SummaryKeyType::Users) == Some(&0));
    if no_users {
        return Ok(BTreeMap::new());
    }
    let failed = |action: &str, f: &Failure| {
        let what = "users quarantined by AWS (AWSCompromisedKeyQuarantine policies) were not read";
        note(session, action, f, &format!("{what}; {}", grant(f, action)));
    };
    let attached = match attached_quarantine_policies(session).await {
        Ok(a) => a,
        Err(f) => {
            failed(LIST_POLICIES, &f);
            return Err(());
        }
    };
    let mut by_user: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, arn) in attached {
        match users_of(session, &arn).await {
            Ok(users) => {
                for user in users {
                    by_user.entry(user).or_default().push(name.clone());
                }
            }
            Err(f) => {
                failed(LIST_ENTITIES, &f);
                return Err(());
            }
        }
    }
    Ok(by_user)
}

/// (name, ARN) of the quarantine policies attached to anything in the account.
async fn attached_quarantine_policies(session: &Session) -> Result<Vec<(String, String)>, Failure> {
    let iam = session.iam();
    let mut found = Vec::new();
    let mut pager = Pager::new(session.settings().keys.max_pages);
    while let Some(page) = pager
        .next(|marker| async move {
            iam.optional(LIST_POLICIES, |c, o| {
                c.list_policies()
                    .scope(PolicyScopeType::Aws)
                    .only_attached(true)
                    .max_items(1000)
                    .set_marker(marker.clone())
                    .customize()
                    .config_override(o)
                    .send()
            })
            .await
            .map(|p| {
                let (more, next) = (p.is_truncated(), p.marker().map(str::to_string));
                (p, more, next)
            })
        })
        .await
    {
        let page = page.map_err(|e| e.into_failure("ListPolicies"))?;
        for p in page.policies() {
            let (Some(name), Some(arn)) = (p.policy_name(), p.arn()) else {
                continue;
            };
            if POLICIES.contains(&name) && p.attachment_count().unwrap_or(1) > 0 {
                found.push((name.to_string(), arn.to_string()));
            }
        }
    }
    Ok(found)
}

/// The users a policy is attached to.
async fn users_of(session: &Session, arn: &str) -> Result<Vec<String>, Failure> {
    let iam = session.iam();
    let mut users = Vec::new();
    let mut pager = Pager::new(session.settings().keys.max_pages);
    while let Some(page) = pager
        .next(|marker| async move {
            iam.optional(LIST_ENTITIES, |c, o| {
                c.list_entities_for_policy()
                    .policy_arn(arn)
                    .entity_filter(EntityType::User)
                    .set_marker(marker.clone())
                    .customize()
                    .config_override(o)
                    .send()
            })
            .await
            .map(|p| {
                let (more, next) = (p.is_truncated(), p.marker().map(str::to_string));
                (p, more, next)
            })
        })
        .await
    {
        let page = page.map_err(|e| e.into_failure("ListEntitiesForPolicy"))?;
        users.extend(
            page.policy_users()
                .iter()
                .filter_map(|u| u.user_name().map(str::to_string)),
        );
    }
    Ok(users)
}
