//! The run's exceptions applied as each account closes (docs/exceptions.md): the findings a live rule
//! accepts are marked in the snapshot (the findings file makes them Suppressed, with the rule's reason)
//! and are not new in the changes (their row says `excepted`, the alert and the new-findings counts leave
//! them out); a finding an exception accepted at the earlier run that no rule accepts now (the rule
//! expired, or was removed) is `reopened` and counted with the new ones. The rules that matched nothing,
//! and those expiring soon, are named in the summary, the page and the alert.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use chrono::NaiveDate;

use crate::exceptions::Exceptions;
use crate::record::snapshot::{Accepted, AccountSnapshot};

use super::compare::{finding_change, AccountChanges};
use super::html::esc;

/// The run's exceptions and the day they are judged on (the run's start, UTC).
#[derive(Debug, Clone)]
pub struct Accepting {
    pub exceptions: Arc<Exceptions>,
    pub today: NaiveDate,
    /// Rules expiring within this many days are named.
    pub warn_days: i64,
    /// A rule accepting more than this percentage of an account's findings (two or more) is too broad.
    pub max_share: u64,
}

/// What the exceptions did in a run, for the summary, the page and the alert.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExceptionsDigest {
    /// Whether the run had exceptions at all.
    pub active: bool,
    /// Findings accepted.
    pub accepted: u64,
    /// Findings reopened because the rule that accepted them no longer does.
    pub reopened: u64,
    /// `id (expires YYYY-MM-DD, owner …)` of each live rule expiring within the warning days.
    pub expiring: Vec<String>,
    /// Rules past their expiry, which match nothing.
    pub expired: Vec<String>,
    /// Live rules that matched no finding of the run.
    pub stale: Vec<String>,
    /// `id in ACCOUNT (N of M findings)` for each account where a rule accepts more than the set share.
    pub too_broad: Vec<String>,
}

impl ExceptionsDigest {
    /// The exceptions' section (docs/exceptions.md): findings accepted and reopened, then the rules to look
    /// at: expiring soon, expired, stale. Empty without exceptions.
    pub fn section(&self) -> String {
        let x = self;
        if !x.active {
            return String::new();
        }
        let mut h = String::from("<h2>Exceptions</h2>");
        let _ = write!(
            h,
            "<p><b>{}</b> findings accepted by an exception (kept in the findings file as Suppressed); <b>{}</b> reopened because their exception no longer holds.</p>",
            x.accepted, x.reopened
        );
        for (label, list) in [
            ("Expiring soon", &x.expiring),
            ("Expired: matching nothing, renew or remove", &x.expired),
            ("Stale: matched nothing in this run", &x.stale),
            (
                "Too broad: accepting most of an account's findings",
                &x.too_broad,
            ),
        ] {
            if !list.is_empty() {
                let items: Vec<String> = list
                    .iter()
                    .map(|r| format!("<li>{}</li>", esc(r)))
                    .collect();
                let _ = write!(
                    h,
                    "<p class=\"warn\">{label}:</p><ul>{}</ul>",
                    items.concat()
                );
            }
        }
        h
    }

    /// One line for the summary and the alert; `None` without exceptions.
    pub fn line(&self) -> Option<String> {
        if !self.active {
            return None;
        }
        let mut s = format!("exceptions: {} findings accepted", self.accepted);
        if self.reopened > 0 {
            s.push_str(&format!(
                ", {} reopened (their exception no longer holds)",
                self.reopened
            ));
        }
        for (label, list) in [
            ("expiring soon", &self.expiring),
            ("expired (matching nothing: renew or remove)", &self.expired),
            ("stale (matched nothing this run)", &self.stale),
            ("too broad", &self.too_broad),
        ] {
            if !list.is_empty() {
                s.push_str(&format!("; {label}: {}", list.join(", ")));
            }
        }
        Some(s)
    }
}

impl Accepting {
    /// The run's exceptions judged on the run's start day; `None` without exceptions.
    pub fn of(exceptions: Option<Exceptions>, settings: &crate::config::Settings) -> Option<Self> {
        exceptions.map(|e| Accepting {
            exceptions: Arc::new(e),
            today: settings.started_at.date_naive(),
            warn_days: i64::from(settings.keys.exceptions_warn_days),
            max_share: u64::from(settings.keys.exceptions_max_share),
        })
    }

    /// The findings of the account a live rule accepts, by uid.
    pub fn accepted(&self, a: &AccountSnapshot) -> HashMap<String, Accepted> {
        let mut out = HashMap::new();
        for f in a.findings() {
            if let Some(r) = self.exceptions.rule_for(&f, self.today) {
                out.insert(
                    f.uid(),
                    Accepted {
                        rule: r.id.clone(),
                        expires: r.expires.to_string(),
                        reason: r.reason.clone(),
                        owner: r.owner.clone(),
                    },
                );
            }
        }
        out
    }

    /// The live break-glass rules that name a user of the account: they matched, whatever they found.
    pub fn guarding(&self, a: &AccountSnapshot) -> Vec<String> {
        let account = (a.id.as_str(), a.name.as_str(), a.ou_path.as_str());
        a.users
            .iter()
            .filter_map(|u| {
                self.exceptions
                    .break_glass(account, (&u.name, &u.arn), self.today)
            })
            .map(|r| r.id.clone())
            .collect()
    }

    /// The rules accepting more than the set share of the account's findings (two or more each):
    /// `id in ACCOUNT (N of M findings)`.
    pub fn too_broad(&self, a: &AccountSnapshot) -> Vec<String> {
        let total = a.findings().iter().filter(|f| f.flag().is_some()).count() as u64;
        let mut by_rule: std::collections::BTreeMap<&str, u64> = Default::default();
        for acc in a.excepted.values() {
            *by_rule.entry(acc.rule.as_str()).or_default() += 1;
        }
        by_rule
            .into_iter()
            .filter(|(_, n)| *n >= 2 && n * 100 > self.max_share * total)
            .map(|(rule, n)| format!("{rule} in {} ({n} of {total} findings)", a.id))
            .collect()
    }

    /// The digest's part of the rules themselves, given the ids of the rules that matched something.
    pub fn digest(
        &self,
        matched: &BTreeSet<String>,
        accepted: u64,
        reopened: u64,
    ) -> ExceptionsDigest {
        let ex = &self.exceptions;
        let label = |r: &crate::exceptions::Rule| {
            format!("{} (expires {}, owner {})", r.id, r.expires, r.owner)
        };
        ExceptionsDigest {
            active: true,
            accepted,
            reopened,
            expiring: ex.expiring(self.today, self.warn_days).map(label).collect(),
            expired: ex.expired(self.today).map(label).collect(),
            stale: ex
                .rules
                .iter()
                .filter(|r| !r.expired(self.today) && !matched.contains(&r.id))
                .map(|r| r.id.clone())
                .collect(),
            too_broad: Vec::new(),
        }
    }
}

/// What the account's accepted findings change in its changes (whose `history` is the account's as the
/// earlier run left it); returns how many were reopened. Without exceptions now or at the earlier run it
/// changes nothing and reads nothing more.
pub fn adjust(changes: &mut AccountChanges, a: &AccountSnapshot) -> u64 {
    let AccountChanges {
        changes: rows,
        new_findings,
        history,
        ..
    } = changes;
    let was: HashMap<&str, &str> = history
        .iter()
        .filter(|e| e.open)
        .filter_map(|e| e.exception.as_deref().map(|x| (e.uid.as_str(), x)))
        .collect();
    if a.excepted.is_empty() && was.is_empty() {
        return 0;
    }
    for c in rows.iter_mut() {
        if c.kind == "finding" && (c.change == "new" || c.change == "reopened") {
            if let Some(acc) = a.excepted.get(&c.finding_uid) {
                c.change = "excepted";
                c.detail = format!(
                    "{} (accepted by exception {} until {}: {})",
                    c.detail, acc.rule, acc.expires, acc.reason
                );
                new_findings.remove(&c.finding_uid);
            }
        }
    }
    if was.is_empty() {
        return 0;
    }
    let mut reopened = 0;
    for f in a.findings() {
        let uid = f.uid();
        if a.excepted.contains_key(&uid) || new_findings.contains(&uid) {
            continue;
        }
        if let Some(rule) = was.get(uid.as_str()) {
            let detail = format!(
                "{} (exception {rule} accepted it at the earlier run and no longer does)",
                f.title()
            );
            rows.push(finding_change("reopened", &f, detail));
            new_findings.insert(uid);
            reopened += 1;
        }
    }
    reopened
}
