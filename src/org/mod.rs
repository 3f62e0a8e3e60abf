//! The organization's accounts, from Organizations ListAccounts in the management account (or a delegated
//! administrator), and where each sits in the OU tree (ListRoots, ListOrganizationalUnitsForParent,
//! ListAccountsForParent); `listing` finds them as a stream, both sources side by side, so that the audit
//! starts with the first page. Every page is read: these APIs return at most 20 items a page and may
//! return an empty page with a NextToken, which is not the end. Each page is retried on throttling
//! (`TooManyRequestsException`) and transient faults beyond the SDK's own retries. Here: the account,
//! its place, the account filters, and the plain listing `check` uses.

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

mod listing;
mod merger;
mod tree;

pub use listing::{Found, Listed, Listing};

use crate::config::{glob, Settings};
use crate::pages::Pager;
use crate::record::{AccountRow, AuditStatus};
use crate::retry::{retry_step, Failure};

/// The Organizations listings' largest page.
pub(crate) const PAGE: i32 = 20;

/// One account of the organization.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Account {
    pub id: String,
    pub name: String,
    /// ACTIVE, SUSPENDED, PENDING_CLOSURE, ... (the newer `State` when present, else `Status`). The
    /// states AWS documents are static strings: thousands of accounts may wait in the listing's queue.
    pub status: Cow<'static, str>,
    /// The organization's management account: its ARN
    /// (`arn:PARTITION:organizations::MANAGEMENT:account/o-…/ID`) names itself as the management account.
    pub management: bool,
    /// The account's partition, from its ARN (`aws`, `aws-cn`, `aws-us-gov`, `aws-iso`, `aws-iso-b`);
    /// empty if the ARN is missing or names another.
    pub partition: &'static str,
    /// The organization's id (`o-…`), from the ARN; empty if the ARN is missing. One copy shared by
    /// the accounts the listing sends on.
    pub org_id: Arc<str>,
    /// Where the account sits, when the OU tree was read (shared by the accounts of one OU).
    pub place: Option<Arc<Place>>,
}

/// An account's place in the OU tree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Place {
    /// The names from the root down to the account's parent, joined by `/`: `Root/Workloads/Prod`.
    pub path: String,
    /// The ids along that path: the root's (`r-…`) then each OU's (`ou-…`).
    pub ids: Vec<String>,
}

impl Account {
    pub fn is_active(&self) -> bool {
        self.status == "ACTIVE"
    }

    /// The accounts report's `ou_path`: empty when the OU tree was not read.
    pub fn ou_path(&self) -> &str {
        self.place.as_ref().map_or("", |p| p.path.as_str())
    }

    /// The closing row of this account when it was not audited (not active, or never reached).
    pub fn unaudited(&self, status: AuditStatus, error: String) -> AccountRow {
        AccountRow::unaudited(
            &self.id,
            &self.name,
            &self.status,
            self.ou_path(),
            status,
            error,
        )
    }

    /// Whether the account filters select it. An account is included when no include filter is set, or
    /// when its id or name is in `include_accounts` or its OU is under one of `include_ous`; an exclude
    /// filter wins over any include.
    pub fn selected(&self, settings: &Settings) -> bool {
        let by_account = |entries: &[String]| {
            entries.iter().any(|e| {
                if e.len() == 12 && e.chars().all(|c| c.is_ascii_digit()) {
                    *e == self.id
                } else {
                    glob(e, &self.name)
                }
            })
        };
        let by_ou = |entries: &[String]| {
            let Some(place) = &self.place else {
                return false;
            };
            entries.iter().any(|e| {
                if e.starts_with("ou-") || e.starts_with("r-") {
                    place.ids.iter().any(|id| id == e)
                } else {
                    // The OU itself or any OU above it: `Root/Prod` covers `Root/Prod/EU`.
                    let mut prefix = String::new();
                    place.path.split('/').any(|name| {
                        if !prefix.is_empty() {
                            prefix.push('/');
                        }
                        prefix.push_str(name);
                        glob(e, &prefix)
                    })
                }
            })
        };
        let no_include =
            settings.include_accounts().is_empty() && settings.include_ous().is_empty();
        let included =
            no_include || by_account(settings.include_accounts()) || by_ou(settings.include_ous());
        included && !by_account(settings.exclude_accounts()) && !by_ou(settings.exclude_ous())
    }
}

/// A listing that failed: the action and the AWS failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingError {
    pub action: &'static str,
    pub failure: Failure,
}

impl std::fmt::Display for ListingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.action, self.failure)
    }
}

/// Each page of a listing is retried on throttling (`TooManyRequestsException`) and transient faults
/// beyond the SDK's own retries.
pub(super) async fn page<T, Fut>(fetch: impl Fn() -> Fut) -> Result<T, Failure>
where
    Fut: Future<Output = Result<T, Failure>>,
{
    retry_step(Duration::from_secs(1), Duration::from_secs(30), 5, fetch).await
}

/// The next page of one paginated Organizations listing, through `pager`: `fetch(token)` reads a page (its
/// items and its NextToken), retried by `page`; the error that ends the listing names `action`; `None` once
/// the listing has ended.
pub(super) async fn next_listing_page<T, F, Fut>(
    pager: &mut Pager,
    action: &'static str,
    fetch: F,
) -> Option<Result<Vec<T>, ListingError>>
where
    F: Fn(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>), Failure>>,
{
    let fetch = &fetch;
    let read = pager
        .next(|token: Option<String>| async move {
            let (items, next) = page(|| fetch(token.clone())).await?;
            Ok((items, next.is_some(), next))
        })
        .await?;
    Some(read.map_err(|e| ListingError {
        action,
        failure: e.into_failure(action.trim_start_matches("organizations:")),
    }))
}

/// Every item of one paginated Organizations listing (see `next_listing_page`).
pub(super) async fn every_page<T, F, Fut>(
    action: &'static str,
    max_pages: usize,
    fetch: F,
) -> Result<Vec<T>, ListingError>
where
    F: Fn(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>), Failure>>,
{
    let mut pager = Pager::new(max_pages);
    let mut items = Vec::new();
    while let Some(page) = next_listing_page(&mut pager, action, &fetch).await {
        items.extend(page?);
    }
    Ok(items)
}

/// Every account of the organization, in the order Organizations lists them.
pub async fn list_accounts(
    client: &aws_sdk_organizations::Client,
    max_pages: usize,
) -> Result<Vec<Account>, ListingError> {
    every_page(LIST_ACCOUNTS, max_pages, |token| {
        accounts_page(client, token)
    })
    .await
}

pub(super) const LIST_ACCOUNTS: &str = "organizations:ListAccounts";

/// One page of ListAccounts: its accounts and its NextToken.
pub(super) async fn accounts_page(
    client: &aws_sdk_organizations::Client,
    token: Option<String>,
) -> Result<(Vec<Account>, Option<String>), Failure> {
    let page = client
        .list_accounts()
        .max_results(PAGE)
        .set_next_token(token)
        .send()
        .await
        .map_err(|e| Failure::from_sdk(&e))?;
    let accounts = page
        .accounts()
        .iter()
        .map(account)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((accounts, page.next_token))
}

fn account(a: &aws_sdk_organizations::types::Account) -> Result<Account, Failure> {
    let Some(id) = a.id() else {
        return Err(Failure::new(
            "MalformedResponse",
            "ListAccounts returned an account without an Id",
        ));
    };
    let status = match a
        .state()
        .map(|s| s.as_str())
        .or_else(|| a.status().map(|s| s.as_str()))
    {
        None => Cow::Borrowed("UNKNOWN"),
        Some(s) => ["ACTIVE", "SUSPENDED", "PENDING_CLOSURE", "CLOSED"]
            .into_iter()
            .find(|known| *known == s)
            .map_or_else(|| Cow::Owned(s.to_string()), Cow::Borrowed),
    };
    let arn = a.arn().unwrap_or("");
    let partition = match arn.split(':').nth(1).unwrap_or("") {
        "aws" => "aws",
        "aws-cn" => "aws-cn",
        "aws-us-gov" => "aws-us-gov",
        "aws-iso" => "aws-iso",
        "aws-iso-b" => "aws-iso-b",
        _ => "",
    };
    Ok(Account {
        id: id.to_string(),
        name: a.name().unwrap_or("").to_string(),
        status,
        management: arn.split(':').nth(4) == Some(id),
        partition,
        // arn:PARTITION:organizations::MANAGEMENT:account/o-xxxxxxxxxx/ACCOUNT
        org_id: arn
            .split(":account/")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .filter(|o| o.starts_with("o-"))
            .unwrap_or("")
            .into(),
        place: None,
    })
}

/// A root's or an OU's id and name; one without an id is a garbled answer.
fn id_and_name(
    listing: &str,
    id: Option<&str>,
    name: Option<&str>,
) -> Result<(String, String), Failure> {
    match id {
        Some(id) if !id.is_empty() => Ok((id.to_string(), name.unwrap_or("").to_string())),
        _ => Err(Failure::new(
            "MalformedResponse",
            format!("{listing} returned an entry without an Id"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn settings(inc: &[&str], exc: &[&str], inc_ous: &[&str], exc_ous: &[&str]) -> Settings {
        let c = crate::config::Config {
            role: Some("IAMAuditRole".into()),
            ..Default::default()
        };
        let now = chrono::Utc
            .with_ymd_and_hms(2026, 3, 5, 15, 30, 22)
            .unwrap();
        let mut s = Settings::resolve(c, now).unwrap();
        let own = |l: &[&str]| Some(l.iter().map(|x| x.to_string()).collect());
        s.keys.include_accounts = own(inc);
        s.keys.exclude_accounts = own(exc);
        s.keys.include_ous = own(inc_ous);
        s.keys.exclude_ous = own(exc_ous);
        s
    }

    fn acct(id: &str, name: &str, path: &str, ids: &[&str]) -> Account {
        Account {
            id: id.into(),
            name: name.into(),
            status: "ACTIVE".into(),
            place: (!path.is_empty()).then(|| {
                Arc::new(Place {
                    path: path.into(),
                    ids: ids.iter().map(|x| x.to_string()).collect(),
                })
            }),
            ..Default::default()
        }
    }

    #[test]
    fn account_filters_by_id_and_name_glob() {
        let a = |id, name| acct(id, name, "", &[]);
        let s = settings(&[], &[], &[], &[]);
        assert!(a("111111111111", "anything").selected(&s));
        let s = settings(&["prod-*", "222222222222"], &["prod-legacy?"], &[], &[]);
        assert!(a("111111111111", "prod-eu").selected(&s));
        assert!(a("222222222222", "dev").selected(&s));
        assert!(!a("333333333333", "dev").selected(&s));
        assert!(!a("444444444444", "prod-legacy1").selected(&s));
        assert!(a("444444444444", "prod-legacy12").selected(&s));
    }

    #[test]
    fn ou_filters_cover_the_ous_below() {
        let eu = acct(
            "111111111111",
            "eu",
            "Root/Workloads/Prod/EU",
            &[
                "r-ab12",
                "ou-ab12-work0000",
                "ou-ab12-prod0000",
                "ou-ab12-eu000000",
            ],
        );
        let dev = acct(
            "222222222222",
            "dev",
            "Root/Workloads/Dev",
            &["r-ab12", "ou-ab12-work0000", "ou-ab12-dev00000"],
        );
        let top = acct("333333333333", "mgmt", "Root", &["r-ab12"]);
        let unplaced = acct("444444444444", "new", "", &[]);
        let pick = |s: &Settings| {
            [&eu, &dev, &top, &unplaced]
                .iter()
                .filter(|a| a.selected(s))
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
        };
        // By id: the OU and everything below it.
        assert_eq!(
            pick(&settings(&[], &[], &["ou-ab12-work0000"], &[])),
            ["eu", "dev"]
        );
        // By path: the OU itself or any OU above it matches the glob.
        assert_eq!(
            pick(&settings(&[], &[], &["Root/Workloads/Prod"], &[])),
            ["eu"]
        );
        assert_eq!(pick(&settings(&[], &[], &["*/Dev"], &[])), ["dev"]);
        assert_eq!(
            pick(&settings(&[], &[], &["Root"], &[])),
            ["eu", "dev", "mgmt"]
        );
        // Includes add up; excludes win; an account outside the tree is only left out by an include.
        assert_eq!(
            pick(&settings(&["new"], &[], &["*/Dev"], &[])),
            ["dev", "new"]
        );
        assert_eq!(
            pick(&settings(&[], &[], &[], &["Root/Workloads"])),
            ["mgmt", "new"]
        );
        assert_eq!(
            pick(&settings(&["eu", "dev"], &[], &[], &["ou-ab12-dev00000"])),
            ["eu"]
        );
    }
}
