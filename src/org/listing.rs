//! The organization's accounts as they are found, so that auditing starts with the first page instead of
//! after the last: Organizations returns at most 20 accounts a page, so 10,000 accounts are 500 pages,
//! which one after another take 50 s at 100 ms a round trip and two minutes at 250 ms.
//!
//! Two sources run side by side. ListAccounts, page after page, is the authority on who is in the
//! organization. The OU tree (ListRoots, then ListOrganizationalUnitsForParent and ListAccountsForParent
//! for every parent) also names every account, with its place, and its parents are read
//! `TREE_CONCURRENCY` requests at a time: a tree of a few OUs lists the organization several times faster
//! than ListAccounts can. An account is sent on once, as soon as the tree places it; one that only
//! ListAccounts has named waits until the tree places it or the walk ends (an account moved during the
//! walk), so that every account's `ou_path` is known when it is audited. Without the tree (`ou_paths =
//! false`), or once it could not be read, ListAccounts' accounts go on at once.
//!
//! Accounts that are not ACTIVE come with `Found::Complete`, at the end: they are reported, never
//! audited, and a watcher hears of the organization's size before their rows.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{account, id_and_name, Account, ListingError, Place, PAGE};
use crate::pages::Pager;
use crate::retry::{retry_step, Failure};

/// Requests of the OU tree walk in flight at once (besides ListAccounts' one).
const TREE_CONCURRENCY: usize = 8;

/// Levels below a root walked at most (AWS allows five levels of OUs).
const TREE_DEPTH: usize = 8;

/// Walks of the OU tree at most: one, then others until one finds nothing new (see `walk`).
const TREE_WALKS: usize = 3;

/// What the listing sends on, in order.
#[derive(Debug)]
pub enum Found {
    /// An account, each once, with its place when the tree has it.
    Account(Account),
    /// Every account has been found; those not ACTIVE come with it.
    Complete(Listed),
}

/// How the listing ended.
#[derive(Debug, Default)]
pub struct Listed {
    /// Every account either source named.
    pub ids: HashSet<String>,
    /// Of them, ACTIVE.
    pub active: usize,
    /// The accounts not ACTIVE (SUSPENDED, PENDING_CLOSURE, ...): reported, never audited.
    pub inactive: Vec<Account>,
    /// The OU tree could not be read (or only in part): the accounts it did not place have no `ou_path`.
    pub tree_error: Option<ListingError>,
    /// A listing failed part-way: ListAccounts (or, under OU filters, the tree). The accounts found
    /// before it were sent on; the others are unknown.
    pub cut: Option<ListingError>,
    /// The run was stopped before the listing ended.
    pub interrupted: bool,
}

/// The listing, running: its accounts come through `next`.
pub struct Listing {
    rx: mpsc::UnboundedReceiver<Found>,
    first: Option<oneshot::Receiver<First>>,
}

/// The listing's first answers: the organization's id (from the first account's ARN), or why it cannot
/// be listed.
type First = Result<Option<String>, ListingError>;

/// Each page of a listing is retried on throttling (`TooManyRequestsException`) and transient faults
/// beyond the SDK's own retries.
async fn page<T, Fut>(fetch: impl Fn() -> Fut) -> Result<T, Failure>
where
    Fut: Future<Output = Result<T, Failure>>,
{
    retry_step(Duration::from_secs(1), Duration::from_secs(30), 5, fetch).await
}

impl Listing {
    /// Start listing. `tree`: walk the OU tree too; `tree_required`: an OU filter needs it, so its
    /// failure ends the listing. `stop` ends the listing early (the run's abort).
    pub fn start(
        client: aws_sdk_organizations::Client,
        max_pages: usize,
        tree: bool,
        tree_required: bool,
        stop: CancellationToken,
    ) -> Listing {
        let (tx, rx) = mpsc::unbounded_channel();
        let (first_tx, first_rx) = oneshot::channel();
        tokio::spawn(async move {
            let merger = Mutex::new(Merger {
                tx,
                seen: HashSet::new(),
                held: HashMap::new(),
                named: 0,
                tree_open: tree,
                tree_required,
                inactive: Vec::new(),
                active: 0,
                first: Some(first_tx),
                org_id: None,
                tree_first: !tree,
                list_first: false,
            });
            // Once the tree is confirmed, ListAccounts' remaining pages can only repeat it.
            let confirmed = tokio::sync::Notify::new();
            let accounts = async {
                tokio::select! {
                    r = list(&client, max_pages, &merger) => r,
                    _ = confirmed.notified() => Ok(()),
                }
            };
            let walk = async {
                if !tree {
                    return Ok(false);
                }
                let walked = walk(&client, max_pages, &merger).await;
                if let Ok(true) = walked {
                    confirmed.notify_one();
                }
                walked
            };
            let outcome = tokio::select! {
                r = async { tokio::join!(accounts, walk) } => Some(r),
                _ = stop.cancelled() => None,
            };
            let m = merger.into_inner().expect("not poisoned");
            let Some((listed, walked)) = outcome else {
                m.end(Listed {
                    interrupted: true,
                    ..Listed::default()
                });
                return;
            };
            let mut end = Listed::default();
            let confirmed = matches!(walked, Ok(true));
            match walked {
                Ok(_) => {}
                Err(e) if tree_required => end.cut = Some(e),
                Err(e) => end.tree_error = Some(e),
            }
            match listed {
                Ok(()) => {}
                // The tree, walked twice alike, named every account.
                Err(e) if confirmed => tracing::warn!(
                    "{e}; the OU tree, read twice alike, names every account of the organization"
                ),
                Err(e) => end.cut = Some(e),
            }
            m.end(end);
        });
        Listing {
            rx,
            first: Some(first_rx),
        }
    }

    /// Wait until both sources have answered (ListAccounts with an account, or its end): a listing
    /// refused at its first page (not the management account, the OU tree refused under an OU filter)
    /// fails here, before anything is written. Gives the organization's id.
    pub async fn first(&mut self) -> First {
        match self.first.take() {
            Some(rx) => rx.await.unwrap_or(Ok(None)),
            None => Ok(None),
        }
    }

    /// The ACTIVE accounts as they are found, then `Complete`.
    pub fn into_stream(self) -> impl futures::Stream<Item = Found> {
        let mut rx = self.rx;
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}

/// The two sources' findings, each account sent on once.
struct Merger {
    tx: mpsc::UnboundedSender<Found>,
    seen: HashSet<String>,
    /// Named by ListAccounts, waiting for the tree to place them, with the order they were named in.
    held: HashMap<String, (u64, Account)>,
    named: u64,
    /// The tree is still being walked: ListAccounts' accounts wait for it.
    tree_open: bool,
    /// An OU filter needs the tree: its failure is the listing's.
    tree_required: bool,
    /// Not ACTIVE: sent with `Complete`.
    inactive: Vec<Account>,
    active: usize,
    first: Option<oneshot::Sender<First>>,
    org_id: Option<String>,
    /// Each source's first answer has come (`tree_first` is true when there is no tree).
    tree_first: bool,
    list_first: bool,
}

impl Merger {
    fn send(&mut self, a: Account) {
        if a.is_active() {
            self.active += 1;
            let _ = self.tx.send(Found::Account(a));
        } else {
            self.inactive.push(a);
        }
    }

    /// An account ListAccounts named.
    fn listed(&mut self, a: Account) {
        if self.org_id.is_none() && !a.org_id.is_empty() {
            self.org_id = Some(a.org_id.clone());
        }
        if !self.seen.insert(a.id.clone()) {
            // The tree placed it first: it is under way.
            return;
        }
        if self.tree_open {
            self.named += 1;
            self.held.insert(a.id.clone(), (self.named, a));
        } else {
            self.send(a);
        }
    }

    /// An account the tree placed; whether the tree had not placed it before (ListAccounts may have
    /// named it).
    fn placed(&mut self, mut a: Account, place: &Arc<Place>) -> bool {
        if let Some((_, mut held)) = self.held.remove(&a.id) {
            held.place = Some(place.clone());
            self.send(held);
            true
        } else if self.seen.insert(a.id.clone()) {
            // Found by the tree first: audited now, and known when ListAccounts names it.
            a.place = Some(place.clone());
            self.send(a);
            true
        } else {
            false
        }
    }

    /// The tree walk has ended (or failed): the accounts waiting for it go on without a place, in the
    /// order ListAccounts named them.
    fn tree_closed(&mut self) {
        self.tree_open = false;
        let mut held: Vec<(u64, Account)> = self.held.drain().map(|(_, h)| h).collect();
        held.sort_by_key(|(n, _)| *n);
        for (_, a) in held {
            self.send(a);
        }
    }

    /// A source's first answer: once both have come (or one failed), `first` is answered. The tree's
    /// failure fails the listing only when an OU filter needs it.
    fn answered(&mut self, tree: bool, outcome: Result<(), ListingError>) {
        let outcome = if tree && !self.tree_required {
            Ok(())
        } else {
            outcome
        };
        if tree {
            self.tree_first = true;
        } else {
            self.list_first = true;
        }
        if outcome.is_err() || (self.tree_first && self.list_first) {
            if let Some(first) = self.first.take() {
                let _ = first.send(outcome.map(|()| self.org_id.clone()));
            }
        }
    }

    fn end(mut self, mut listed: Listed) {
        self.tree_closed();
        if let Some(first) = self.first.take() {
            let _ = first.send(match &listed.cut {
                Some(e) => Err(e.clone()),
                None => Ok(self.org_id.clone()),
            });
        }
        listed.ids = std::mem::take(&mut self.seen);
        listed.active = self.active;
        listed.inactive = std::mem::take(&mut self.inactive);
        let _ = self.tx.send(Found::Complete(listed));
    }
}

/// The merger, held only between awaits (both sources run in one task).
fn lock(merger: &Mutex<Merger>) -> std::sync::MutexGuard<'_, Merger> {
    merger.lock().expect("not poisoned")
}

/// ListAccounts, every page, in order.
async fn list(
    client: &aws_sdk_organizations::Client,
    max_pages: usize,
    merger: &Mutex<Merger>,
) -> Result<(), ListingError> {
    const ACTION: &str = "organizations:ListAccounts";
    let mut pager = Pager::new(max_pages);
    let mut first = true;
    while let Some(p) = pager
        .next(|token: Option<String>| async move {
            let (accounts, next) = page(|| async {
                let p = client
                    .list_accounts()
                    .max_results(PAGE)
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .map_err(|e| Failure::from_sdk(&e))?;
                let accounts = p
                    .accounts()
                    .iter()
                    .map(account)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((accounts, p.next_token))
            })
            .await?;
            Ok((accounts, next.is_some(), next))
        })
        .await
    {
        let accounts = match p {
            Ok(accounts) => accounts,
            Err(e) => {
                let e = ListingError {
                    action: ACTION,
                    failure: e.into_failure("ListAccounts"),
                };
                lock(merger).answered(false, Err(e.clone()));
                return Err(e);
            }
        };
        let mut m = lock(merger);
        let named = !accounts.is_empty();
        for a in accounts {
            m.listed(a);
        }
        // A page may be empty with a NextToken: the first answer is the first page naming an account.
        if first && named {
            first = false;
            m.answered(false, Ok(()));
        }
    }
    if first {
        lock(merger).answered(false, Ok(()));
    }
    Ok(())
}

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
async fn walk(
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
    let mut pager = Pager::new(max_pages);
    let mut roots = Vec::new();
    while let Some(p) = pager
        .next(|token: Option<String>| async move {
            let (roots, next) = page(|| async {
                let p = client
                    .list_roots()
                    .max_results(PAGE)
                    .set_next_token(token.clone())
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
            .await?;
            Ok((roots, next.is_some(), next))
        })
        .await
    {
        match p {
            Ok(page) => roots.extend(page),
            Err(e) => {
                return Err(ListingError {
                    action: "organizations:ListRoots",
                    failure: e.into_failure("ListRoots"),
                })
            }
        }
    }
    Ok(roots)
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
            let parent_id = parent.ids.last().cloned().unwrap_or_default();
            let r = pager
                .next(|token: Option<String>| async move {
                    let (ous, next) = page(|| async {
                        let p = client
                            .list_organizational_units_for_parent()
                            .parent_id(&parent_id)
                            .max_results(PAGE)
                            .set_next_token(token.clone())
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
                    })
                    .await?;
                    Ok((ous, next.is_some(), next))
                })
                .await
                .map(|r| {
                    r.map_err(|e| ListingError {
                        action: "organizations:ListOrganizationalUnitsForParent",
                        failure: e.into_failure("ListOrganizationalUnitsForParent"),
                    })
                });
            Read::Ous(parent, pager, depth, r)
        }
        Job::Accounts(parent, mut pager) => {
            let parent_id = parent.ids.last().cloned().unwrap_or_default();
            let r = pager
                .next(|token: Option<String>| async move {
                    let (accounts, next) = page(|| async {
                        let p = client
                            .list_accounts_for_parent()
                            .parent_id(&parent_id)
                            .max_results(PAGE)
                            .set_next_token(token.clone())
                            .send()
                            .await
                            .map_err(|e| Failure::from_sdk(&e))?;
                        let accounts = p
                            .accounts()
                            .iter()
                            .map(account)
                            .collect::<Result<Vec<_>, _>>()?;
                        Ok((accounts, p.next_token))
                    })
                    .await?;
                    Ok((accounts, next.is_some(), next))
                })
                .await
                .map(|r| {
                    r.map_err(|e| ListingError {
                        action: "organizations:ListAccountsForParent",
                        failure: e.into_failure("ListAccountsForParent"),
                    })
                });
            Read::Accounts(parent, pager, r)
        }
    }
}
