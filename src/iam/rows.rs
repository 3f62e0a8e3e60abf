//! From one user's facts to its rows: a key row per access key (with its user's flags) and the user row
//! (with its keys' flags), judged by `risk`, sent to the writer as soon as they are complete. Both
//! strategies, and the root user, end here.

use chrono::{DateTime, Utc};

use crate::exceptions::{Rule, Target};
use crate::ledger::creation_flags;
use crate::record::{
    Creation, ExceptionCells, Flag, Flags, KeyRow, OtherCredentials, Record, Source, UserRow,
};
use crate::risk::{api_key_user, break_glass_flags, key_flags, user_flags, KeyFacts, UserFacts};
use crate::session::Session;
use crate::sink::Sink;

use super::credentials::UserOthers;

/// What the IAM part tells the accounts report beyond its rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IamOutcome {
    /// How the users were read; `None` when nothing was.
    pub strategy: Option<Source>,
    pub credential_report_time: Option<DateTime<Utc>>,
    /// Active root keys (`0`, `1`, `2`; `present` from the account summary; `unknown`).
    pub root_access_keys: String,
    /// Root MFA: `Hardware`, `Virtual`, `None` or `unknown`.
    pub root_mfa: String,
}

/// One user's facts, its keys' facts (with ids, where known), and how to write them.
pub(crate) struct Audited<'a> {
    pub name: &'a str,
    pub arn: &'a str,
    pub facts: UserFacts,
    pub keys: Vec<(Option<String>, KeyFacts)>,
    pub mfa_devices: Option<usize>,
    pub source: Source,
    pub note: String,
    /// The user's other long-term credentials (`None` for the root user: not read).
    pub other: Option<UserOthers>,
}

/// The exceptions that accept some of one row's findings.
#[derive(Default, Clone)]
struct RowRules<'r>(Vec<&'r Rule>);

impl<'r> RowRules<'r> {
    /// The rules of `session`'s exceptions that accept `flags` on this user (on `key`, when the findings
    /// are the key's).
    fn add(&mut self, session: &'r Session, user: (&str, &str), key: Option<&str>, flags: Flags) {
        let Some(rules) = session.exceptions() else {
            return;
        };
        let a = session.account();
        let today = session.settings().started_at.date_naive();
        for flag in flags.iter() {
            let t = Target {
                account_id: &a.id,
                account_name: &a.name,
                ou_path: a.ou_path(),
                user: Some(user),
                key,
                flag,
            };
            if let Some(r) = rules.rule_accepting(&t, today) {
                if !self.0.iter().any(|x| x.id == r.id) {
                    self.0.push(r);
                }
            }
        }
    }

    fn cells(mut self) -> ExceptionCells {
        self.0.sort_by_key(|r| r.line);
        let ids: Vec<&str> = self.0.iter().map(|r| r.id.as_str()).collect();
        ExceptionCells {
            rules: ids.join(";"),
            expires: self
                .0
                .iter()
                .map(|r| r.expires)
                .min()
                .map(|d| d.to_string())
                .unwrap_or_default(),
        }
    }
}

/// The flags of a break-glass user's broken expectations (none for a user no live break-glass rule
/// names).
fn break_glass(session: &Session, a: &Audited<'_>, keys: &[KeyFacts]) -> Flags {
    let s = session.settings();
    let account = session.account();
    let named = session.exceptions().and_then(|rules| {
        rules.break_glass(
            (&account.id, &account.name, account.ou_path()),
            (a.name, a.arn),
            s.started_at.date_naive(),
        )
    });
    let Some(rule) = named else {
        return Flags::default();
    };
    let others = a.other.as_ref().and_then(|o| {
        let c = o.counts;
        let known = [
            c.service_specific,
            c.ssh_public_keys,
            c.signing_certificates,
        ];
        known
            .iter()
            .any(Option::is_some)
            .then(|| known.iter().flatten().sum())
    });
    break_glass_flags(rule.expect, &a.facts, keys, others, s.start)
}

/// Send the user's key rows (with its user's flags), its other credentials' rows, and its user row (with
/// its keys' and credentials' flags). Waits for the account's key ledger (who created each key). `false`
/// when the writer is gone.
pub(crate) async fn send_user(session: &Session, sink: &Sink, a: Audited<'_>) -> bool {
    let s = session.settings();
    let now = s.started_at;
    let ledger = sink.ledger().await;
    let key_facts: Vec<KeyFacts> = a.keys.iter().map(|(_, k)| k.clone()).collect();
    let own = user_flags(&a.facts, &key_facts, now, s.thresholds)
        .union(break_glass(session, &a, &key_facts));
    let user = (a.name, a.arn);
    // The rules accepting the user's own flags, on its row and on each of its key rows.
    let mut own_rules = RowRules::default();
    own_rules.add(session, user, None, own);
    let mut accepting = own_rules.clone();
    let mut all = own;
    // Flags of credentials without a key row: the root user's keys, keys gone from the inventory, and the
    // other long-term credentials. Their findings are about the user.
    let mut unlisted = Flags::default();
    if ledger
        .short_lived(a.name, s.thresholds.short_lived_days)
        .next()
        .is_some()
    {
        unlisted.insert(Flag::KeyShortLived);
    }
    let mut other_counts = OtherCredentials::default();
    if let Some(other) = a.other {
        unlisted = unlisted.union(other.flags);
        other_counts = other.counts;
        for row in other.rows {
            if !sink.send(Record::Credential(row)).await {
                return false;
            }
        }
        if api_key_user(&a.facts, a.keys.len(), other_counts) {
            unlisted.insert(Flag::ApiKeyUser);
        }
    }
    all = all.union(unlisted);
    for (id, k) in &a.keys {
        // The root user's keys too: CIS's audit procedures read the whole credential report, so an old or
        // unused root key fails 1.14 and 1.12 besides 1.4.
        let mut flags = key_flags(&a.facts, k, now, s.thresholds);
        let creation = match id {
            Some(id) => ledger.creation(id, k.created),
            None => Creation::Unknown,
        };
        flags = flags.union(creation_flags(a.name, &creation));
        all = all.union(flags);
        let Some(id) = id else {
            unlisted = unlisted.union(flags);
            continue;
        };
        let mut key_accepting = own_rules.clone();
        key_accepting.add(session, user, Some(id), flags);
        accepting.add(session, user, Some(id), flags);
        let row = KeyRow {
            account_id: session.account().id.clone(),
            account_name: session.account().name.clone(),
            username: a.name.to_string(),
            password: a.facts.password,
            password_last_used: a.facts.password_last_used,
            access_key_id: id.clone(),
            status: if k.active { "Active" } else { "Inactive" }.to_string(),
            created_date: k.created,
            last_used: k.last_used.clone(),
            mfa: a.facts.mfa,
            mfa_devices: a.mfa_devices,
            key_age_days: k.created.map(|c| (now - c).num_days()),
            risk: flags.union(own),
            key_risk: flags,
            source: a.source,
            creation,
            exception: key_accepting.cells(),
        };
        if !sink.send(Record::Key(row)).await {
            return false;
        }
    }
    accepting.add(session, user, None, unlisted);
    let active: Vec<&KeyFacts> = key_facts.iter().filter(|k| k.active).collect();
    let active_keys = if a.facts.root && a.keys.is_empty() {
        a.facts.active_keys_without_ids
    } else {
        Some(active.len() as u32)
    };
    let last_activity = key_facts
        .iter()
        .filter_map(|k| k.last_used.date())
        .chain(a.facts.password_last_used)
        .max();
    let row = UserRow {
        account_id: session.account().id.clone(),
        account_name: session.account().name.clone(),
        username: a.name.to_string(),
        arn: a.arn.to_string(),
        created: a.facts.created,
        password: a.facts.password,
        password_last_used: a.facts.password_last_used,
        mfa_active: a.facts.mfa_active,
        mfa: a.facts.mfa,
        mfa_devices: a.mfa_devices,
        active_keys,
        oldest_active_key_age_days: active
            .iter()
            .filter_map(|k| k.created.map(|c| (now - c).num_days()))
            .max(),
        last_activity,
        risk: all,
        user_risk: own,
        unlisted_key_risk: unlisted,
        source: a.source,
        note: a.note,
        other_credentials: other_counts,
        exception: accepting.cells(),
    };
    sink.send(Record::User(row)).await
}
