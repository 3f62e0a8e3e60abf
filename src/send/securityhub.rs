//! `--security-hub`: the run's findings imported into each audited account's own Security Hub with
//! `securityhub:BatchImportFindings`, through the account's audit role (a finding with the default
//! product ARN must be imported by its own account). The only write iam-audit makes to an audited
//! account, and opt-in.
//!
//! It reads the findings file the run wrote (so what is imported is exactly what the file says, and
//! the resolved findings it closed are archived), at most 100 findings and 6 MB per call, under a
//! per-account bucket of Security Hub's documented rate (10 requests/s, burst 30). Each account's
//! outcome becomes its `security_hub` cell in the accounts report, which is rewritten in place (a
//! private temporary file renamed over it). A failure is never the run's: the files are already safe.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use crate::config::{Format, Settings};
use crate::limits::Bucket;
use crate::session::{AccountCredentials, CallerFallback};

use super::http::{Http, Patience, Request};
use super::{asff, aws_error, AwsTarget};

/// BatchImportFindings' limits: findings per call, and bytes per call.
pub const MAX_FINDINGS: usize = 100;
pub const MAX_BYTES: usize = 6 * 1024 * 1024;
/// Security Hub's documented BatchImportFindings quota per account: 10 requests per second, burst 30.
const RATE: u32 = 10;
const BURST: u32 = 30;
/// Accounts imported at once: the run's `concurrency`, at most this many. Each holds its findings, a
/// connection and an answer until its body is built: 10,000 accounts at 100 ms (moonshot-out) peaked at
/// 70.7 MB with 256, 62.0 MB with 128 (9 s longer), 61.9 MB with 192 (3 s longer; docs/performance.md).
const MAX_ACCOUNTS_AT_ONCE: usize = 192;

/// One ASFF finding as it goes out: its JSON text (a few KB, where a `serde_json::Value` of it is several
/// times that: thousands of accounts' findings wait for their import at once) and what the import needs
/// to know of it.
#[derive(Debug, Clone)]
struct Doc {
    id: String,
    archived: bool,
    json: Box<str>,
}

impl Doc {
    fn new(v: &Value) -> Self {
        Doc {
            id: v["Id"].as_str().unwrap_or_default().to_string(),
            archived: v["RecordState"] == "ARCHIVED",
            json: v.to_string().into_boxed_str(),
        }
    }
}

/// What happened in one account.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub imported: u64,
    pub archived: u64,
    /// Findings Security Hub refused one by one: (error code, how many).
    pub refused: BTreeMap<String, u64>,
    /// The call failed as a whole: the cell's text.
    pub failed: Option<String>,
    /// The Ids of the findings refused one by one.
    pub refused_ids: std::collections::HashSet<String>,
}

impl Outcome {
    /// The account's `security_hub` cell.
    pub fn cell(&self) -> String {
        if let Some(f) = &self.failed {
            if self.imported + self.archived == 0 {
                return f.clone();
            }
        }
        let mut s = format!("imported {}, archived {}", self.imported, self.archived);
        if !self.refused.is_empty() {
            let r: Vec<String> = self
                .refused
                .iter()
                .map(|(c, n)| format!("{n} {c}"))
                .collect();
            s.push_str(&format!("; refused {}", r.join(", ")));
        }
        if let Some(f) = &self.failed {
            s.push_str(&format!("; then {f}"));
        }
        s
    }
}

/// What the import did, for the summary.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportTotals {
    pub accounts: u64,
    pub imported: u64,
    pub archived: u64,
    /// Accounts where something was not imported.
    pub failed_accounts: u64,
}

/// Import the findings file into each account's Security Hub, archive those the history says it still
/// holds though they were resolved, fill the accounts report's cells and write down in the history what
/// the hub now holds.
pub async fn import(
    target: &AwsTarget,
    settings: &Arc<Settings>,
    findings: &Path,
    accounts: &Path,
    history: &Path,
    format: Format,
) -> std::io::Result<ImportTotals> {
    let rows = super::hub_cells::read_accounts(accounts, format)?;
    let region = settings
        .keys
        .security_hub_region
        .clone()
        .unwrap_or_else(|| settings.keys.region.clone());
    // Resolved findings still ACTIVE in the hub (resolved in a run without --security-hub, or whose
    // archiving failed), by account: archived with the account's findings.
    let super::hub_state::Owed {
        resolved: mut pending,
        excepted: held_excepted,
    } = super::hub_state::owed(history, &region)?;
    let with_pending =
        |account: &str, mut batch: Vec<Doc>, pending: &mut HashMap<String, Vec<Value>>| {
            for doc in pending.remove(account).unwrap_or_default() {
                let doc = Doc::new(&doc);
                if !batch.iter().any(|d| d.id == doc.id) {
                    batch.push(doc);
                }
            }
            batch
        };
    let http = Arc::new(Http::new());
    let at_once = settings.keys.concurrency.clamp(1, MAX_ACCOUNTS_AT_ONCE);
    let gate = Arc::new(tokio::sync::Semaphore::new(at_once));
    // Each finished import is taken as soon as it is done: a finished task keeps its whole cell (sized for
    // the import's future, kilobytes) until it is joined, which for 10,000 accounts held back at the end
    // was over 100 MB.
    let mut tasks: tokio::task::JoinSet<(String, Outcome)> = tokio::task::JoinSet::new();
    let mut outcomes: HashMap<String, Outcome> = HashMap::new();
    let merge = |outcomes: &mut HashMap<String, Outcome>, (account, o): (String, Outcome)| {
        let merged = outcomes.entry(account).or_default();
        merged.imported += o.imported;
        merged.archived += o.archived;
        for (c, n) in o.refused {
            *merged.refused.entry(c).or_default() += n;
        }
        merged.refused_ids.extend(o.refused_ids);
        if o.failed.is_some() {
            merged.failed = o.failed;
        }
    };
    // An account's import holds its findings until it is done, so accounts start only as slots free up:
    // the file is read no faster than the imports go, and memory holds at most `at_once` accounts'
    // findings.
    let spawn = |account: String, batch: Vec<Doc>, permit: tokio::sync::OwnedSemaphorePermit| {
        let row = rows.get(&account);
        let audited =
            row.is_some_and(|r| r.audit_status == "audited" || r.audit_status == "partial");
        let role_used = row.map(|r| r.role_used.clone()).unwrap_or_default();
        let (target, settings, http, region) = (
            target.clone(),
            settings.clone(),
            http.clone(),
            region.clone(),
        );
        async move {
            let _permit = permit;
            if !audited {
                let outcome = Outcome {
                    failed: Some("not imported: the account was not audited".into()),
                    ..Outcome::default()
                };
                return (account, outcome);
            }
            let outcome = import_account(
                &target, &settings, &http, &account, &role_used, &region, batch,
            )
            .await;
            (account, outcome)
        }
    };
    let slot = || async {
        gate.clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    };
    // The findings file, one account's consecutive lines at a time (an account met again later is
    // imported again: the import is an upsert by Id).
    let file = std::fs::File::open(findings)?;
    let mut current: Option<(String, Vec<Doc>)> = None;
    for line in BufReader::new(file).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let ocsf: Value = serde_json::from_str(&line).map_err(std::io::Error::other)?;
        let account = asff::account_of(&ocsf).to_string();
        let mut doc = asff::from_ocsf(&ocsf, &region).map_err(std::io::Error::other)?;
        // Accepted by an exception (Suppressed): never imported, and archived where an earlier import
        // left it ACTIVE.
        if ocsf["status_id"] == 3 {
            let uid = ocsf.pointer("/finding_info/uid").and_then(Value::as_str);
            if !uid.is_some_and(|u| held_excepted.contains(u)) {
                continue;
            }
            doc["RecordState"] = "ARCHIVED".into();
        }
        let doc = Doc::new(&doc);
        match &mut current {
            Some((a, batch)) if *a == account => batch.push(doc),
            _ => {
                if let Some((a, batch)) = current.take() {
                    let batch = with_pending(&a, batch, &mut pending);
                    tasks.spawn(spawn(a, batch, slot().await));
                    while let Some(done) = tasks.try_join_next() {
                        merge(&mut outcomes, done.map_err(std::io::Error::other)?);
                    }
                }
                current = Some((account, vec![doc]));
            }
        }
    }
    if let Some((a, batch)) = current.take() {
        let batch = with_pending(&a, batch, &mut pending);
        tasks.spawn(spawn(a, batch, slot().await));
    }
    // Accounts with nothing in this run's findings but archives still owed.
    let mut owed: Vec<(String, Vec<Value>)> = pending.into_iter().collect();
    owed.sort_by(|a, b| a.0.cmp(&b.0));
    for (a, batch) in owed {
        let batch = batch.iter().map(Doc::new).collect();
        tasks.spawn(spawn(a, batch, slot().await));
        while let Some(done) = tasks.try_join_next() {
            merge(&mut outcomes, done.map_err(std::io::Error::other)?);
        }
    }
    while let Some(done) = tasks.join_next().await {
        merge(&mut outcomes, done.map_err(std::io::Error::other)?);
    }
    write_down(&outcomes, &rows, history, accounts, format)
}

/// What the imports did, written down: the history records what each hub now holds, and each account's
/// `security_hub` cell says what happened there (or why nothing did).
fn write_down(
    outcomes: &HashMap<String, Outcome>,
    rows: &BTreeMap<String, super::hub_cells::Row>,
    history: &Path,
    accounts: &Path,
    format: Format,
) -> std::io::Result<ImportTotals> {
    let imported: HashMap<String, super::hub_state::Imported> = outcomes
        .iter()
        .map(|(a, o)| {
            let whole = o.failed.is_none();
            let refused = o.refused_ids.clone();
            (a.clone(), super::hub_state::Imported { whole, refused })
        })
        .collect();
    super::hub_state::record(history, &imported)?;
    let mut report = ImportTotals::default();
    let mut cells: HashMap<String, String> = HashMap::new();
    for (id, row) in rows {
        let cell = match outcomes.get(id) {
            Some(o) => {
                report.accounts += 1;
                report.imported += o.imported;
                report.archived += o.archived;
                if o.failed.is_some() || !o.refused.is_empty() {
                    report.failed_accounts += 1;
                }
                o.cell()
            }
            None if row.audit_status == "audited" => "nothing to import".to_string(),
            None if row.audit_status == "not_active" => "not active".to_string(),
            None => "not imported: the account was not audited".to_string(),
        };
        cells.insert(id.clone(), cell);
    }
    super::hub_cells::rewrite_accounts(accounts, format, &cells)?;
    Ok(report)
}

/// One account's findings, in calls of at most 100 findings and 6 MB.
async fn import_account(
    target: &AwsTarget,
    settings: &Settings,
    http: &Http,
    account: &str,
    role_used: &str,
    region: &str,
    findings: Vec<Doc>,
) -> Outcome {
    let mut outcome = Outcome::default();
    let aws = target.aws();
    let partition = aws.partition();
    let (roles, caller) = match role_used {
        "caller" => (
            Vec::new(),
            aws.caller_credentials().map(|provider| CallerFallback {
                provider,
                account: account.to_string(),
                aws: aws.clone(),
            }),
        ),
        "" => (settings.role_arns(account, partition), None),
        name => (
            vec![format!("arn:{partition}:iam::{account}:role/{name}")],
            None,
        ),
    };
    let credentials = AccountCredentials::new(aws, roles, caller, settings);
    if let Err(f) = credentials.choose().await {
        outcome.failed = Some(format!(
            "not imported: the audit role could not be assumed ({f})"
        ));
        return outcome;
    }
    let bucket = Bucket::new(RATE, BURST);
    let url = format!(
        "{}findings/import",
        target.endpoint("SecurityHub", "securityhub", region)
    );
    let mut findings = findings;
    for range in batches(&findings) {
        // The batch's texts go into the body and are let go: only the Ids and states stay.
        let body = body_of(&findings[range.clone()]);
        for d in &mut findings[range.clone()] {
            d.json = Box::default();
        }
        let batch = &findings[range];
        let archived = batch.iter().filter(|f| f.archived).count() as u64;
        let creds = match credentials.get().await {
            Ok(c) => c,
            Err(f) => {
                outcome.failed = Some(format!("not imported: {f}"));
                return outcome;
            }
        };
        let mut req = Request {
            method: "POST",
            url: url.clone(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
        };
        if let Err(e) = super::sigv4::sign_request(&mut req, &creds, "securityhub", region) {
            outcome.failed = Some(format!("not imported: {e}"));
            return outcome;
        }
        bucket.wait().await;
        let answer = match http.send(&req, Patience::default()).await {
            Ok(a) => a,
            Err(e) => {
                outcome.failed = Some(format!("not imported: {e}"));
                return outcome;
            }
        };
        if !(200..300).contains(&answer.status) {
            outcome.failed = Some(advice(&aws_error(&answer), region));
            return outcome;
        }
        let v: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        let (Some(ok), Some(failed)) = (v["SuccessCount"].as_u64(), v["FailedCount"].as_u64())
        else {
            outcome.failed = Some(format!(
                "not imported: an unexpected answer to BatchImportFindings (HTTP {}, no SuccessCount)",
                answer.status
            ));
            return outcome;
        };
        let mut refused_archived = 0;
        for f in v["FailedFindings"].as_array().into_iter().flatten() {
            let code = f["ErrorCode"].as_str().unwrap_or("Unknown").to_string();
            *outcome.refused.entry(code).or_default() += 1;
            let id = f["Id"].as_str().unwrap_or("");
            outcome.refused_ids.insert(id.to_string());
            if batch.iter().any(|d| d.id == id && d.archived) {
                refused_archived += 1;
            }
        }
        if failed > 0 && v["FailedFindings"].as_array().is_none_or(|a| a.is_empty()) {
            *outcome.refused.entry("Unknown".into()).or_default() += failed;
        }
        let archived_ok = archived.saturating_sub(refused_archived);
        outcome.archived += archived_ok;
        outcome.imported += ok.saturating_sub(archived_ok);
    }
    outcome
}

/// `check --security-hub`: what can be learned of an account's import without importing anything. An
/// empty BatchImportFindings writes nothing. `AccessDeniedException` proves the role may not import, and
/// `InvalidAccessException` that Security Hub is not enabled, each with what to do. But the validation
/// error an empty import earns (`InvalidInputException`) proves nothing more than that Security Hub
/// answered: AWS does not say whether it checks the input before the permission or the subscription, so
/// `Ok` says so, never "ok". Only a real import (the first `--security-hub` run's cells) proves the rest.
pub async fn probe(
    target: &AwsTarget,
    credentials: &AccountCredentials,
    region: &str,
) -> Result<String, crate::retry::Failure> {
    use crate::retry::Failure;
    let creds = credentials.get().await?;
    let mut req = Request {
        method: "POST",
        url: format!(
            "{}findings/import",
            target.endpoint("SecurityHub", "securityhub", region)
        ),
        headers: vec![("content-type".into(), "application/json".into())],
        body: bytes::Bytes::from_static(br#"{"Findings":[]}"#),
    };
    super::sigv4::sign_request(&mut req, &creds, "securityhub", region)
        .map_err(|e| Failure::new("ConstructionFailure", e))?;
    let patience = Patience {
        attempts: 3,
        ..Patience::default()
    };
    let answer = Http::new()
        .send(&req, patience)
        .await
        .map_err(|e| Failure::new("DispatchFailure", e))?;
    let error = aws_error(&answer);
    let code = error.split(':').next().unwrap_or("").to_string();
    match code.as_str() {
        "InvalidInputException" | "ValidationException" => Ok(format!(
            "not proven: Security Hub in {region} answered the empty import with {code}, which shows neither that it is enabled nor that the role may import (AWS need not check those before the input); the first --security-hub run's security_hub cells will say"
        )),
        _ if (200..300).contains(&answer.status) => Ok("ok".to_string()),
        "InvalidAccessException" => Err(Failure::new(
            code,
            format!("Security Hub is not enabled in {region}: aws securityhub enable-security-hub --region {region}"),
        )),
        "AccessDeniedException" | "AccessDenied" => Err(Failure::new(
            code,
            "the audit role may not import: allow it securityhub:BatchImportFindings (README, Security Hub)",
        )),
        _ => Err(Failure::new(code, error)),
    }
}

/// What an account's refusal means and what to do, in its cell.
fn advice(error: &str, region: &str) -> String {
    let code = error.split(':').next().unwrap_or("");
    match code {
        "InvalidAccessException" => format!(
            "not enabled ({error}): enable Security Hub in {region} (aws securityhub enable-security-hub --region {region}), or drop --security-hub"
        ),
        "AccessDeniedException" | "AccessDenied" => format!(
            "refused ({error}): allow securityhub:BatchImportFindings to the audit role (README, Security Hub)"
        ),
        _ => format!("failed ({error})"),
    }
}

/// Findings in calls of at most `MAX_FINDINGS` and `MAX_BYTES` (a finding is at most 240 KB).
fn batches(findings: &[Doc]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, f) in findings.iter().enumerate() {
        let len = f.json.len() + 1;
        if i > start && (i - start >= MAX_FINDINGS || size + len > MAX_BYTES - 64) {
            out.push(start..i);
            (start, size) = (i, 0);
        }
        size += len;
    }
    if start < findings.len() {
        out.push(start..findings.len());
    }
    out
}

/// BatchImportFindings' body: `{"Findings":[…]}` of the batch's JSON texts.
fn body_of(batch: &[Doc]) -> Vec<u8> {
    let mut body = Vec::with_capacity(batch.iter().map(|d| d.json.len() + 1).sum::<usize>() + 16);
    body.extend_from_slice(br#"{"Findings":["#);
    for (i, d) in batch.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(d.json.as_bytes());
    }
    body.extend_from_slice(b"]}");
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_at_most_100_findings() {
        let findings: Vec<Doc> = (0..250)
            .map(|i| Doc::new(&serde_json::json!({ "Id": format!("f{i}") })))
            .collect();
        let b = batches(&findings);
        assert_eq!(
            b.iter().map(|b| b.len()).collect::<Vec<_>>(),
            vec![100, 100, 50]
        );
        let body: Value = serde_json::from_slice(&body_of(&findings[b[2].clone()])).unwrap();
        assert_eq!(body["Findings"][49]["Id"], "f249");
        let big: Vec<Doc> = (0..30)
            .map(|_| Doc::new(&serde_json::json!({ "D": "x".repeat(230 * 1024) })))
            .collect();
        let b = batches(&big);
        assert_eq!(b.iter().map(|b| b.len()).sum::<usize>(), 30);
        assert!(
            b.len() == 2
                && b.iter()
                    .all(|r| body_of(&big[r.clone()]).len() <= MAX_BYTES)
        );
    }

    #[test]
    fn cells_say_what_happened_and_what_to_do() {
        let o = Outcome {
            imported: 5,
            archived: 2,
            ..Outcome::default()
        };
        assert_eq!(o.cell(), "imported 5, archived 2");
        assert_eq!(
            advice("InvalidAccessException: Account 1 is not subscribed to AWS Security Hub", "eu-west-1"),
            "not enabled (InvalidAccessException: Account 1 is not subscribed to AWS Security Hub): enable Security Hub in eu-west-1 (aws securityhub enable-security-hub --region eu-west-1), or drop --security-hub"
        );
    }
}
