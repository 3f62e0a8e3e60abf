//! Where one account's auditors send their rows: the writer's channel, and counts of what was sent (the
//! account's closing row carries them, even when its task failed half-way).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

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
        }
    }

    /// Send a row to the writer. `false` when the writer is gone (it failed; the run is ending).
    pub async fn send(&self, record: Record) -> bool {
        match &record {
            Record::Key(_) => {
                self.keys.fetch_add(1, Ordering::Relaxed);
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
            Record::Account(_) | Record::End(_) => {}
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
