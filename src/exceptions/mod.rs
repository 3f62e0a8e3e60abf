//! Exceptions an auditor accepts (docs/exceptions.md): a YAML file of rules, each with an owner, a reason
//! and an expiry, that mark the findings they match without dropping them. Rules are ORed; inside a rule
//! the fields of `match` are ANDed, the entries of one field ORed, and `except` carves findings out. A
//! rule past its expiry matches nothing (the finding comes back). A Prowler `Mutelist:` document is read
//! too (`prowler`), converted into rules with what it lacks (an owner, an expiry) given on the command
//! line.
//!
//! The file is parsed with `serde-saphyr`, whose errors and `Spanned` values carry the line of what is
//! wrong, so every refusal names the file, the line and the field.

mod prowler;
mod rules;

use std::fmt;

use chrono::NaiveDate;
use serde::Deserialize;
use serde_saphyr::Spanned;

pub use rules::{FlagSet, Match, Rule, RuleKind, Target};

use crate::aws::Aws;
use crate::config::Settings;
use crate::record::snapshot::Finding;

/// The longest a rule may live, from the day it is read, unless the settings say otherwise.
pub const DEFAULT_HORIZON_DAYS: i64 = 365;

/// The file's version this build reads.
const VERSION: u32 = 1;

/// A file that cannot be used: where and why, and what to do. Exit 2 (nothing written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionsError {
    pub file: String,
    pub line: Option<u64>,
    pub message: String,
}

impl fmt::Display for ExceptionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "exceptions {}:{line}: {}", self.file, self.message),
            None => write!(f, "exceptions {}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ExceptionsError {}

/// What the reader needs besides the text: the day it is read, the longest horizon, and what a Prowler
/// mutelist lacks.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub today: NaiveDate,
    pub horizon_days: i64,
    /// For a Prowler mutelist: the owner and the expiry every converted rule gets, and the reason of
    /// entries without a `Description`.
    pub owner: Option<String>,
    pub expires: Option<NaiveDate>,
    pub reason: Option<String>,
}

impl ReadOptions {
    pub fn new(today: NaiveDate) -> Self {
        ReadOptions {
            today,
            horizon_days: DEFAULT_HORIZON_DAYS,
            owner: None,
            expires: None,
            reason: None,
        }
    }
}

/// The rules of one file, in the file's order.
#[derive(Debug, Clone, Default)]
pub struct Exceptions {
    /// Where the rules came from, as given.
    pub file: String,
    pub rules: Vec<Rule>,
    /// What a conversion left out (a Prowler check with no flag here), for the summary and `check`.
    pub notes: Vec<String>,
}

impl Exceptions {
    /// The rule that accepts this finding on `today`: the first in the file's order that matches and
    /// has not expired.
    pub fn rule_for(&self, f: &Finding<'_>, today: NaiveDate) -> Option<&Rule> {
        self.rule_accepting(&Target::of(f)?, today)
    }

    /// The rule that accepts what `t` describes on `today` (see `rule_for`).
    pub fn rule_accepting(&self, t: &Target<'_>, today: NaiveDate) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|r| !r.expired(today) && r.matches(t))
    }

    /// The live break-glass rule that names this user of this account (`(id, name, ou_path)`), if any:
    /// the first in the file's order.
    pub fn break_glass(
        &self,
        account: (&str, &str, &str),
        user: (&str, &str),
        today: NaiveDate,
    ) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|r| !r.expired(today) && r.guards(account, user))
    }

    /// The rules that have expired by `today`.
    pub fn expired(&self, today: NaiveDate) -> impl Iterator<Item = &Rule> {
        self.rules.iter().filter(move |r| r.expired(today))
    }

    /// The live rules expiring within `days` of `today`.
    pub fn expiring(&self, today: NaiveDate, days: i64) -> impl Iterator<Item = &Rule> {
        self.rules
            .iter()
            .filter(move |r| !r.expired(today) && (r.expires - today).num_days() <= days)
    }
}

/// The largest exceptions file read (a file of thousands of rules is far below it).
const MAX_BYTES: usize = 4 * 1024 * 1024;

/// The reader's options from the settings: today is the run's start (UTC).
pub fn options_of(settings: &Settings, file: &str) -> Result<ReadOptions, ExceptionsError> {
    let k = &settings.keys;
    let expires = match k.exceptions_expires.as_deref() {
        Some(d) => Some(NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").map_err(|_| {
            ExceptionsError {
                file: file.to_string(),
                line: None,
                message: format!(
                    "exceptions_expires: '{d}' is not a date; write YYYY-MM-DD (UTC), e.g. 2027-06-30"
                ),
            }
        })?),
        None => None,
    };
    Ok(ReadOptions {
        today: settings.started_at.date_naive(),
        horizon_days: i64::from(k.exceptions_horizon_days),
        owner: k.exceptions_owner.clone(),
        expires,
        reason: k.exceptions_reason.clone(),
    })
}

/// The run's exceptions (`exceptions`: a local path, or `s3://BUCKET/KEY` read with the caller's
/// credentials), read and checked before anything is written; `None` when none is set.
pub async fn load(settings: &Settings, aws: &Aws) -> Result<Option<Exceptions>, ExceptionsError> {
    let Some(file) = settings.keys.exceptions.as_deref() else {
        return match &settings.builtin_exceptions {
            Some((name, text)) => parse(name, text, &options_of(settings, name)?).map(Some),
            None => Ok(None),
        };
    };
    let options = options_of(settings, file)?;
    let unreadable = |message: String| ExceptionsError {
        file: file.to_string(),
        line: None,
        message,
    };
    let text = if file.starts_with("s3://") {
        read_s3(aws, settings, file).await.map_err(|m| {
            unreadable(format!(
                "cannot be read ({m}); the caller needs s3:GetObject on it (docs/exceptions.md)"
            ))
        })?
    } else {
        read_local(file).map_err(unreadable)?
    };
    parse(file, &text, &options).map(Some)
}

/// An exceptions file in S3 (`s3://BUCKET/KEY`), read with the caller's credentials and the expected
/// bucket owner (`s3_expected_owner`, else the caller's account).
async fn read_s3(aws: &Aws, settings: &Settings, url: &str) -> Result<String, String> {
    // The bucket's name checked as the reports' location checks it; the key as given (the location's
    // parser makes a prefix of it).
    let key = url
        .strip_prefix("s3://")
        .and_then(|r| r.split_once('/'))
        .map(|(_, k)| k.to_string())
        .filter(|k| !k.is_empty() && !k.ends_with('/'))
        .ok_or("not s3://BUCKET/KEY")?;
    let bucket = match crate::config::S3Location::parse(url) {
        Some(Ok(l)) => l.bucket,
        Some(Err(e)) => return Err(e),
        None => return Err("not s3://BUCKET/KEY".into()),
    };
    let owner = aws
        .expected_bucket_owner(settings)
        .await
        .map_err(|f| f.to_string())?;
    let object = aws
        .s3(None)
        .get_object()
        .bucket(bucket)
        .key(key)
        .expected_bucket_owner(owner)
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(se) => format!(
                "{}: {}",
                aws_sdk_s3::error::ProvideErrorMetadata::code(se).unwrap_or("Unknown"),
                aws_sdk_s3::error::ProvideErrorMetadata::message(se).unwrap_or("")
            ),
            None => crate::aws::error_chain(&e),
        })?;
    if object.content_length().unwrap_or(0) > MAX_BYTES as i64 {
        return Err(format!("larger than {MAX_BYTES} bytes"));
    }
    let bytes = object.body.collect().await.map_err(|e| e.to_string())?;
    String::from_utf8(bytes.into_bytes().to_vec()).map_err(|_| "not UTF-8 text".into())
}

/// A local exceptions file's text.
pub fn read_local(file: &str) -> Result<String, String> {
    let meta = std::fs::metadata(file).map_err(|e| format!("cannot be read ({e})"))?;
    if meta.len() > MAX_BYTES as u64 {
        return Err(format!("is larger than {MAX_BYTES} bytes"));
    }
    std::fs::read_to_string(file).map_err(|e| format!("cannot be read ({e})"))
}

/// Read an exceptions file (ours, or a Prowler mutelist), every rule checked.
pub fn parse(file: &str, text: &str, options: &ReadOptions) -> Result<Exceptions, ExceptionsError> {
    let fail = |line: Option<u64>, message: String| ExceptionsError {
        file: file.to_string(),
        line,
        message,
    };
    let doc: Document = serde_saphyr::from_str(text).map_err(|e| {
        let line = e.location().map(|l| l.line()).filter(|l| *l > 0);
        let message = e.without_snippet().to_string();
        // The parser's text may name the place again; the line is ours to give.
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .trim()
            .to_string();
        fail(
            line,
            format!("{message} (docs/exceptions.md has the format)"),
        )
    })?;
    match doc {
        Document {
            version: Some(version),
            rules,
            mutelist: None,
        } => {
            let rules = rules.unwrap_or_default();
            if version.value != VERSION {
                return Err(fail(
                    Some(version.referenced.line()),
                    format!(
                        "version: {} is not a version this build reads; write version: {VERSION}",
                        version.value
                    ),
                ));
            }
            let mut out = Exceptions {
                file: file.to_string(),
                ..Exceptions::default()
            };
            for raw in rules {
                let rule = rules::check(raw, options).map_err(|(line, m)| fail(Some(line), m))?;
                if let Some(first) = out.rules.iter().find(|r| r.id == rule.id) {
                    return Err(fail(
                        Some(rule.line),
                        format!(
                            "id: '{}' is already the id of the rule at line {}; give each rule its own id",
                            rule.id, first.line
                        ),
                    ));
                }
                out.rules.push(rule);
            }
            Ok(out)
        }
        Document {
            version: None,
            rules: None,
            mutelist: Some(mutelist),
        } => {
            let (rules, notes) =
                prowler::convert(mutelist, options).map_err(|(line, m)| fail(line, m))?;
            Ok(Exceptions {
                file: file.to_string(),
                rules,
                notes,
            })
        }
        Document {
            mutelist: Some(m), ..
        } => Err(fail(
            Some(m.referenced.line()),
            "Mutelist: a Prowler mutelist is a file of its own; it cannot sit beside version and rules".into(),
        )),
        Document { rules: Some(r), .. } => Err(fail(
            r.first().map(|r| r.referenced.line()),
            format!("version: missing; the file starts with version: {VERSION}"),
        )),
        Document { .. } => Err(fail(
            None,
            format!("no rules: the file holds version: {VERSION} and rules: (or a Prowler Mutelist:)"),
        )),
    }
}

/// What a file may hold: our rules, or a Prowler mutelist.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    version: Option<Spanned<u32>>,
    rules: Option<Vec<Spanned<rules::RawRule>>>,
    #[serde(rename = "Mutelist")]
    mutelist: Option<Spanned<prowler::RawMutelist>>,
}

#[cfg(test)]
mod tests;
