//! How the engine tells whoever watches it (the binary's progress display, a test) what it is doing,
//! without knowing who watches: the `Observer` interface, defined low so that the engine calls it and the
//! display implements it. Nothing here sits in the data path: rows go to the writer; these are
//! notifications with counters.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crate::record::AccountRow;
use crate::stats::{CallCounts, CallStats};

/// An account's users listed so far, and users whose rows are sent: its progress, for a live display.
#[derive(Debug, Default)]
pub struct UserCounts {
    pub listed: AtomicU64,
    pub done: AtomicU64,
}

/// Notified by the engine as the audit advances. All methods have empty defaults.
pub trait Observer: Send + Sync {
    /// The audit starts (the first accounts are being listed); `stats` counts the run's calls as they
    /// happen.
    fn audit_started(&self, _stats: &Arc<CallStats>) {}
    /// Accounts to audit found so far, while the organization is being listed (auditing has begun).
    fn accounts_found(&self, _found: usize) {}
    /// The organization has been listed: `total` accounts to report, `active` of them to audit.
    fn accounts_listed(&self, _active: usize, _total: usize) {}
    /// An account's audit starts; `users` fills in as its users are read.
    fn account_started(&self, _id: &str, _name: &str, _users: &Arc<UserCounts>) {}
    /// An account has been closed (audited, partial, skipped or not active).
    fn account_finished(&self, _row: &AccountRow, _calls: CallCounts) {}
}

/// An observer that shows nothing.
pub struct Silent;
impl Observer for Silent {}
