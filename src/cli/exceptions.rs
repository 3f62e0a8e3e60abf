//! `iam-audit exceptions check FILE`: an exceptions file read and checked as a run would read it, with
//! nothing audited: one line per rule on stdout (when it expires, what it matches), the notes of a
//! Prowler conversion, and exit 2 naming the line and field of the first thing wrong.

use iam_audit::exceptions::{parse, read_local, ReadOptions, RuleKind};

use super::args::ExceptionsCheckArgs;

/// Exit 0 when the file is valid (expired rules are named, not refused), 2 otherwise.
pub fn check(args: &ExceptionsCheckArgs) -> i32 {
    let file = args.file.to_string_lossy().to_string();
    let fail = |m: String| {
        eprintln!("error: {m}");
        2
    };
    if file.starts_with("s3://") {
        return fail(format!(
            "exceptions {file}: check reads a local file; copy it first (aws s3 cp {file} .)"
        ));
    }
    let today = chrono::Utc::now().date_naive();
    let expires = match args.exceptions_expires.as_deref() {
        Some(d) => match chrono::NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                return fail(format!(
                    "--exceptions-expires: '{d}' is not a date; write YYYY-MM-DD (UTC), e.g. 2027-06-30"
                ))
            }
        },
        None => None,
    };
    let options = ReadOptions {
        today,
        horizon_days: i64::from(args.exceptions_horizon_days),
        owner: args.exceptions_owner.clone(),
        expires,
        reason: args.exceptions_reason.clone(),
    };
    let text = match read_local(&file) {
        Ok(t) => t,
        Err(m) => return fail(format!("exceptions {file}: {m}")),
    };
    let ex = match parse(&file, &text, &options) {
        Ok(ex) => ex,
        Err(e) => return fail(e.to_string()),
    };
    let warn = i64::from(args.exceptions_warn_days);
    for r in &ex.rules {
        let left = (r.expires - today).num_days();
        let when = if r.expired(today) {
            format!(
                "EXPIRED {} ({} days ago): matches nothing; renew it or remove it",
                r.expires, -left
            )
        } else if left <= warn {
            format!("expires {} (in {left} days: soon)", r.expires)
        } else {
            format!("expires {} (in {left} days)", r.expires)
        };
        let kind = match r.kind {
            RuleKind::Exception => "",
            RuleKind::BreakGlass => " [break_glass]",
        };
        let mut line = format!(
            "{}{kind} (line {}): {when}; owner {}; match {}",
            r.id, r.line, r.owner, r.matching
        );
        if r.except != Default::default() {
            line.push_str(&format!("; except {}", r.except));
        }
        if r.kind == RuleKind::BreakGlass {
            line.push_str(&format!("; expects {}", r.expect.names().join(", ")));
        }
        if let Some(t) = &r.ticket {
            line.push_str(&format!("; ticket {t}"));
        }
        println!("{line}");
    }
    for n in &ex.notes {
        println!("note: {n}");
    }
    let expired = ex.expired(today).count();
    eprintln!("{file}: {} rules valid ({expired} expired)", ex.rules.len());
    0
}
