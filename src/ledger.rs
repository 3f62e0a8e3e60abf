//! The key ledger of one account: the access keys that the CloudTrail window's CreateAccessKey and
//! DeleteAccessKey events name, who made each call and from where. The CloudTrail part fills it (looking
//! those two names up first) and publishes it; the IAM part reads it to say who created each key of the
//! inventory (`Creation`) and which keys lived only days; the account's close turns it into the key
//! history rows. Pure data: it knows records, not services.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::record::{Actor, Creation, Flag, Flags, KeyHistoryRow, ROOT_USER};

/// One CreateAccessKey or DeleteAccessKey event, as the ledger keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyEvent {
    pub access_key_id: String,
    /// The key's owner: `requestParameters.userName`, else the caller itself (`<root_account>` for the
    /// root user).
    pub owner: String,
    pub actor: Actor,
}

/// The window's key events of one account.
#[derive(Debug, Clone)]
pub struct KeyLedger {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    /// Every CreateAccessKey event of the window was read (none refused, failed or left out).
    creations_complete: bool,
    /// Every DeleteAccessKey event of the window was read.
    deletions_complete: bool,
    created: HashMap<String, KeyEvent>,
    deleted: HashMap<String, KeyEvent>,
}

impl KeyLedger {
    /// An empty ledger of the window `start..=end`; complete until a lookup says otherwise.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> KeyLedger {
        KeyLedger {
            start,
            end,
            creations_complete: true,
            deletions_complete: true,
            created: HashMap::new(),
            deleted: HashMap::new(),
        }
    }

    /// A ledger for when no event could be read at all.
    pub fn unread(start: DateTime<Utc>, end: DateTime<Utc>) -> KeyLedger {
        KeyLedger {
            creations_complete: false,
            deletions_complete: false,
            ..KeyLedger::new(start, end)
        }
    }

    /// The lookups of `name` did not read every event (refused, failed, or not looked up).
    pub fn mark_incomplete(&mut self, name: &str) {
        match name {
            CREATE => self.creations_complete = false,
            DELETE => self.deletions_complete = false,
            _ => {}
        }
    }

    /// Add an event of `name` (CreateAccessKey or DeleteAccessKey). The same event from two regions is
    /// kept once; for a key created (or deleted) twice, the latest call counts.
    pub fn add(&mut self, name: &str, event: KeyEvent) {
        let map = match name {
            CREATE => &mut self.created,
            DELETE => &mut self.deleted,
            _ => return,
        };
        match map.get(&event.access_key_id) {
            Some(old) if old.actor.time >= event.actor.time => {}
            _ => {
                map.insert(event.access_key_id.clone(), event);
            }
        }
    }

    /// Fold another region's (or phase's) ledger into this one.
    pub fn merge(&mut self, other: KeyLedger) {
        self.creations_complete &= other.creations_complete;
        self.deletions_complete &= other.deletions_complete;
        for e in other.created.into_values() {
            self.add(CREATE, e);
        }
        for e in other.deleted.into_values() {
            self.add(DELETE, e);
        }
    }

    /// Who created the key `id`, created at `created`.
    pub fn creation(&self, id: &str, created: Option<DateTime<Utc>>) -> Creation {
        if let Some(e) = self.created.get(id) {
            return Creation::Event(e.actor.clone());
        }
        match created {
            Some(c) if c < self.start => Creation::BeforeWindow,
            Some(c) if c > self.end => Creation::AfterWindow,
            Some(_) if self.creations_complete => Creation::NotInEvents,
            _ => Creation::Unknown,
        }
    }

    /// The keys of `owner` created and deleted within `days` inside the window (gone from the inventory).
    pub fn short_lived<'a>(
        &'a self,
        owner: &'a str,
        days: i64,
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.created.values().filter_map(move |c| {
            (c.owner == owner && is_short_lived(c, self.deleted.get(&c.access_key_id), days))
                .then_some(c.access_key_id.as_str())
        })
    }

    /// The key history rows: one per key the events name, created or deleted. `inventory` says whether a
    /// key is in this run's inventory (`None`: the account's keys were not all read).
    pub fn history(
        &self,
        account_id: &str,
        account_name: &str,
        short_lived_days: i64,
        inventory: impl Fn(&str) -> Option<bool>,
    ) -> Vec<KeyHistoryRow> {
        let mut ids: Vec<&String> = self.created.keys().chain(self.deleted.keys()).collect();
        ids.sort();
        ids.dedup();
        ids.into_iter()
            .map(|id| {
                let created = self.created.get(id);
                let deleted = self.deleted.get(id);
                let owner = created.or(deleted).map_or("", |e| e.owner.as_str());
                let mut risk = created.map_or(Flags::default(), |c| {
                    creation_flags(&c.owner, &Creation::Event(c.actor.clone()))
                });
                if let Some(c) = created {
                    if is_short_lived(c, deleted, short_lived_days) {
                        risk.insert(Flag::KeyShortLived);
                    }
                }
                KeyHistoryRow {
                    account_id: account_id.to_string(),
                    account_name: account_name.to_string(),
                    username: owner.to_string(),
                    access_key_id: id.clone(),
                    created: created.map(|e| e.actor.clone()),
                    deleted: deleted.map(|e| e.actor.clone()),
                    // The root user's keys have no ids in the inventory.
                    in_inventory: if owner == ROOT_USER {
                        None
                    } else {
                        inventory(id)
                    },
                    risk,
                }
            })
            .collect()
    }
}

/// The event names the ledger reads.
pub const CREATE: &str = "CreateAccessKey";
pub const DELETE: &str = "DeleteAccessKey";

fn is_short_lived(created: &KeyEvent, deleted: Option<&KeyEvent>, days: i64) -> bool {
    match (created.actor.time, deleted.and_then(|d| d.actor.time)) {
        (Some(c), Some(d)) => d >= c && (d - c).num_seconds() <= days * 86_400,
        _ => false,
    }
}

/// The flags of who created a key owned by `owner`: the root user (`key_created_by_root`), or an IAM user
/// other than its owner (`key_created_for_other_user`). A role creating keys for a user is how admins and
/// automation work: it is named in `created_by`, not flagged.
pub fn creation_flags(owner: &str, creation: &Creation) -> Flags {
    let mut f = Flags::default();
    if let Creation::Event(a) = creation {
        match a.kind.as_str() {
            "Root" if owner != ROOT_USER => f.insert(Flag::KeyCreatedByRoot),
            "IAMUser" if !a.user_name.is_empty() && a.user_name != owner => {
                f.insert(Flag::KeyCreatedForOtherUser)
            }
            _ => {}
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(days_ago: i64) -> Option<DateTime<Utc>> {
        Some(DateTime::from_timestamp(1_780_000_000 - days_ago * 86_400, 0).unwrap())
    }

    fn ev(id: &str, owner: &str, kind: &str, user: &str, days_ago: i64) -> KeyEvent {
        KeyEvent {
            access_key_id: id.into(),
            owner: owner.into(),
            actor: Actor {
                arn: format!("arn:aws:iam::111111111111:user/{user}"),
                kind: kind.into(),
                user_name: user.into(),
                ip: "198.51.100.7".into(),
                user_agent: "aws-cli/2".into(),
                event_id: format!("ev-{id}"),
                time: at(days_ago),
            },
        }
    }

    #[test]
    fn creations_say_who_or_why_not() {
        let mut l = KeyLedger::new(at(90).unwrap(), at(0).unwrap());
        l.add(CREATE, ev("AKIA1", "alice", "IAMUser", "alice", 10));
        l.add(CREATE, ev("AKIA2", "svc", "IAMUser", "mallory", 5));
        l.add(CREATE, ev("AKIA3", "svc", "Root", "", 4));
        l.add(CREATE, ev("AKIA4", "bob", "IAMUser", "bob", 20));
        l.add(DELETE, ev("AKIA4", "bob", "IAMUser", "bob", 18));
        let flags = |id: &str, owner: &str| creation_flags(owner, &l.creation(id, at(1))).cell();
        assert_eq!(flags("AKIA1", "alice"), "");
        assert_eq!(flags("AKIA2", "svc"), "key_created_for_other_user");
        assert_eq!(flags("AKIA3", "svc"), "key_created_by_root");
        assert_eq!(l.creation("AKIAOLD", at(200)), Creation::BeforeWindow);
        assert_eq!(l.creation("AKIANEW", at(1)), Creation::NotInEvents);
        assert_eq!(l.short_lived("bob", 7).collect::<Vec<_>>(), ["AKIA4"]);
        assert_eq!(l.short_lived("bob", 1).count(), 0);
        let h = l.history("111111111111", "a", 7, |id| Some(id != "AKIA4"));
        assert_eq!(h.len(), 4);
        assert_eq!(h[3].access_key_id, "AKIA4");
        assert_eq!(h[3].in_inventory, Some(false));
        assert_eq!(h[3].risk.cell(), "key_short_lived");
        l.mark_incomplete(CREATE);
        assert_eq!(l.creation("AKIANEW", at(1)), Creation::Unknown);
    }
}
