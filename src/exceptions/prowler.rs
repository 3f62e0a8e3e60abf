//! A Prowler mutelist (`Mutelist: Accounts: ACCOUNT: Checks: CHECK: {Regions, Resources, Tags,
//! Description, Exceptions}`) converted into our rules: one rule per account and check. What Prowler's
//! format lacks (an owner, an expiry; a reason where an entry has no `Description`) comes from the
//! command line, or the file is refused. Checks of Prowler's that no flag here answers are left out and
//! named in the notes; what cannot be converted faithfully (tag conditions, resource regexes) is refused,
//! since dropping it would accept more than the mutelist did. The table is docs/exceptions.md's.

use std::collections::HashMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::record::Flag;
use crate::risk::Seal;

use super::rules::{check_horizon, FlagSet, Match, Rule, RuleKind};
use super::ReadOptions;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMutelist {
    #[serde(rename = "Accounts")]
    accounts: HashMap<Spanned<String>, RawAccount>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    #[serde(rename = "Checks")]
    checks: HashMap<Spanned<String>, RawCheck>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    #[serde(rename = "Regions", default)]
    regions: Vec<String>,
    #[serde(rename = "Resources", default)]
    resources: Vec<String>,
    #[serde(rename = "Tags", default)]
    tags: Vec<String>,
    #[serde(rename = "Description")]
    description: Option<String>,
    #[serde(rename = "Exceptions")]
    exceptions: Option<RawExceptions>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExceptions {
    #[serde(rename = "Accounts", default)]
    accounts: Vec<String>,
    #[serde(rename = "Regions", default)]
    regions: Vec<String>,
    #[serde(rename = "Resources", default)]
    resources: Vec<String>,
    #[serde(rename = "Tags", default)]
    tags: Vec<String>,
}

/// Prowler's IAM credential checks and the flags that answer them (docs/exceptions.md).
pub const CHECKS: &[(&str, &[Flag])] = &[
    ("iam_no_root_access_key", &[Flag::RootAccessKey]),
    ("iam_root_access_key_check", &[Flag::RootAccessKey]),
    ("iam_root_mfa_enabled", &[Flag::RootWithoutMfa]),
    (
        "iam_root_hardware_mfa_enabled",
        &[Flag::RootWithoutHardwareMfa],
    ),
    (
        "iam_user_mfa_enabled_console_access",
        &[Flag::ConsoleWithoutMfa],
    ),
    (
        "iam_user_no_setup_initial_access_key",
        &[Flag::KeyCreatedWithUser],
    ),
    ("iam_user_accesskey_unused", &[Flag::KeyUnused]),
    ("iam_user_console_access_unused", &[Flag::PasswordUnused]),
    (
        "iam_disable_45_days_credentials",
        &[Flag::PasswordUnused, Flag::KeyUnused],
    ),
    ("iam_user_two_active_access_key", &[Flag::TwoActiveKeys]),
    ("iam_rotate_access_key_90_days", &[Flag::KeyOlderThan90d]),
];

type Refusal = (Option<u64>, String);

/// The mutelist's entries as rules, and the notes of what was left out.
pub(super) fn convert(
    list: Spanned<RawMutelist>,
    options: &ReadOptions,
) -> Result<(Vec<Rule>, Vec<String>), Refusal> {
    let top = list.referenced.line();
    let lacking = |what: &str, flag: &str| {
        (
            Some(top),
            format!("Mutelist: a Prowler mutelist has no {what}; give it with {flag} (every converted rule gets it)"),
        )
    };
    let owner = options
        .owner
        .clone()
        .ok_or_else(|| lacking("owner", "--exceptions-owner EMAIL"))?;
    let expires = options
        .expires
        .ok_or_else(|| lacking("expiry", "--exceptions-expires YYYY-MM-DD"))?;
    check_horizon(expires, top, options).map_err(|(l, m)| (Some(l), m))?;
    let (mut rules, mut notes) = (Vec::new(), Vec::new());
    for (account, entry) in list.value.accounts {
        let account = account.value;
        for (check_id, c) in entry.checks {
            let line = check_id.referenced.line();
            let check_id = check_id.value;
            let flags: Vec<Flag> = if check_id == "*" {
                Flag::ALL.to_vec()
            } else {
                match CHECKS.iter().find(|(id, _)| *id == check_id) {
                    Some((_, flags)) => flags.to_vec(),
                    None => {
                        notes.push(format!(
                            "line {line}: Prowler check {check_id} has no flag here (docs/exceptions.md); its entry is left out"
                        ));
                        continue;
                    }
                }
            };
            let refuse = |m: String| (Some(line), format!("Mutelist {account} {check_id}: {m}"));
            let ex = c.exceptions.unwrap_or_default();
            if !c.tags.is_empty() || !ex.tags.is_empty() {
                return Err(refuse(
                    "Tags cannot be converted (the audit reads no user tags); name the users instead".into(),
                ));
            }
            let any_region = |r: &[String]| r.is_empty() || r.iter().any(|r| r == "*" || r == ".*");
            if !any_region(&c.regions) || !ex.regions.is_empty() {
                notes.push(format!(
                    "line {line}: Regions of {account} {check_id} are dropped: IAM is global"
                ));
            }
            let reason = match (&c.description, &options.reason) {
                (Some(d), _) if !d.trim().is_empty() => d.trim().to_string(),
                (_, Some(r)) => r.clone(),
                _ => {
                    return Err(refuse(
                        "no Description to be the rule's reason; add one, or give --exceptions-reason TEXT".into(),
                    ))
                }
            };
            let users = resources(&c.resources).map_err(&refuse)?;
            let except_users = resources(&ex.resources).map_err(&refuse)?;
            let accounts = if account == "*" {
                Vec::new()
            } else {
                vec![account.clone()]
            };
            let mut matching = Match {
                accounts,
                flags: FlagSet::of(flags),
                ..Match::default()
            };
            split_keys(&mut matching, users);
            let mut except = Match {
                accounts: ex.accounts.clone(),
                ..Match::default()
            };
            split_keys(&mut except, except_users);
            rules.push(Rule {
                id: format!(
                    "prowler-{}-{}",
                    if account == "*" { "all" } else { &account },
                    check_id.replace('*', "all")
                ),
                owner: owner.clone(),
                reason,
                expires,
                ticket: None,
                kind: RuleKind::Exception,
                expect: Seal::default(),
                matching,
                except,
                line,
            });
        }
    }
    // The file's order (the maps above have none).
    rules.sort_by_key(|r| r.line);
    notes.sort_by_key(|n| {
        n.trim_start_matches("line ")
            .split(':')
            .next()
            .and_then(|l| l.parse::<u64>().ok())
    });
    Ok((rules, notes))
}

/// Prowler's `Resources` (regular expressions over the resource's name or ARN) as our globs: `*` and
/// `.*` are anything, and a plain name, ARN or key id is itself; any other expression is refused.
fn resources(list: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for r in list {
        if r == "*" || r == ".*" {
            return Ok(Vec::new());
        }
        let plain = r
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@+=,:/".contains(c));
        // A dot is a regex's any-character, but in a name it is itself: a name with dots is taken as
        // written, which matches no more than the regex did.
        if !plain {
            return Err(format!(
                "Resources '{r}' is a regular expression; write the names (or a glob in our format)"
            ));
        }
        out.push(r.clone());
    }
    Ok(out)
}

/// Resource entries that are access key ids pin keys; the others are users.
fn split_keys(m: &mut Match, resources: Vec<String>) {
    for r in resources {
        if r.starts_with("AKIA") {
            m.access_keys.push(r);
        } else {
            m.users.push(r);
        }
    }
}
