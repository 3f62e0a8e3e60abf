//! The organization's accounts, from Organizations ListAccounts in the management account (or a delegated
//! administrator). Every page is read: ListAccounts returns at most 20 accounts a page and may return an
//! empty page with a NextToken, which is not the end. Each page is retried on throttling
//! (`TooManyRequestsException`) and transient faults beyond the SDK's own retries.

use std::time::Duration;

use crate::pages::{next_page, Next, MAX_PAGES};
use crate::retry::{retry_step, Failure};

/// ListAccounts' largest page.
const ACCOUNTS_PAGE: i32 = 20;

/// One account of the organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub name: String,
    /// ACTIVE, SUSPENDED, PENDING_CLOSURE, ... (the newer `State` when present, else `Status`).
    pub status: String,
    /// The organization's management account: its ARN
    /// (`arn:PARTITION:organizations::MANAGEMENT:account/o-…/ID`) names itself as the management account.
    pub management: bool,
    /// The account's partition, from its ARN (`aws`, `aws-cn`, `aws-us-gov`); empty if the ARN is missing.
    pub partition: String,
}

impl Account {
    pub fn is_active(&self) -> bool {
        self.status == "ACTIVE"
    }
}

/// Every account of the organization, in the order Organizations lists them.
pub async fn list_accounts(
    client: &aws_sdk_organizations::Client,
) -> Result<Vec<Account>, Failure> {
    let mut accounts = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = retry_step(
            Duration::from_secs(1),
            Duration::from_secs(30),
            5,
            || async {
                client
                    .list_accounts()
                    .max_results(ACCOUNTS_PAGE)
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .map_err(|e| Failure::from_sdk(&e))
            },
        )
        .await?;
        for a in page.accounts() {
            let Some(id) = a.id() else {
                return Err(Failure::new(
                    "MalformedResponse",
                    "ListAccounts returned an account without an Id",
                ));
            };
            let status = a
                .state()
                .map(|s| s.as_str().to_string())
                .or_else(|| a.status().map(|s| s.as_str().to_string()))
                .unwrap_or_else(|| "UNKNOWN".to_string());
            let management = a
                .arn()
                .and_then(|arn| arn.split(':').nth(4))
                .is_some_and(|owner| owner == id);
            let partition = a
                .arn()
                .and_then(|arn| arn.split(':').nth(1))
                .unwrap_or("")
                .to_string();
            accounts.push(Account {
                id: id.to_string(),
                name: a.name().unwrap_or("").to_string(),
                status,
                management,
                partition,
            });
        }
        match next_page(
            page.next_token().is_some(),
            page.next_token(),
            token.as_deref(),
        ) {
            Next::Page(next) => token = Some(next),
            Next::Done => return Ok(accounts),
            Next::Stuck => {
                return Err(Failure::new(
                    "MalformedResponse",
                    "ListAccounts returned the same NextToken twice",
                ))
            }
        }
    }
    Err(Failure::new(
        "MalformedResponse",
        format!("ListAccounts did not finish after {MAX_PAGES} pages"),
    ))
}
