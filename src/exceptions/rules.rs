//! One rule of an exceptions file: as written (`RawRule`, every field with its line), as checked
//! (`Rule`), and what it matches.

use chrono::NaiveDate;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::config::glob;
use crate::record::snapshot::{Finding, Resource};
use crate::record::{CisVersion, Flag, ROOT_USER};
use crate::risk::Seal;

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
    /// `kind: break_glass`: what must stay true of the users (default: all of it).
    expect: Option<Vec<Spanned<String>>>,
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
    /// Break-glass users: named, asserted sealed (`expect`); each broken expectation is a finding of its
    /// own, and the one flag a sealed state trips (`password_unused_45d`) is accepted.
    BreakGlass,
}

/// What one finding is about, whatever holds it (a snapshot's finding, or a row being written): the
/// account, the user (none for the account's own finding), the key, and the flag.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub account_id: &'a str,
    pub account_name: &'a str,
    pub ou_path: &'a str,
    /// The user's name (`<root_account>` for the root user) and ARN.
    pub user: Option<(&'a str, &'a str)>,
    pub key: Option<&'a str>,
    pub flag: Flag,
}

impl<'a> Target<'a> {
    /// A snapshot's finding; `None` for the coverage finding (the audit was blind), never accepted.
    pub fn of(f: &Finding<'a>) -> Option<Target<'a>> {
        let a = f.account;
        let (user, key) = match f.resource {
            Resource::Account => (None, None),
            Resource::Root(u) | Resource::User(u) => {
                (Some((u.name.as_str(), u.arn.as_str())), None)
            }
            Resource::Key(k) => {
                let arn = a
                    .users
                    .iter()
                    .find(|u| u.name == k.user)
                    .map(|u| u.arn.as_str())
                    .unwrap_or_default();
                (Some((k.user.as_str(), arn)), Some(k.id.as_str()))
            }
        };
        Some(Target {
            account_id: &a.id,
            account_name: &a.name,
            ou_path: &a.ou_path,
            user,
            key,
            flag: f.flag()?,
        })
    }
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
    pub fn matches(&self, t: &Target<'_>) -> bool {
        (self.flags.is_empty() || self.flags.contains(t.flag))
            && (self.accounts.is_empty() || self.accounts.iter().any(|p| account_matches(p, t)))
            && (self.users.is_empty() || self.users.iter().any(|p| user_matches(p, t)))
            && (self.access_keys.is_empty()
                || t.key
                    .is_some_and(|k| self.access_keys.iter().any(|x| x == k)))
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
    /// What a break-glass rule asserts of its users (empty for an exception).
    pub expect: Seal,
    pub matching: Match,
    pub except: Match,
    /// The line of the rule in its file.
    pub line: u64,
}

impl Rule {
    pub fn expired(&self, today: NaiveDate) -> bool {
        today > self.expires
    }

    /// Whether it accepts the finding: an exception, the findings it matches; a break-glass rule, the one
    /// flag its users' sealed state trips.
    pub fn matches(&self, t: &Target<'_>) -> bool {
        if self.kind == RuleKind::BreakGlass && t.flag != Flag::PasswordUnused {
            return false;
        }
        self.matching.matches(t) && (self.except.is_empty() || !self.except.matches(t))
    }

    /// Whether a break-glass rule names this IAM user (never the root user) of this account.
    pub fn guards(&self, account: (&str, &str, &str), user: (&str, &str)) -> bool {
        let (account_id, account_name, ou_path) = account;
        self.kind == RuleKind::BreakGlass
            && user.0 != ROOT_USER
            && self.matches(&Target {
                account_id,
                account_name,
                ou_path,
                user: Some(user),
                key: None,
                flag: Flag::PasswordUnused,
            })
    }
}

fn account_matches(pattern: &str, t: &Target<'_>) -> bool {
    if pattern.contains('/') {
        // The OU itself or any OU above the account's: `Root/Prod` covers `Root/Prod/EU`.
        let mut prefix = String::new();
        t.ou_path.split('/').any(|name| {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(name);
            glob(pattern, &prefix)
        })
    } else {
        pattern == t.account_id || glob(pattern, t.account_name)
    }
}

fn user_matches(pattern: &str, t: &Target<'_>) -> bool {
    let Some((name, arn)) = t.user else {
        return false;
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
    let version = CisVersion::ALL.into_iter().find(|v| v.short() == version)?;
    let flags: Vec<Flag> = Flag::ALL
        .into_iter()
        .filter(|f| f.cis().and_then(|c| c.number(version)) == Some(number))
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
    let expect = match kind {
        RuleKind::BreakGlass => {
            if matching.users.is_empty()
                || !matching.flags.is_empty()
                || !matching.access_keys.is_empty()
            {
                return Err((
                    line,
                    format!("{at}: a break_glass rule names its users (match.users, and accounts if you like), not flags or access_keys: it asserts what must stay true of them (expect)"),
                ));
            }
            seal_of(r.expect.as_deref(), line)?
        }
        RuleKind::Exception => {
            if let Some(first) = r.expect.as_ref().and_then(|e| e.first()) {
                return Err((
                    first.referenced.line(),
                    "expect: only a break_glass rule asserts expectations; add kind: break_glass or remove expect".to_string(),
                ));
            }
            Seal::default()
        }
    };
    Ok(Rule {
        id,
        owner,
        reason,
        expires,
        ticket: r.ticket.map(|t| t.value.trim().to_string()),
        kind,
        expect,
        matching,
        except,
        line,
    })
}

/// A break-glass rule's `expect:` (every expectation when left out).
fn seal_of(expect: Option<&[Spanned<String>]>, line: u64) -> Result<Seal, Refusal> {
    let Some(names) = expect else {
        return Ok(Seal::all());
    };
    if names.is_empty() {
        return Err((
            line,
            format!(
                "expect: names nothing; leave it out to expect all of {}",
                Seal::NAMES.join(", ")
            ),
        ));
    }
    let mut seal = Seal::default();
    for n in names {
        if !seal.add(n.value.trim()) {
            return Err((
                n.referenced.line(),
                format!(
                    "expect: '{}' is not an expectation; use any of {}",
                    n.value,
                    Seal::NAMES.join(", ")
                ),
            ));
        }
    }
    Ok(seal)
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
                        "{field}.flags: '{}' is neither a flag nor a CIS number here; use a flag code (docs/outputs.md, e.g. key_older_than_90d) or v3:N / v5:N / v6:N / v7:N (e.g. v5:1.13)",
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
