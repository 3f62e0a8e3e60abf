//! `summary_<stamp>.html`: one self-contained page of what an auditor of many accounts looks at first.
//! Inline CSS and inline SVG, no script, font or image fetched, and a Content-Security-Policy that allows
//! none, so it opens offline and from a mail attachment. Every value from AWS or the run is escaped (IAM
//! user and account names may hold `<script>`). Long tables are grouped by OU and capped with counts, so
//! the page stays readable, and small, at thousands of accounts. It is written whole when the run ends,
//! into a private temporary file renamed over the run's name.

use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::path::PathBuf;

use crate::record::snapshot::{AccountSnapshot, FindingKind};
use crate::record::{CisVersion, Flag, Record, RunFacts, Severity, ROOT_USER};

use super::compare::AccountChanges;
use super::digest::Digest;
use super::files::create_private;
use super::html::{clip, esc, STYLE};
use super::ous::{AccountLine, Accounts};
use super::{Output, RunEnd};

/// Rows of a long table shown at most.
const ROWS: usize = 50;
/// Accounts shown per OU.
const ACCOUNTS_PER_OU: usize = 25;
/// The oldest active keys shown.
const OLDEST_KEYS: usize = 20;

/// An active key, ordered by age for the heap of the oldest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct OldKey {
    /// Reversed, so the heap's top is the youngest of those kept.
    age: std::cmp::Reverse<i64>,
    account: String,
    user: String,
    id: String,
    created: String,
    last_used: String,
}

/// The summary page, built as the run goes, written when it ends.
pub struct PageOutput {
    path: PathBuf,
    stamp: String,
    accounts: Accounts,
    by_status: BTreeMap<String, u64>,
    findings_by_flag: [u64; Flag::COUNT],
    coverage_findings: u64,
    by_severity: BTreeMap<Severity, u64>,
    root: Vec<(String, String, String)>,
    root_more: u64,
    oldest: BinaryHeap<OldKey>,
    never_used: Vec<(String, String, String, String)>,
    never_used_total: u64,
    slowest: Vec<(f64, String, String)>,
    ages: super::ages::Ages,
    /// The CIS versions the run's findings carry.
    cis_versions: Vec<CisVersion>,
}

impl PageOutput {
    /// The page of the run of `stamp`, to be written at `path` (its placeholder exists).
    pub fn new(path: PathBuf, stamp: String, cis_versions: Vec<CisVersion>) -> PageOutput {
        PageOutput {
            path,
            stamp,
            accounts: Accounts::new(ROWS, ACCOUNTS_PER_OU),
            by_status: BTreeMap::new(),
            findings_by_flag: [0; Flag::COUNT],
            coverage_findings: 0,
            by_severity: BTreeMap::new(),
            root: Vec::new(),
            root_more: 0,
            oldest: BinaryHeap::new(),
            never_used: Vec::new(),
            never_used_total: 0,
            slowest: Vec::new(),
            ages: Default::default(),
            cis_versions,
        }
    }
}

impl Output for PageOutput {
    fn write(&mut self, record: &Record) -> std::io::Result<()> {
        if let Record::Account(a) = record {
            *self
                .by_status
                .entry(a.audit_status.as_str().to_string())
                .or_default() += 1;
            let ou = if a.ou_path.is_empty() {
                "(OU not read)".to_string()
            } else {
                a.ou_path.clone()
            };
            self.accounts.add(
                ou,
                AccountLine {
                    id: a.account_id.clone(),
                    name: a.account_name.clone(),
                    status: a.audit_status.as_str().to_string(),
                    users: a.users,
                    keys: a.keys,
                    flags: a.flag_counts,
                    error: a.error.clone(),
                },
            );
            self.slowest
                .push((a.duration_s, a.account_id.clone(), a.account_name.clone()));
            self.slowest
                .sort_by(|x, y| y.0.partial_cmp(&x.0).unwrap_or(std::cmp::Ordering::Equal));
            self.slowest.truncate(10);
        }
        Ok(())
    }

    fn earlier(
        &mut self,
        row: &crate::record::AccountRow,
        snapshot: Option<&AccountSnapshot>,
    ) -> std::io::Result<()> {
        self.write(&Record::Account(row.clone()))?;
        snapshot.map_or(Ok(()), |s| self.account_closed(s, None))
    }

    fn account_closed(
        &mut self,
        s: &AccountSnapshot,
        _changes: Option<&AccountChanges>,
    ) -> std::io::Result<()> {
        self.ages.add(s);
        for f in s.findings() {
            *self.by_severity.entry(f.severity()).or_default() += 1;
            match f.kind {
                FindingKind::Flag(flag) => self.findings_by_flag[flag as usize] += 1,
                FindingKind::Coverage => self.coverage_findings += 1,
            }
        }
        if let Some(root) = s.user(ROOT_USER) {
            if !root.flags.is_empty() {
                if self.root.len() < ROWS {
                    self.root
                        .push((s.id.clone(), s.name.clone(), root.flags.cell()));
                } else {
                    self.root_more += 1;
                }
            }
        }
        for k in s.keys.iter().filter(|k| k.status == "Active") {
            let age: i64 = k.key_age_days.parse().unwrap_or(0);
            self.oldest.push(OldKey {
                age: std::cmp::Reverse(age),
                account: s.id.clone(),
                user: k.user.clone(),
                id: k.id.clone(),
                created: k.created.clone(),
                last_used: k.last_used.clone(),
            });
            if self.oldest.len() > OLDEST_KEYS {
                self.oldest.pop();
            }
        }
        for k in &s.keys {
            // The cell is a timestamp once used, `Unknown` when it could not be read, and the run's
            // word for never otherwise (`Never used`, or the legacy Spanish value).
            let never = !k.last_used.is_empty()
                && k.last_used != "Unknown"
                && chrono::DateTime::parse_from_rfc3339(&k.last_used).is_err();
            if never {
                self.never_used_total += 1;
                if self.never_used.len() < ROWS {
                    self.never_used.push((
                        s.id.clone(),
                        k.user.clone(),
                        k.id.clone(),
                        k.created.clone(),
                    ));
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    fn files(&self) -> Vec<&File> {
        Vec::new()
    }

    fn finish(&mut self, end: &RunEnd) -> std::io::Result<()> {
        let html = self.render(end.digest, end.facts);
        let tmp = self.path.with_file_name(format!(
            ".{}.tmp",
            self.path.file_name().unwrap_or_default().to_string_lossy()
        ));
        let _ = std::fs::remove_file(&tmp);
        let mut f = create_private(&tmp)?;
        f.write_all(html.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)
    }
}

impl PageOutput {
    fn render(&mut self, digest: &Digest, facts: &RunFacts) -> String {
        let mut h = String::with_capacity(64 * 1024);
        let total: u64 = self.by_status.values().sum();
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; script-src 'none'; base-uri 'none'; form-action 'none'\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>iam-audit {stamp}</title><style>{STYLE}</style></head><body>\
             <h1>IAM audit of the organization</h1><p class=\"meta\">Run {stamp}: {total} accounts in {secs:.0} s, {calls} API calls ({thr} throttled).</p>",
            stamp = esc(&self.stamp),
            secs = facts.elapsed_s,
            calls = facts.calls,
            thr = facts.throttled
        );
        if facts.resumed > 0 {
            let _ = write!(
                h,
                "<p class=\"meta\">This run was resumed: {} accounts were finished before the resume (they are counted here from the files; the run's duration and calls below are those after it).</p>",
                facts.resumed
            );
        }
        h.push_str(&self.coverage());
        // Findings by severity and by CIS control.
        h.push_str("<h2>Findings</h2><div class=\"tiles\">");
        for s in Severity::ALL.iter().rev() {
            let n = self.by_severity.get(s).copied().unwrap_or(0);
            let class = match s {
                Severity::Critical | Severity::High => "bad",
                Severity::Medium => "warn",
                _ => "meta",
            };
            let _ = write!(
                h,
                "<div class=\"tile\"><b class=\"{class}\">{n}</b>{}</div>",
                s.name()
            );
        }
        h.push_str("</div>");
        h.push_str(&self.control_chart());
        h.push_str(&digest.exceptions.section());
        h.push_str(&self.ages.section());
        h.push_str(&self.changes(digest));
        h.push_str(&self.roots());
        h.push_str(&self.oldest_keys());
        h.push_str(&self.per_ou());
        h.push_str(&self.the_run(facts));
        h
    }

    /// The coverage tiles, and the accounts not fully audited.
    fn coverage(&mut self) -> String {
        let mut h = String::new();
        let count = |s: &str| self.by_status.get(s).copied().unwrap_or(0);
        h.push_str("<h2>Coverage</h2><div class=\"tiles\">");
        for (label, status, class) in [
            ("audited", "audited", "ok"),
            ("partial", "partial", "warn"),
            ("skipped", "skipped", "bad"),
            ("not active", "not_active", "meta"),
        ] {
            let _ = write!(
                h,
                "<div class=\"tile\"><b class=\"{class}\">{}</b>{label}</div>",
                count(status)
            );
        }
        h.push_str("</div>");
        let blind = count("partial") + count("skipped");
        if blind > 0 {
            h.push_str("<p class=\"bad\">Accounts not fully audited are blind spots: what the audit could not read there is unknown.</p>\
                <div class=\"wide\"><table><tr><th>account</th><th>OU</th><th>status</th><th>error</th></tr>");
            let (lines, blind_total) = self.accounts.blind();
            for (ou, a) in lines {
                let class = if a.status == "skipped" { "bad" } else { "warn" };
                let error = clip(&a.error, 300);
                let _ = write!(
                    h,
                    "<tr><td>{} ({})</td><td>{}</td><td class=\"{class}\">{}</td><td>{}</td></tr>",
                    esc(&a.id),
                    esc(&a.name),
                    esc(ou),
                    esc(&a.status),
                    esc(&error)
                );
            }
            h.push_str("</table></div>");
            if blind_total as usize > lines.len() {
                let _ = write!(
                    h,
                    "<p class=\"more\">and {} more in the accounts report</p>",
                    blind_total as usize - lines.len()
                );
            }
        }
        h
    }

    /// What changed since the run compared with, or why nothing was compared.
    fn changes(&self, digest: &Digest) -> String {
        let mut h = String::new();
        h.push_str("<h2>Since the last run</h2>");
        match &digest.against {
            None if digest.not_compared.is_some() => {
                let n = digest.not_compared.as_ref().expect("some");
                let _ = write!(h, "<p class=\"warn\"><b>{}</b></p>", esc(&n.line()));
            }
            None => h.push_str("<p>No earlier run was compared: every finding is new.</p>"),
            Some(run) => {
                let _ = write!(
                    h,
                    "<p>Against run {}: <b>{}</b> new findings, <b>{}</b> resolved.</p>",
                    esc(run),
                    digest.new_findings,
                    digest.resolved_findings
                );
                if !digest.counts.is_empty() {
                    h.push_str(
                        "<table><tr><th>change</th><th>kind</th><th class=\"n\">rows</th></tr>",
                    );
                    for ((change, kind), n) in &digest.counts {
                        let _ = write!(
                            h,
                            "<tr><td>{}</td><td>{}</td><td class=\"n\">{n}</td></tr>",
                            esc(change),
                            esc(kind)
                        );
                    }
                    h.push_str("</table>");
                }
                let new = digest.sorted_new();
                if !new.is_empty() {
                    h.push_str(
                        "<table><tr><th>severity</th><th>account</th><th>new finding</th></tr>",
                    );
                    for c in new.iter().take(ROWS) {
                        let _ = write!(
                            h,
                            "<tr><td>{}</td><td>{} ({})</td><td>{}</td></tr>",
                            esc(&c.severity),
                            esc(&c.account_id),
                            esc(&c.account_name),
                            esc(&c.detail)
                        );
                    }
                    h.push_str("</table>");
                    if digest.new_findings as usize > new.len().min(ROWS) {
                        let _ = write!(
                            h,
                            "<p class=\"more\">and {} more in the changes report</p>",
                            digest.new_findings as usize - new.len().min(ROWS)
                        );
                    }
                }
            }
        }
        h
    }

    /// The root users with findings.
    fn roots(&self) -> String {
        let mut h = String::new();
        h.push_str("<h2>Root users with findings</h2>");
        if self.root.is_empty() {
            h.push_str("<p class=\"ok\">No root user has a finding.</p>");
        } else {
            h.push_str("<table><tr><th>account</th><th>name</th><th>flags</th></tr>");
            for (id, name, flags) in &self.root {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(id),
                    esc(name),
                    esc(flags)
                );
            }
            h.push_str("</table>");
            if self.root_more > 0 {
                let _ = write!(
                    h,
                    "<p class=\"more\">and {} more accounts</p>",
                    self.root_more
                );
            }
        }
        h
    }

    /// The oldest active access keys.
    fn oldest_keys(&self) -> String {
        let mut h = String::new();
        h.push_str("<h2>The oldest active access keys</h2>");
        let mut oldest: Vec<&OldKey> = self.oldest.iter().collect();
        oldest.sort_by_key(|k| k.age);
        if oldest.is_empty() {
            h.push_str("<p>No active access key.</p>");
        } else {
            h.push_str("<table><tr><th class=\"n\">age (days)</th><th>account</th><th>user</th><th>key</th><th>created</th><th>last used</th></tr>");
            for k in oldest {
                let _ = write!(
                    h,
                    "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    k.age.0,
                    esc(&k.account),
                    esc(&k.user),
                    esc(&k.id),
                    esc(&k.created),
                    esc(&k.last_used)
                );
            }
            h.push_str("</table>");
        }
        let _ = write!(
            h,
            "<h2>Access keys never used ({})</h2>",
            self.never_used_total
        );
        if !self.never_used.is_empty() {
            h.push_str("<table><tr><th>account</th><th>user</th><th>key</th><th>created</th></tr>");
            for (a, u, k, c) in &self.never_used {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(a),
                    esc(u),
                    esc(k),
                    esc(c)
                );
            }
            h.push_str("</table>");
            if self.never_used_total as usize > self.never_used.len() {
                let _ = write!(
                    h,
                    "<p class=\"more\">and {} more in the key report</p>",
                    self.never_used_total as usize - self.never_used.len()
                );
            }
        }
        h
    }

    /// Flags per OU, each OU opening on its accounts.
    fn per_ou(&mut self) -> String {
        let mut h = String::new();
        h.push_str("<h2>Flags per OU and account</h2><p class=\"meta\">Users carrying each flag, root included. One row per OU, the OUs with the most flags first; open an OU below for its accounts.</p>");
        let ous = self.accounts.ous();
        h.push_str("<div class=\"wide\"><table class=\"small\"><tr><th>OU</th><th class=\"n\">accounts</th><th class=\"n\">not fully audited</th><th class=\"n\">users</th>");
        for f in Flag::ALL {
            let _ = write!(
                h,
                "<th class=\"n\" title=\"{}\">{}</th>",
                esc(f.title()),
                esc(&f.code().replace('_', " "))
            );
        }
        h.push_str("</tr>");
        for (ou, o) in ous.iter().take(ROWS * 2) {
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n{}\">{}</td><td class=\"n\">{}</td>",
                esc(ou),
                o.accounts,
                if o.blind > 0 { " bad" } else { "" },
                o.blind,
                o.users
            );
            for n in o.totals {
                let _ = write!(h, "<td class=\"n\">{n}</td>");
            }
            h.push_str("</tr>");
        }
        h.push_str("</table></div>");
        if ous.len() > ROWS * 2 {
            let _ = write!(
                h,
                "<p class=\"more\">and {} more OUs (the accounts report's ou_path has them all)</p>",
                ous.len() - ROWS * 2
            );
        }
        for (ou, o) in ous.iter().take(ROWS * 2) {
            let _ = write!(
                h,
                "<details><summary>{} — {} accounts, {} flags</summary><div class=\"wide\"><table class=\"small\"><tr><th>account</th><th>status</th><th class=\"n\">users</th><th class=\"n\">keys</th>",
                esc(ou),
                o.accounts,
                o.totals.iter().sum::<u64>()
            );
            for f in Flag::ALL {
                let _ = write!(
                    h,
                    "<th class=\"n\" title=\"{}\">{}</th>",
                    esc(f.title()),
                    esc(&f.code().replace('_', " "))
                );
            }
            h.push_str("<th>error</th></tr>");
            let mut shown = 0;
            for a in o.shown() {
                shown += 1;
                let class = match a.status.as_str() {
                    "partial" => " class=\"warn\"",
                    "skipped" => " class=\"bad\"",
                    _ => "",
                };
                let _ = write!(
                    h,
                    "<tr><td>{} ({})</td><td{class}>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
                    esc(&a.id),
                    esc(&a.name),
                    esc(&a.status),
                    a.users,
                    a.keys
                );
                for n in a.flags {
                    let _ = write!(h, "<td class=\"n\">{n}</td>");
                }
                let error = clip(&a.error, 300);
                let _ = write!(h, "<td>{}</td></tr>", esc(&error));
            }
            h.push_str("</table></div>");
            if o.accounts as usize > shown {
                let _ = write!(
                    h,
                    "<p class=\"more\">and {} more accounts in this OU (the accounts report has them all)</p>",
                    o.accounts as usize - shown
                );
            }
            h.push_str("</details>");
        }
        h
    }

    /// How the run went, and the page's end.
    fn the_run(&self, facts: &RunFacts) -> String {
        let mut h = String::new();
        h.push_str("<h2>How the run went</h2><table>");
        let _ = write!(
            h,
            "<tr><td>duration</td><td class=\"n\">{:.1} s</td></tr><tr><td>API calls</td><td class=\"n\">{}</td></tr>\
             <tr><td>throttled</td><td class=\"n\">{}</td></tr><tr><td>server errors retried</td><td class=\"n\">{}</td></tr>\
             <tr><td>AssumeRole</td><td class=\"n\">{}</td></tr><tr><td>accounts left out by the filters</td><td class=\"n\">{}</td></tr>\
             <tr><td>accounts done before a resume</td><td class=\"n\">{}</td></tr></table>",
            facts.elapsed_s,
            facts.calls,
            facts.throttled,
            facts.server_errors,
            facts.assume_role,
            facts.filtered_out,
            facts.resumed
        );
        if !self.slowest.is_empty() {
            h.push_str("<table><tr><th>slowest accounts</th><th class=\"n\">seconds</th></tr>");
            for (secs, id, name) in &self.slowest {
                let _ = write!(
                    h,
                    "<tr><td>{} ({})</td><td class=\"n\">{secs:.1}</td></tr>",
                    esc(id),
                    esc(name)
                );
            }
            h.push_str("</table>");
        }
        h.push_str("<p class=\"meta\">Written by iam-audit. The reports beside this page hold every row.</p></body></html>\n");
        h
    }

    /// Findings per CIS control, as horizontal bars.
    fn control_chart(&self) -> String {
        let mut rows: Vec<(String, u64)> = Flag::ALL
            .iter()
            .map(|f| {
                // Each version the run carries, short: `(v3.0 1.14 / v5.0 1.13 / v6.0 2.13 / v7.0 2.12)`.
                let numbers: Vec<String> = f
                    .requirements(false, &self.cis_versions)
                    .into_iter()
                    .map(|(v, n)| format!("v{} {n}", &v.number()[..3]))
                    .collect();
                let label = if numbers.is_empty() {
                    format!("{} (not CIS)", f.code())
                } else {
                    format!("{} ({})", f.code(), numbers.join(" / "))
                };
                (label, self.findings_by_flag[*f as usize])
            })
            .collect();
        rows.push(("audit_incomplete (coverage)".into(), self.coverage_findings));
        super::html::bars(&rows, "Findings per CIS control")
    }
}
