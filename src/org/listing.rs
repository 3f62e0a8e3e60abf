//! The organization's accounts as they are found, so that auditing starts with the first page instead of
//! after the last: Organizations returns at most 20 accounts a page, so 10,000 accounts are 500 pages,
//! which one after another take 50 s at 100 ms a round trip and two minutes at 250 ms.
//!
//! Two sources run side by side in one task. ListAccounts (here), page after page, is the authority on
//! who is in the organization. The OU tree (`tree`: ListRoots, then ListOrganizationalUnitsForParent and
//! ListAccountsForParent for every parent, several at once) also names every account, with its place: a
//! tree of a few OUs lists the organization several times faster than ListAccounts can. The `merger`
//! sends each account on once, as soon as the tree places it; one that only ListAccounts has named waits
//! until the tree places it or ends (an account moved during the walk), so that its `ou_path` is known
//! when it is audited. Without the tree (`ou_paths = false`), or once it could not be read, ListAccounts'
//! accounts go on at once. When a second walk of the tree agrees with the first, the tree holds the whole
//! organization and ListAccounts stops before its last page.
//!
//! Accounts that are not ACTIVE come with `Found::Complete`, at the end: they are reported, never
//! audited, and a watcher hears of the organization's size before their rows.
use std::sync::Mutex;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::merger::{lock, First, Merger};
use super::tree::walk;
use super::{accounts_page, next_listing_page, ListingError, LIST_ACCOUNTS};
use crate::pages::Pager;

pub use super::merger::{Found, Listed};

/// The listing, running: its accounts come through `next`.
pub struct Listing {
    rx: mpsc::UnboundedReceiver<Found>,
    first: Option<oneshot::Receiver<First>>,
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
            let merger = Mutex::new(Merger::new(tx, tree, tree_required, first_tx));
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

/// ListAccounts, every page, in order.
async fn list(
    client: &aws_sdk_organizations::Client,
    max_pages: usize,
    merger: &Mutex<Merger>,
) -> Result<(), ListingError> {
    let mut pager = Pager::new(max_pages);
    let mut first = true;
    let fetch = |token| accounts_page(client, token);
    while let Some(p) = next_listing_page(&mut pager, LIST_ACCOUNTS, &fetch).await {
        let accounts = match p {
            Ok(accounts) => accounts,
            Err(e) => {
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
