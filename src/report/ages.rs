//! The summary page's findings over time, from the findings' history (`history`): per flag and per OU, the
//! open findings by age (since first seen) and the median time to resolve of those resolved over the runs
//! the history keeps. Counts and durations only: memory follows the flags and OUs, plus one number per
//! resolved finding.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::record::snapshot::AccountSnapshot;

use super::html::esc;

/// Age buckets, in days: under 30, 30–90, 90–365, a year or more.
const BUCKETS: [i64; 3] = [30, 90, 365];
/// OUs shown, the most open findings first.
const OUS: usize = 25;
const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Default, Clone)]
struct Tally {
    open: [u64; 4],
    resolve_ms: Vec<i64>,
}

impl Tally {
    fn open_total(&self) -> u64 {
        self.open.iter().sum()
    }

    /// The median time to resolve: `40 min`, `5 h`, `12.5 d`.
    fn median(&mut self) -> Option<String> {
        if self.resolve_ms.is_empty() {
            return None;
        }
        self.resolve_ms.sort_unstable();
        let n = self.resolve_ms.len();
        let ms = if n % 2 == 1 {
            self.resolve_ms[n / 2]
        } else {
            (self.resolve_ms[n / 2 - 1] + self.resolve_ms[n / 2]) / 2
        };
        Some(match ms {
            ms if ms < 3_600_000 => format!("{} min", ms / 60_000),
            ms if ms < DAY_MS => format!("{} h", ms / 3_600_000),
            ms => format!("{:.1} d", ms as f64 / DAY_MS as f64),
        })
    }
}

/// Open findings by age and time to resolve, per flag and per OU.
#[derive(Debug, Default)]
pub struct Ages {
    by_flag: BTreeMap<String, Tally>,
    by_ou: BTreeMap<String, Tally>,
}

impl Ages {
    /// An account's history as this run left it.
    pub fn add(&mut self, a: &AccountSnapshot) {
        let ou = if a.ou_path.is_empty() {
            "(no OU path)".to_string()
        } else {
            a.ou_path.clone()
        };
        for e in &a.history {
            // `iam-audit/ACCOUNT/CODE/RESOURCE`, the code a flag's uids keep across a rename.
            let code = e.uid.split('/').nth(2).unwrap_or("?");
            let code = crate::record::Flag::from_code(code)
                .map_or(code, |f| f.code())
                .to_string();
            let count = |t: &mut Tally| {
                if e.open {
                    let days = (e.last_seen - e.first_seen).max(0) / DAY_MS;
                    let bucket = BUCKETS.iter().take_while(|b| days >= **b).count();
                    t.open[bucket] += 1;
                } else if let Some(resolved) = e.resolved_at {
                    t.resolve_ms.push((resolved - e.opened).max(0));
                }
            };
            count(self.by_flag.entry(code).or_default());
            count(self.by_ou.entry(ou.clone()).or_default());
        }
    }

    /// The page's section: one table per flag, one per OU. Empty when no history was kept.
    pub fn section(&mut self) -> String {
        if self.by_flag.is_empty() {
            return String::new();
        }
        let mut h = String::from(
            "<h2>Findings over time</h2><p class=\"meta\">Open findings by age since first seen, and the median time to resolve the findings resolved over the runs the history keeps (docs/outputs.md).</p>",
        );
        h.push_str(&table("flag", self.by_flag.iter_mut().collect()));
        let mut ous: Vec<(&String, &mut Tally)> = self.by_ou.iter_mut().collect();
        ous.sort_by(|a, b| b.1.open_total().cmp(&a.1.open_total()).then(a.0.cmp(b.0)));
        let more = ous.len().saturating_sub(OUS);
        ous.truncate(OUS);
        h.push_str(&table("OU", ous));
        if more > 0 {
            let _ = write!(h, "<p class=\"more\">and {more} more OUs</p>");
        }
        h
    }
}

fn table(what: &str, rows: Vec<(&String, &mut Tally)>) -> String {
    let mut h = format!(
        "<table><tr><th>{what}</th><th class=\"n\">open &lt; 30 d</th><th class=\"n\">30–90 d</th><th class=\"n\">90–365 d</th><th class=\"n\">≥ 1 year</th><th class=\"n\">median time to resolve</th></tr>"
    );
    for (name, t) in rows {
        let median = match t.median() {
            Some(m) => format!("{m} ({} resolved)", t.resolve_ms.len()),
            None => "—".to_string(),
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{median}</td></tr>",
            esc(name),
            t.open[0],
            t.open[1],
            t.open[2],
            t.open[3]
        );
    }
    h.push_str("</table>");
    h
}
