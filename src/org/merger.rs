//! The two listings' findings merged (see `listing`): each account sent on once, as soon as the OU tree
//! places it; one that only ListAccounts has named held until the tree places it or ends; the accounts
//! not ACTIVE kept for the end; the organization's id and both listings' first answers for `Listing::first`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use super::{Account, ListingError, Place};

/// What the listing sends on, in order.
#[derive(Debug)]
pub enum Found {
    /// An account, each once, with its place when the tree has it.
    Account(Account),
    /// Every account has been found; those not ACTIVE come with it. (Boxed: thousands of accounts may
    /// wait in the channel, each the size of the larger variant.)
    Complete(Box<Listed>),
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

/// The listing's first answers: the organization's id (from the first account's ARN), or why it cannot
/// be listed.
pub(super) type First = Result<Option<String>, ListingError>;

/// The two sources' findings, each account sent on once.
pub(super) struct Merger {
    pub(super) tx: mpsc::UnboundedSender<Found>,
    pub(super) seen: HashSet<String>,
    /// Named by ListAccounts, waiting for the tree to place them, with the order they were named in.
    pub(super) held: HashMap<String, (u64, Account)>,
    pub(super) named: u64,
    /// The tree is still being walked: ListAccounts' accounts wait for it.
    pub(super) tree_open: bool,
    /// An OU filter needs the tree: its failure is the listing's.
    pub(super) tree_required: bool,
    /// Not ACTIVE: sent with `Complete`.
    pub(super) inactive: Vec<Account>,
    pub(super) active: usize,
    pub(super) first: Option<oneshot::Sender<First>>,
    pub(super) org_id: Option<Arc<str>>,
    /// Each source's first answer has come (`tree_first` is true when there is no tree).
    pub(super) tree_first: bool,
    pub(super) list_first: bool,
}

impl Merger {
    /// A merger sending on through `tx`; with `tree`, ListAccounts' accounts wait for the tree.
    pub(super) fn new(
        tx: mpsc::UnboundedSender<Found>,
        tree: bool,
        tree_required: bool,
        first: oneshot::Sender<First>,
    ) -> Merger {
        Merger {
            tx,
            seen: HashSet::new(),
            held: HashMap::new(),
            named: 0,
            tree_open: tree,
            tree_required,
            inactive: Vec::new(),
            active: 0,
            first: Some(first),
            org_id: None,
            tree_first: !tree,
            list_first: false,
        }
    }

    pub(super) fn send(&mut self, a: Account) {
        if a.is_active() {
            self.active += 1;
            let _ = self.tx.send(Found::Account(a));
        } else {
            self.inactive.push(a);
        }
    }

    /// An account ListAccounts named.
    pub(super) fn listed(&mut self, mut a: Account) {
        self.share_org_id(&mut a);
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

    /// The organization's id, one copy for every account (the first account's).
    fn share_org_id(&mut self, a: &mut Account) {
        match &self.org_id {
            Some(shared) if *shared == a.org_id => a.org_id = shared.clone(),
            None if !a.org_id.is_empty() => self.org_id = Some(a.org_id.clone()),
            _ => {}
        }
    }

    /// An account the tree placed; whether the tree had not placed it before (ListAccounts may have
    /// named it).
    pub(super) fn placed(&mut self, mut a: Account, place: &Arc<Place>) -> bool {
        self.share_org_id(&mut a);
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
    pub(super) fn tree_closed(&mut self) {
        self.tree_open = false;
        let mut held: Vec<(u64, Account)> = self.held.drain().map(|(_, h)| h).collect();
        held.sort_by_key(|(n, _)| *n);
        for (_, a) in held {
            self.send(a);
        }
    }

    /// A source's first answer: once both have come (or one failed), `first` is answered. The tree's
    /// failure fails the listing only when an OU filter needs it.
    pub(super) fn answered(&mut self, tree: bool, outcome: Result<(), ListingError>) {
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
                let _ = first.send(outcome.map(|()| self.org_id.as_deref().map(str::to_string)));
            }
        }
    }

    pub(super) fn end(mut self, mut listed: Listed) {
        self.tree_closed();
        if let Some(first) = self.first.take() {
            let _ = first.send(match &listed.cut {
                Some(e) => Err(e.clone()),
                None => Ok(self.org_id.as_deref().map(str::to_string)),
            });
        }
        listed.ids = std::mem::take(&mut self.seen);
        listed.active = self.active;
        listed.inactive = std::mem::take(&mut self.inactive);
        let _ = self.tx.send(Found::Complete(Box::new(listed)));
    }
}

/// The merger, held only between awaits (both sources run in one task).
pub(super) fn lock(merger: &Mutex<Merger>) -> std::sync::MutexGuard<'_, Merger> {
    merger.lock().expect("not poisoned")
}
