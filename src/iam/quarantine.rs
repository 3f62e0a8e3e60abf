//! The users AWS has quarantined. When AWS finds an IAM user's access key exposed (in a public repository,
//! say), it attaches one of its compromised-key quarantine policies to that user and usually opens a
//! support case; the policy denies the actions attackers reach for first, not everything. A user with one
//! attached is `key_quarantined_by_aws` (Critical).
//!
//! ListEntitiesForPolicy (`EntityFilter=User`) once per quarantine policy per account, the first alone
//! and the other two side by side: the action design §1 names for this. An account whose account summary shows no IAM user is not
//! asked at all. The action is optional: refused, the accounts report says what was not read and what to
//! allow, and the learning of `limits::optional` stops the other two asks.

use std::collections::BTreeMap;

use aws_sdk_iam::types::{EntityType, SummaryKeyType};

use crate::pages::Pager;
use crate::retry::Failure;
use crate::session::Session;

use super::calls::{grant, note, Summary};

/// AWS's compromised-key quarantine policies in use, the ones issue 27 names (AWS managed policy reference:
/// <https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSCompromisedKeyQuarantineV3.html>).
/// The first version, `AWSCompromisedKeyQuarantine`, is left out with the issue: asking it would be a
/// fourth call in every account, and a user still carrying it alone is missed (docs/credentials.md).
pub(crate) const POLICIES: [&str; 3] = [
    "AWSCompromisedKeyQuarantineV2",
    "AWSCompromisedKeyQuarantineV3",
    "AWSCompromisedKeyQuarantineV4",
];

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
    let partition = session.partition();
    let ask = |name: &'static str| async move {
        let arn = format!("arn:{partition}:iam::aws:policy/{name}");
        (name, users_of(session, &arn).await)
    };
    // The first alone: where it is refused, the other two are not asked (one AccessDenied, not three).
    let mut answers = vec![ask(POLICIES[0]).await];
    if answers[0].1.as_ref().is_ok()
        || answers[0]
            .1
            .as_ref()
            .is_err_and(|f| f.code == "NoSuchEntity")
    {
        answers.extend(futures::future::join_all(POLICIES[1..].iter().map(|n| ask(n))).await);
    }
    let mut by_user: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, users) in answers {
        match users {
            Ok(users) => {
                for user in users {
                    by_user.entry(user).or_default().push(name.to_string());
                }
            }
            // A policy this partition does not have: no user can carry it.
            Err(f) if f.code == "NoSuchEntity" => {}
            Err(f) => {
                let what =
                    "users quarantined by AWS (AWSCompromisedKeyQuarantine policies) were not read";
                let consequence = format!("{what}; {}", grant(&f, LIST_ENTITIES));
                note(session, LIST_ENTITIES, &f, &consequence);
                return Err(());
            }
        }
    }
    Ok(by_user)
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
