//! One rule of an exceptions file: as written (`RawRule`, every field with its line), as checked
//! (`Rule`), and what it matches.

use chrono::NaiveDate;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::config::glob;
use crate::record::snapshot::{Finding, Resource};
use crate::record::{Flag, ROOT_USER};

use super::ReadOptions;

/// A rule as the file writes it; every field optional here so that a missing one is named by us, with
/// the rule's line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    id: Option<Spanned<String>>,
    owner: Option<Spanned<String>>,
    reason: Option<Spanned<String>>,
    expires: Option<Spanned<String>>,
    ticket: Option<Spanned<String>>,
    kind: Option<Spanned<String>>,
    #[serde(rename = "match")]
    matching: Option<Spanned<RawMatch>>,
    except: Option<Spanned<RawMatch>>,
}

/// `match:` or `except:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMatch {
    #[serde(default)]
    accounts: Vec<Spanned<String>>,
    #[serde(default)]
    users: Vec<Spanned<String>>,
    #[serde(default)]
    access_keys: Vec<Spanned<String>>,
    #[serde(default)]
    flags: Vec<Spanned<String>>,
}

/// What a rule is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// The findings it matches are accepted until it expires.
    Exception,
    /// Break-glass users: named, asserted sealed (issue 26, part 3: not yet asserted by this build).
    BreakGlass,
}

/// Which flags a rule names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagSet(Vec<Flag>);

impl FlagSet {
    pub fn all() -> Self {
        FlagSet(Flag::ALL.to_vec())
    }
    pub fn of(flags: impl IntoIterator<Item = Flag>) -> Self {
        let mut v: Vec<Flag> = Vec::new();
        for f in flags {
            if !v.contains(&f) {
                v.push(f);
            }
        }
        FlagSet(v)
    }
    pub fn contains(&self, f: Flag) -> bool {
        self.0.contains(&f)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The fields of `match:` (ANDed; the entries of one field ORed; an empty field matches anything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Match {
    /// 12-digit ids, account name globs, or OU path globs (with a `/`: the OU and those below it).
    pub accounts: Vec<String>,
    /// User name globs, user ARN globs (`arn:`), or path globs (`/…/`).
    pub users: Vec<String>,
    /// Access key ids: the rule holds for that key only.
    pub access_keys: Vec<String>,
    pub flags: FlagSet,
}

impl Match {
    fn is_empty(&self) -> bool {
        self.accounts.is_empty()
            && self.users.is_empty()
            && self.access_keys.is_empty()
            && self.flags.is_empty()
    }

    /// Whether the finding is matched: every non-empty field has an entry that matches it.
    pub fn matches(&self, f: &Finding<'_>) -> bool {
        let Some(flag) = f.flag() else {
            // The coverage finding (the audit was blind) is never accepted.
            return false;
        };
        (self.flags.is_empty() || self.flags.contains(flag))
            && (self.accounts.is_empty() || self.accounts.iter().any(|p| account_matches(p, f)))
            && (self.users.is_empty() || self.users.iter().any(|p| user_matches(p, f)))
            && (self.access_keys.is_empty()
                || matches!(f.resource, Resource::Key(k) if self.access_keys.contains(&k.id)))
    }
}

impl std::fmt::Display for Match {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        for (name, list) in [
            ("accounts", &self.accounts),
            ("users", &self.users),
            ("access_keys", &self.access_keys),
        ] {
            if !list.is_empty() {
                parts.push(format!("{name} {}", list.join(", ")));
            }
        }
        if !self.flags.is_empty() {
            let codes: Vec<&str> = self.flags.0.iter().map(|f| f.code()).collect();
            parts.push(format!("flags {}", codes.join(", ")));
        }
        f.write_str(&parts.join("; "))
    }
}

/// One rule, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub id: String,
    pub owner: String,
    pub reason: String,
    /// The last day it holds (UTC): from the next day on it matches nothing.
    pub expires: NaiveDate,
    pub ticket: Option<String>,
    pub kind: RuleKind,
    pub matching: Match,
    pub except: Match,
    /// The line of the rule in its file.
    pub line: u64,
}

impl Rule {
    pub fn expired(&self, today: NaiveDate) -> bool {
        today > self.expires
    }

    pub fn matches(&self, f: &Finding<'_>) -> bool {
        self.matching.matches(f) && (self.except.is_empty() || !self.except.matches(f))
    }
}

fn account_matches(pattern: &str, f: &Finding<'_>) -> bool {
    let a = f.account;
    if pattern.contains('/') {
        // The OU itself or any OU above the account's: `Root/Prod` covers `Root/Prod/EU`.
        let mut prefix = String::new();
        a.ou_path.split('/').any(|name| {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(name);
            glob(pattern, &prefix)
        })
    } else {
        pattern == a.id || glob(pattern, &a.name)
    }
}

fn user_matches(pattern: &str, f: &Finding<'_>) -> bool {
    let (name, arn) = match f.resource {
        Resource::Account => return false,
        Resource::Root(u) | Resource::User(u) => (u.name.as_str(), u.arn.as_str()),
        Resource::Key(k) => {
            let arn = f
                .account
                .users
                .iter()
                .find(|u| u.name == k.user)
                .map(|u| u.arn.as_str())
                .unwrap_or_default();
            (k.user.as_str(), arn)
        }
    };
    if pattern.starts_with("arn:") {
        glob(pattern, arn)
    } else if pattern.starts_with('/') {
        glob(pattern, &user_path(arn))
    } else if pattern == "root" {
        name == ROOT_USER
    } else {
        glob(pattern, name)
    }
}

/// A user's path from its ARN (`arn:aws:iam::1:user/ops/alice` → `/ops/`; `/` when none).
fn user_path(arn: &str) -> String {
    let Some((_, resource)) = arn.split_once(":user/") else {
        return "/".into();
    };
    match resource.rsplit_once('/') {
        Some((path, _)) => format!("/{path}/"),
        None => "/".into(),
    }
}

/// A flag named by code (`key_older_than_90d`) or CIS number (`v3:1.14`, `v5:1.13`: each flag that
/// fails it).
pub(super) fn flags_named(name: &str) -> Option<Vec<Flag>> {
    if let Some(f) = Flag::from_code(name) {
        return Some(vec![f]);
    }
    let (version, number) = name.split_once(':')?;
    let flags: Vec<Flag> = Flag::ALL
        .into_iter()
        .filter(|f| {
            f.cis().is_some_and(|c| match version {
                "v3" => c.v3 == number,
                "v5" => c.v5 == number,
                _ => false,
            })
        })
        .collect();
    (!flags.is_empty()).then_some(flags)
}

type Refusal = (u64, String);

/// A rule as written, checked: every required field present, dates and names valid.
pub(super) fn check(raw: Spanned<RawRule>, options: &ReadOptions) -> Result<Rule, Refusal> {
    let line = raw.referenced.line();
    let r = raw.value;
    let id = required(&r.id, "id", line, None)?;
    let at = format!("rule '{id}'");
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err((
            r.id.as_ref().map_or(line, |s| s.referenced.line()),
            format!("id: '{id}' may hold only letters, digits, '-', '_' and '.'"),
        ));
    }
    let owner = required(&r.owner, "owner", line, Some(&at))?;
    let reason = required(&r.reason, "reason", line, Some(&at))?;
    let expires_text = required(&r.expires, "expires", line, Some(&at))?;
    let expires_line = r.expires.as_ref().map_or(line, |s| s.referenced.line());
    let expires = NaiveDate::parse_from_str(&expires_text, "%Y-%m-%d").map_err(|_| {
        (
            expires_line,
            format!(
                "expires: '{expires_text}' is not a date; write YYYY-MM-DD (UTC), e.g. 2027-06-30"
            ),
        )
    })?;
    check_horizon(expires, expires_line, options)?;
    let kind = match r.kind.as_ref().map(|k| k.value.as_str()) {
        None | Some("exception") => RuleKind::Exception,
        Some("break_glass") => RuleKind::BreakGlass,
        Some(other) => {
            return Err((
                r.kind.as_ref().map_or(line, |k| k.referenced.line()),
                format!(
                "kind: '{other}' is not a kind of rule; use exception (the default) or break_glass"
            ),
            ))
        }
    };
    let Some(raw_match) = r.matching else {
        return Err((
            line,
            format!("{at}: match is required (a rule that matches everything accepts every finding): name accounts, users, access_keys or flags"),
        ));
    };
    let matching = checked_match(raw_match, "match")?;
    if matching.is_empty() {
        return Err((
            line,
            format!("{at}: match names nothing: name accounts, users, access_keys or flags"),
        ));
    }
    let except = match r.except {
        Some(e) => checked_match(e, "except")?,
        None => Match::default(),
    };
    Ok(Rule {
        id,
        owner,
        reason,
        expires,
        ticket: r.ticket.map(|t| t.value.trim().to_string()),
        kind,
        matching,
        except,
        line,
    })
}

/// An expiry within the longest horizon from today.
pub(super) fn check_horizon(
    expires: NaiveDate,
    line: u64,
    options: &ReadOptions,
) -> Result<(), Refusal> {
    let horizon = options.today + chrono::Duration::days(options.horizon_days);
    if expires > horizon {
        return Err((
            line,
            format!(
                "expires: {expires} is more than {} days away (after {horizon}); accept it for less, or raise exceptions_horizon_days",
                options.horizon_days
            ),
        ));
    }
    Ok(())
}

fn required(
    field: &Option<Spanned<String>>,
    name: &str,
    line: u64,
    at: Option<&str>,
) -> Result<String, Refusal> {
    match field
        .as_ref()
        .map(|s| (s.value.trim(), s.referenced.line()))
    {
        Some((v, _)) if !v.is_empty() => Ok(v.to_string()),
        Some((_, l)) => Err((l, format!("{name}: must not be empty"))),
        None => Err((
            line,
            match at {
                Some(at) => format!("{at}: {name} is required"),
                None => {
                    format!("{name} is required (each rule has an id, owner, reason and expires)")
                }
            },
        )),
    }
}

fn checked_match(raw: Spanned<RawMatch>, field: &str) -> Result<Match, Refusal> {
    let m = raw.value;
    let text = |list: &[Spanned<String>], key: &str| -> Result<Vec<String>, Refusal> {
        list.iter()
            .map(|s| {
                let v = s.value.trim();
                if v.is_empty() {
                    Err((
                        s.referenced.line(),
                        format!("{field}.{key}: entries must not be empty"),
                    ))
                } else {
                    Ok(v.to_string())
                }
            })
            .collect()
    };
    let accounts = text(&m.accounts, "accounts")?;
    if let Some(bad) = m
        .accounts
        .iter()
        .find(|s| s.value.starts_with("ou-") || s.value.starts_with("r-"))
    {
        return Err((
            bad.referenced.line(),
            format!(
                "{field}.accounts: '{}' is an OU id; the reports hold OU paths: write the OU's path (e.g. 'Root/Workloads/Prod')",
                bad.value
            ),
        ));
    }
    let access_keys = text(&m.access_keys, "access_keys")?;
    if let Some(bad) = m.access_keys.iter().find(|s| {
        let v = s.value.trim();
        !(v.len() >= 16 && v.starts_with("AKIA") && v.chars().all(|c| c.is_ascii_alphanumeric()))
    }) {
        return Err((
            bad.referenced.line(),
            format!(
                "{field}.access_keys: '{}' is not an access key id (AKIA…); a rule pins one key by its id",
                bad.value
            ),
        ));
    }
    let mut flags = Vec::new();
    for s in &m.flags {
        match flags_named(s.value.trim()) {
            Some(f) => flags.extend(f),
            None => {
                return Err((
                    s.referenced.line(),
                    format!(
                        "{field}.flags: '{}' is neither a flag nor a CIS number here; use a flag code (docs/outputs.md, e.g. key_older_than_90d) or v3:N / v5:N (e.g. v5:1.13)",
                        s.value
                    ),
                ))
            }
        }
    }
    Ok(Match {
        accounts,
        users: text(&m.users, "users")?,
        access_keys,
        flags: FlagSet::of(flags),
    })
}
