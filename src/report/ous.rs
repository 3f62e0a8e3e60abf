//! What the summary page keeps of the accounts, as they close: per OU its totals and the accounts the page
//! shows (the most flagged), and the accounts not fully audited that its coverage table shows, with their
//! counts. Memory is bounded by what the page shows, not by the organization: 10,000 accounts' lines
//! would be megabytes that the page never prints.

use std::collections::BTreeMap;

use crate::record::Flag;

/// One account as the page shows it.
#[derive(Debug, Clone)]
pub(super) struct AccountLine {
    pub id: String,
    pub name: String,
    pub status: String,
    pub users: u64,
    pub keys: u64,
    pub flags: [u64; Flag::COUNT],
    pub error: String,
}

impl AccountLine {
    fn blind(&self) -> bool {
        self.status == "partial" || self.status == "skipped"
    }

    fn flagged(&self) -> u64 {
        self.flags.iter().sum()
    }
}

/// One OU: its totals, and its most flagged accounts (in the order they closed among equals).
#[derive(Debug, Default)]
pub(super) struct Ou {
    pub accounts: u64,
    pub blind: u64,
    pub users: u64,
    pub totals: [u64; Flag::COUNT],
    top: Vec<(u64, AccountLine)>,
}

impl Ou {
    /// The accounts shown, the most flagged first (at most the page's number).
    pub fn shown(&self) -> impl Iterator<Item = &AccountLine> {
        self.top.iter().map(|(_, a)| a)
    }
}

/// The accounts of the run, as the page keeps them.
#[derive(Debug)]
pub(super) struct Accounts {
    ous: BTreeMap<String, Ou>,
    /// Accounts not fully audited, the page's first `rows` in its order, and how many in all.
    blind: Vec<(String, AccountLine)>,
    blind_total: u64,
    rows: usize,
    per_ou: usize,
    closed: u64,
}

impl Accounts {
    /// Keep what a page showing `rows` accounts not fully audited and `per_ou` accounts per OU needs.
    pub fn new(rows: usize, per_ou: usize) -> Accounts {
        Accounts {
            ous: BTreeMap::new(),
            blind: Vec::new(),
            blind_total: 0,
            rows,
            per_ou,
            closed: 0,
        }
    }

    pub fn add(&mut self, ou: String, line: AccountLine) {
        self.closed += 1;
        if line.blind() {
            self.blind_total += 1;
            self.blind.push((ou.clone(), line.clone()));
            if self.blind.len() >= 2 * self.rows {
                sort_blind(&mut self.blind);
                self.blind.truncate(self.rows);
            }
        }
        let o = self.ous.entry(ou).or_default();
        o.accounts += 1;
        o.blind += u64::from(line.blind());
        o.users += line.users;
        for (t, n) in o.totals.iter_mut().zip(line.flags) {
            *t += n;
        }
        o.top.push((self.closed, line));
        if o.top.len() >= 2 * self.per_ou {
            sort_top(&mut o.top);
            o.top.truncate(self.per_ou);
        }
    }

    /// The accounts not fully audited the page shows, skipped first then by id, each with its OU; and
    /// how many there are in all.
    pub fn blind(&mut self) -> (&[(String, AccountLine)], u64) {
        sort_blind(&mut self.blind);
        self.blind.truncate(self.rows);
        (&self.blind, self.blind_total)
    }

    /// The OUs, the most flagged first, each with its accounts shown in order.
    pub fn ous(&mut self) -> Vec<(&String, &Ou)> {
        for o in self.ous.values_mut() {
            sort_top(&mut o.top);
            o.top.truncate(self.per_ou);
        }
        let mut v: Vec<(&String, &Ou)> = self.ous.iter().collect();
        v.sort_by_key(|(ou, o)| (std::cmp::Reverse(o.totals.iter().sum::<u64>()), *ou));
        v
    }
}

/// Status then id, descending (`skipped` before `partial`), as the coverage table lists them.
fn sort_blind(v: &mut [(String, AccountLine)]) {
    v.sort_by(|x, y| (&y.1.status, &y.1.id).cmp(&(&x.1.status, &x.1.id)));
}

/// The most flagged first; among equals, the one closed first.
fn sort_top(v: &mut [(u64, AccountLine)]) {
    v.sort_by_key(|(n, a)| (std::cmp::Reverse(a.flagged()), *n));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: u32, status: &str, flagged: u64) -> AccountLine {
        let mut flags = [0; Flag::COUNT];
        flags[0] = flagged;
        AccountLine {
            id: format!("{id:012}"),
            name: format!("a{id}"),
            status: status.into(),
            users: 2,
            keys: 1,
            flags,
            error: String::new(),
        }
    }

    // Story: 10,000 accounts in two OUs: the page's tables are what keeping every line would give, the
    // totals count every account, and no more lines are kept than the page shows (twice, at most).
    #[test]
    fn the_page_keeps_what_it_shows_and_counts_the_rest() {
        let mut kept = Accounts::new(50, 25);
        let mut all: Vec<(String, AccountLine)> = Vec::new();
        for i in 0..10_000u32 {
            let status = match i % 97 {
                0 => "skipped",
                1 => "partial",
                _ => "audited",
            };
            let ou = if i % 3 == 0 { "Root/Prod" } else { "Root/Dev" };
            let l = line(i, status, u64::from((i * 7919) % 13));
            all.push((ou.into(), l.clone()));
            kept.add(ou.into(), l);
            assert!(kept.blind.len() < 100 && kept.ous.values().all(|o| o.top.len() < 50));
        }
        let mut blind: Vec<&(String, AccountLine)> =
            all.iter().filter(|(_, a)| a.blind()).collect();
        blind.sort_by(|x, y| (&y.1.status, &y.1.id).cmp(&(&x.1.status, &x.1.id)));
        let (shown, total) = kept.blind();
        assert_eq!(total as usize, blind.len());
        assert_eq!(
            shown.iter().map(|(_, a)| a.id.clone()).collect::<Vec<_>>(),
            blind
                .iter()
                .take(50)
                .map(|(_, a)| a.id.clone())
                .collect::<Vec<_>>()
        );
        for (name, ou) in kept.ous() {
            let mut mine: Vec<&AccountLine> = all
                .iter()
                .filter(|(o, _)| o == name)
                .map(|(_, a)| a)
                .collect();
            assert_eq!(ou.accounts as usize, mine.len());
            assert_eq!(ou.totals[0], mine.iter().map(|a| a.flags[0]).sum::<u64>());
            mine.sort_by_key(|a| std::cmp::Reverse(a.flagged()));
            assert_eq!(
                ou.shown().map(|a| &a.id).collect::<Vec<_>>(),
                mine.iter().take(25).map(|a| &a.id).collect::<Vec<_>>(),
                "{name}"
            );
        }
    }
}
