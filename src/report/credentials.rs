//! The credentials file and the key history (docs/credentials.md): their columns and the cells of a row,
//! and the key report's `created_*` cells, which read the same key ledger.

use std::fmt::{self, Display};

use crate::record::{Actor, Creation, CredentialRow, KeyHistoryRow, UserRow};

use super::table::{Opt, Table, Time};

/// A `created_*` cell of the key report: the event's field, or the creation's marker (`before_window`,
/// `not_in_events`, `unknown`): never blank.
pub(super) struct CreatedBy<'a>(pub &'a Creation, pub fn(&Actor) -> &String);

impl Display for CreatedBy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.0.marker()) {
            (Creation::Event(a), _) => (self.1)(a).fmt(f),
            (_, Some(m)) => f.write_str(m),
            (_, None) => Ok(()),
        }
    }
}

/// A count of the users report: a number, or `not_read` (`n/a` on the root user's row).
pub(super) struct Count<'a>(pub Option<u32>, pub &'a UserRow);

impl Display for Count<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1.is_root()) {
            (Some(n), _) => n.fmt(f),
            (None, true) => f.write_str("n/a"),
            (None, false) => f.write_str("not_read"),
        }
    }
}

pub(super) fn credential_row(t: &mut Table, c: &CredentialRow) -> std::io::Result<()> {
    t.row(&[
        &c.account_id,
        &c.account_name,
        &c.username,
        &c.kind.as_str(),
        &c.service,
        &c.credential_id,
        &c.status,
        &Time(c.created.as_ref(), ""),
        &Time(c.expires.as_ref(), "never"),
        &Opt(c.age_days),
        &c.risk,
        &c.source,
    ])
}

pub(super) fn history_row(t: &mut Table, h: &KeyHistoryRow) -> std::io::Result<()> {
    let empty = Actor::default();
    let (c, d) = (
        h.created.as_ref().unwrap_or(&empty),
        h.deleted.as_ref().unwrap_or(&empty),
    );
    let in_inventory = match h.in_inventory {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    };
    // A key the window saw deleted but not created was created before the window.
    let created_cell = if h.created.is_some() {
        ""
    } else {
        "before_window"
    };
    t.row(&[
        &h.account_id,
        &h.account_name,
        &h.username,
        &h.access_key_id,
        &Time(c.time.as_ref(), created_cell),
        &c.arn,
        &c.kind,
        &c.ip,
        &c.user_agent,
        &c.event_id,
        &Time(d.time.as_ref(), ""),
        &d.arn,
        &d.kind,
        &d.ip,
        &d.event_id,
        &in_inventory,
        &h.risk,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_without_its_event_says_why_in_every_created_cell() {
        let cell = |c: &Creation| {
            [
                CreatedBy(c, |a| &a.arn).to_string(),
                CreatedBy(c, |a| &a.kind).to_string(),
                CreatedBy(c, |a| &a.ip).to_string(),
                CreatedBy(c, |a| &a.event_id).to_string(),
            ]
        };
        assert_eq!(cell(&Creation::BeforeWindow), ["before_window"; 4]);
        assert_eq!(cell(&Creation::Unknown), ["unknown"; 4]);
        assert_eq!(cell(&Creation::NotInEvents), ["not_in_events"; 4]);
        let root = Creation::Event(Actor {
            arn: "arn:aws:iam::111111111111:root".into(),
            kind: "Root".into(),
            ip: "203.0.113.9".into(),
            event_id: "e-1".into(),
            ..Actor::default()
        });
        assert_eq!(
            cell(&root),
            [
                "arn:aws:iam::111111111111:root",
                "Root",
                "203.0.113.9",
                "e-1"
            ]
        );
    }
}
