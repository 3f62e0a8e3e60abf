//! Where one account's auditors send their rows: the writer's channel, and counts of what was sent (the
//! account's closing row carries them, even when its task failed half-way).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use std::collections::HashSet;
use std::sync::Mutex;

use tokio::sync::{mpsc, watch};

use crate::ledger::KeyLedger;
use crate::observe::UserCounts;
use crate::record::{Flag, Record};

pub struct Sink {
    tx: mpsc::Sender<Record>,
    users: AtomicU64,
    keys: AtomicU64,
    events: AtomicU64,
    flags: [AtomicU64; Flag::COUNT],
    other_sources: AtomicU64,
    /// The account's users listed and sent, for whoever watches the run.
    watched: Arc<UserCounts>,
    /// The account's key ledger, once the CloudTrail part has read the key events.
    ledger: watch::Sender<Option<Arc<KeyLedger>>>,
    /// The access key ids of the key rows sent (the key history's `in_inventory`).
    key_ids: Mutex<HashSet<String>>,
    /// Rows of the credentials file sent.
    credentials: AtomicU64,
}

impl Sink {
    pub fn new(tx: mpsc::Sender<Record>) -> Sink {
        Sink::watched(tx, Arc::default())
    }

    /// A sink whose users are also counted in `users`, which an observer may watch.
    pub fn watched(tx: mpsc::Sender<Record>, users: Arc<UserCounts>) -> Sink {
        Sink {
            tx,
            users: AtomicU64::new(0),
            keys: AtomicU64::new(0),
            events: AtomicU64::new(0),
            flags: Default::default(),
            other_sources: AtomicU64::new(0),
            watched: users,
            ledger: watch::channel(None).0,
            key_ids: Mutex::default(),
            credentials: AtomicU64::new(0),
        }
    }

    /// Publish the account's key ledger: the IAM part waiting for it goes on.
    pub fn publish_ledger(&self, ledger: KeyLedger) {
        self.ledger.send_replace(Some(Arc::new(ledger)));
    }

    /// The account's key ledger, waiting until the CloudTrail part has published it.
    pub async fn ledger(&self) -> Arc<KeyLedger> {
        let mut rx = self.ledger.subscribe();
        // The sender lives in this sink, so the wait ends only with a ledger.
        let got = rx
            .wait_for(Option::is_some)
            .await
            .expect("the ledger's sender lives as long as the sink")
            .clone();
        got.expect("waited for Some")
    }

    /// The ledger if it was published.
    pub fn published_ledger(&self) -> Option<Arc<KeyLedger>> {
        self.ledger.borrow().clone()
    }

    /// Whether a key row of this id was sent.
    pub fn sent_key(&self, id: &str) -> bool {
        self.key_ids.lock().expect("not poisoned").contains(id)
    }

    /// Rows of the credentials file sent so far.
    pub fn credentials(&self) -> u64 {
        self.credentials.load(Ordering::Relaxed)
    }

    /// Send a row to the writer. `false` when the writer is gone (it failed; the run is ending).
    pub async fn send(&self, record: Record) -> bool {
        match &record {
            Record::Key(k) => {
                self.keys.fetch_add(1, Ordering::Relaxed);
                self.key_ids
                    .lock()
                    .expect("not poisoned")
                    .insert(k.access_key_id.clone());
            }
            Record::Credential(_) => {
                self.credentials.fetch_add(1, Ordering::Relaxed);
            }
            Record::Event(_) => {
                self.events.fetch_add(1, Ordering::Relaxed);
            }
            Record::User(u) => {
                for f in u.risk.iter() {
                    self.flags[f as usize].fetch_add(1, Ordering::Relaxed);
                }
                if !u.is_root() {
                    self.watched.done.fetch_add(1, Ordering::Relaxed);
                }
            }
            Record::KeyHistory(_) | Record::Account(_) | Record::End(_) => {}
        }
        self.tx.send(record).await.is_ok()
    }

    /// Whether the writer is gone.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Count users listed (they have rows only through their keys).
    pub fn count_users(&self, n: u64) {
        self.users.fetch_add(n, Ordering::Relaxed);
        self.watched.listed.fetch_add(n, Ordering::Relaxed);
    }

    /// Count an event of another service than IAM, left out.
    pub fn count_other_source(&self) {
        self.other_sources.fetch_add(1, Ordering::Relaxed);
    }

    /// Events of other services left out so far.
    pub fn other_sources(&self) -> u64 {
        self.other_sources.load(Ordering::Relaxed)
    }

    /// Users (root included) carrying each flag so far, in `Flag::ALL` order.
    pub fn flag_counts(&self) -> [u64; Flag::COUNT] {
        std::array::from_fn(|i| self.flags[i].load(Ordering::Relaxed))
    }

    /// (users, keys, events) so far.
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.users.load(Ordering::Relaxed),
            self.keys.load(Ordering::Relaxed),
            self.events.load(Ordering::Relaxed),
        )
    }
}
