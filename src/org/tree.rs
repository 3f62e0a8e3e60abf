//! The OU tree, walked to list the organization (see `listing`): every parent's OUs and accounts, page
//! by page, `TREE_CONCURRENCY` requests at once, each page of accounts handed to the merger as it comes;
//! then walked again to confirm it.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures::stream::FuturesUnordered;
use futures::StreamExt;

use super::merger::{lock, Merger};
use super::{
    account, every_page, id_and_name, next_listing_page, Account, ListingError, Place, PAGE,
};
use crate::pages::Pager;
use crate::retry::Failure;

/// Requests of the OU tree walk in flight at once (besides ListAccounts' one).
const TREE_CONCURRENCY: usize = 8;

/// Levels below a root walked at most (AWS allows five levels of OUs).
const TREE_DEPTH: usize = 8;

/// Walks of the OU tree at most: one, then others until one finds nothing new (see `walk`).
const TREE_WALKS: usize = 3;

/// One request of the tree walk, and what it read.
enum Job {
    /// The OUs under a parent, one page (`pager` knows the token).
    Ous(Arc<Place>, Pager, usize),
    /// The accounts under a parent, one page.
    Accounts(Arc<Place>, Pager),
}

type Children = Vec<(String, String)>;

enum Read {
    Ous(
        Arc<Place>,
        Pager,
        usize,
        Option<Result<Children, ListingError>>,
    ),
    Accounts(
        Arc<Place>,
        Pager,
        Option<Result<Vec<Account>, ListingError>>,
    ),
}

/// The OU tree, walked from each root (see `walk_once`), then walked again to confirm it: when a walk
/// finds no account the earlier walks had not, and ListAccounts has named none that the tree cannot
/// place, the tree holds the whole organization and `confirmed` is told, so that ListAccounts need not
/// read its remaining pages (at 20 accounts a page, one after another, it is the slowest way to list a
/// large organization). An account moved between OUs while a walk passed them can be missed by that
/// walk, which is why one walk is not enough; an account found by a later walk starts another, up to
/// `TREE_WALKS`. Returns whether the tree was confirmed.
pub(super) async fn walk(
    client: &aws_sdk_organizations::Client,
    max_pages: usize,
    merger: &Mutex<Merger>,
) -> Result<bool, ListingError> {
    let roots = match roots(client, max_pages).await {
        Ok(roots) => roots,
        Err(e) => {
            let mut m = lock(merger);
            m.answered(true, Err(e.clone()));
            m.tree_closed();
            return Err(e);
        }
    };
    lock(merger).answered(true, Ok(()));
    let mut confirmed = false;
    for round in 0..TREE_WALKS {
        let new = match walk_once(client, max_pages, merger, &roots).await {
            Ok(new) => new,
            Err(e) => {
                lock(merger).tree_closed();
                return Err(e);
            }
        };
        // The first walk finds everything it finds; a later one that finds nothing new agrees with it.
        if round > 0 && new == 0 {
            confirmed = lock(merger).held.is_empty();
            break;
        }
    }
    lock(merger).tree_closed();
    Ok(confirmed)
}

/// The organization's roots.
async fn roots(
    client: &aws_sdk_organizations::Client,
    max_pages: usize,
) -> Result<Vec<(String, String)>, ListingError> {
    every_page("organizations:ListRoots", max_pages, |token| async move {
        let p = client
            .list_roots()
            .max_results(PAGE)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| Failure::from_sdk(&e))?;
        let roots = p
            .roots()
            .iter()
            .map(|r| id_and_name("ListRoots", r.id(), r.name()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((roots, p.next_token))
    })
    .await
}

/// One walk of the tree: every parent's OUs and accounts, page by page, at most `TREE_CONCURRENCY`
/// requests at once, the OU listings first (they reveal more parents). Each page of accounts is sent on
/// as it comes. Returns how many accounts no earlier walk or ListAccounts page had named.
async fn walk_once(
    client: &aws_sdk_organizations::Client,
    max_pages: usize,
    merger: &Mutex<Merger>,
    roots: &[(String, String)],
) -> Result<usize, ListingError> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut ous: VecDeque<Job> = VecDeque::new();
    let mut accounts: VecDeque<Job> = VecDeque::new();
    for (id, name) in roots {
        if seen.insert(id.clone()) {
            let place = Arc::new(Place {
                // AWS names every root "Root"; keep that name if an answer leaves it out.
                path: if name.is_empty() {
                    "Root".into()
                } else {
                    name.clone()
                },
                ids: vec![id.clone()],
            });
            ous.push_back(Job::Ous(place.clone(), Pager::new(max_pages), 1));
            accounts.push_back(Job::Accounts(place, Pager::new(max_pages)));
        }
    }
    let mut new = 0;
    let mut running: FuturesUnordered<Pin<Box<dyn Future<Output = Read> + Send + '_>>> =
        FuturesUnordered::new();
    loop {
        while running.len() < TREE_CONCURRENCY {
            let Some(job) = ous.pop_front().or_else(|| accounts.pop_front()) else {
                break;
            };
            running.push(Box::pin(read(client, job)));
        }
        let Some(done) = running.next().await else {
            return Ok(new);
        };
        match done {
            Read::Ous(parent, pager, depth, Some(Ok(children))) => {
                for (id, name) in children {
                    // A cycle would be a garbled answer; never walk an OU twice.
                    if depth < TREE_DEPTH && seen.insert(id.clone()) {
                        let mut ids = parent.ids.clone();
                        ids.push(id);
                        let place = Arc::new(Place {
                            path: format!("{}/{name}", parent.path),
                            ids,
                        });
                        ous.push_back(Job::Ous(place.clone(), Pager::new(max_pages), depth + 1));
                        accounts.push_back(Job::Accounts(place, Pager::new(max_pages)));
                    }
                }
                ous.push_back(Job::Ous(parent, pager, depth));
            }
            Read::Accounts(parent, pager, Some(Ok(found))) => {
                let mut m = lock(merger);
                for a in found {
                    new += usize::from(m.placed(a, &parent));
                }
                accounts.push_back(Job::Accounts(parent, pager));
            }
            // The parent's listing has ended.
            Read::Ous(_, _, _, None) | Read::Accounts(_, _, None) => {}
            Read::Ous(_, _, _, Some(Err(e))) | Read::Accounts(_, _, Some(Err(e))) => return Err(e),
        }
    }
}

/// One page of a job; `None` when its listing had ended.
async fn read(client: &aws_sdk_organizations::Client, job: Job) -> Read {
    match job {
        Job::Ous(parent, mut pager, depth) => {
            let parent_id = parent.ids.last().map(String::as_str).unwrap_or_default();
            let r = next_listing_page(
                &mut pager,
                "organizations:ListOrganizationalUnitsForParent",
                |token| async move {
                    let p = client
                        .list_organizational_units_for_parent()
                        .parent_id(parent_id)
                        .max_results(PAGE)
                        .set_next_token(token)
                        .send()
                        .await
                        .map_err(|e| Failure::from_sdk(&e))?;
                    let ous = p
                        .organizational_units()
                        .iter()
                        .map(|ou| {
                            id_and_name("ListOrganizationalUnitsForParent", ou.id(), ou.name())
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok((ous, p.next_token))
                },
            )
            .await;
            Read::Ous(parent, pager, depth, r)
        }
        Job::Accounts(parent, mut pager) => {
            let parent_id = parent.ids.last().map(String::as_str).unwrap_or_default();
            let r = next_listing_page(
                &mut pager,
                "organizations:ListAccountsForParent",
                |token| async move {
                    let p = client
                        .list_accounts_for_parent()
                        .parent_id(parent_id)
                        .max_results(PAGE)
                        .set_next_token(token)
                        .send()
                        .await
                        .map_err(|e| Failure::from_sdk(&e))?;
                    let accounts = p
                        .accounts()
                        .iter()
                        .map(account)
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok((accounts, p.next_token))
                },
            )
            .await;
            Read::Accounts(parent, pager, r)
        }
    }
}
