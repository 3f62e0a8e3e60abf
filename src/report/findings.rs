//! `findings_<stamp>.ocsf.jsonl`: the run's findings as OCSF 1.6.0 events, one JSON object per line. A
//! Compliance Finding (class 2003) per flag and resource, or a Detection Finding (2004) with `--ocsf-class
//! detection`; an account the audit could not fully read is a finding too. `finding_info.uid` comes from
//! the account, the flag and the resource, never from the run, so a consumer updates and closes them: a
//! finding new since the earlier run is a Create, one still there an Update, and one resolved is written
//! again as a Close (`status_id` Resolved) with the same uid. Times are epoch milliseconds.

use std::fs::File;
use std::io::{BufWriter, Write};

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::config::Thresholds;
use crate::record::snapshot::{AccountSnapshot, Finding, FindingKind, Resource};
use crate::record::{CisVersion, Flag};

use super::compare::AccountChanges;
use super::{Output, RunEnd};

/// The OCSF schema version the findings follow.
pub const OCSF_VERSION: &str = "1.6.0";

/// Which OCSF class the findings are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcsfClass {
    /// Compliance Finding, 2003: a check against CIS AWS Foundations failed.
    Compliance,
    /// Detection Finding, 2004, for SIEMs wired to it.
    Detection,
}

impl OcsfClass {
    fn uid(self) -> u32 {
        match self {
            OcsfClass::Compliance => 2003,
            OcsfClass::Detection => 2004,
        }
    }
    fn name(self) -> &'static str {
        match self {
            OcsfClass::Compliance => "Compliance Finding",
            OcsfClass::Detection => "Detection Finding",
        }
    }
}

/// What every finding of the run shares.
#[derive(Debug, Clone)]
pub struct FindingsContext {
    pub class: OcsfClass,
    pub started_at: DateTime<Utc>,
    /// The run's stamp, for each event's own `metadata.uid`.
    pub stamp: String,
    /// The organization's id (`o-…`), when known.
    pub org_id: Option<String>,
    /// Where IAM records its events (the partition's home region).
    pub region: String,
    pub partition: String,
    pub thresholds: Thresholds,
    /// The run's exceptions (docs/exceptions.md), when it has some.
    pub accepting: Option<super::excepted::Accepting>,
    /// The CIS versions the findings carry (`cis_version`).
    pub cis_versions: Vec<CisVersion>,
}

/// The findings file.
pub struct FindingsOutput {
    out: BufWriter<File>,
    ctx: FindingsContext,
    line: Vec<u8>,
}

/// OCSF `activity_id` of a finding event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activity {
    Create = 1,
    Update = 2,
    Close = 3,
}

impl FindingsOutput {
    pub fn new(file: File, ctx: FindingsContext) -> FindingsOutput {
        FindingsOutput {
            out: BufWriter::with_capacity(64 * 1024, file),
            ctx,
            line: Vec::new(),
        }
    }

    fn write_finding(
        &mut self,
        f: &Finding<'_>,
        activity: Activity,
        first_seen: Option<i64>,
    ) -> std::io::Result<()> {
        let mut event = event(&self.ctx, f, activity, first_seen);
        // Accepted by an exception: the verdict stays (Fail), the finding is Suppressed with the rule's
        // reason, and the rule is named (docs/exceptions.md).
        if let (Some(acc), false) = (
            f.account.excepted.get(&f.uid()),
            activity == Activity::Close,
        ) {
            event["status_id"] = json!(3);
            event["status"] = json!("Suppressed");
            event["status_detail"] = json!(format!(
                "accepted by exception {} until {} (owner {}): {}",
                acc.rule, acc.expires, acc.owner, acc.reason
            ));
            event["unmapped"] = json!({
                "exception": acc.rule,
                "exception_expires": acc.expires,
                "exception_owner": acc.owner,
            });
        }
        self.line.clear();
        serde_json::to_writer(&mut self.line, &event)?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)
    }

    fn close_resolved(&mut self, changes: &AccountChanges) -> std::io::Result<()> {
        let Some(old) = &changes.old else {
            return Ok(());
        };
        let seen = first_seen_by_uid(old);
        let mut resolved: Vec<Finding<'_>> = old
            .findings()
            .into_iter()
            .filter(|f| changes.resolved_findings.contains(&f.uid()))
            .collect();
        resolved.sort_by_key(|f| f.uid());
        for f in &resolved {
            let first = seen.get(&f.uid()).copied();
            self.write_finding(f, Activity::Close, first)?;
        }
        Ok(())
    }
}

impl Output for FindingsOutput {
    fn account_closed(
        &mut self,
        snapshot: &AccountSnapshot,
        changes: Option<&AccountChanges>,
    ) -> std::io::Result<()> {
        let seen = first_seen_by_uid(snapshot);
        for f in snapshot.findings() {
            let activity = match changes {
                Some(c) if !c.new_findings.contains(&f.uid()) => Activity::Update,
                _ => Activity::Create,
            };
            let first = seen.get(&f.uid()).copied();
            self.write_finding(&f, activity, first)?;
        }
        if let Some(c) = changes {
            self.close_resolved(c)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    fn files(&self) -> Vec<&File> {
        vec![self.out.get_ref()]
    }

    fn finish(&mut self, end: &RunEnd) -> std::io::Result<()> {
        for gone in end.removed {
            self.close_resolved(gone)?;
        }
        self.out.flush()
    }
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Each finding's first sighting by uid, from the account's history.
fn first_seen_by_uid(a: &AccountSnapshot) -> std::collections::HashMap<String, i64> {
    a.history
        .iter()
        .map(|e| (e.uid.clone(), e.first_seen))
        .collect()
}

/// When the condition began, in epoch ms, where the facts tell it (a key's creation, its age passing the
/// threshold): a new finding's first sighting.
pub fn first_seen_of(f: &Finding<'_>, t: Thresholds) -> Option<i64> {
    first_seen(f, t).map(millis)
}

/// The closing event of a resolved finding (`activity_id` 3, Resolved), as the findings file writes it.
pub fn close_event(ctx: &FindingsContext, f: &Finding<'_>, first_seen: Option<i64>) -> Value {
    event(ctx, f, Activity::Close, first_seen)
}

/// A report cell's timestamp, when it is one.
fn cell_time(cell: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(cell)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// When the condition began, where the facts tell it.
fn first_seen(f: &Finding<'_>, t: Thresholds) -> Option<DateTime<Utc>> {
    let Resource::Key(k) = f.resource else {
        return None;
    };
    let created = cell_time(&k.created)?;
    let days = chrono::Duration::days;
    match f.kind {
        FindingKind::Flag(
            Flag::KeyCreatedWithUser | Flag::KeyCreatedForOtherUser | Flag::KeyCreatedByRoot,
        ) => Some(created),
        FindingKind::Flag(Flag::KeyOlderThan90d) => Some(created + days(t.key_max_age_days)),
        FindingKind::Flag(Flag::KeyUnused) => {
            Some(cell_time(&k.last_used).unwrap_or(created) + days(t.unused_days))
        }
        _ => None,
    }
}

/// The resource a finding is about, as OCSF `resource_details`.
fn resource(ctx: &FindingsContext, f: &Finding<'_>) -> Value {
    let a = f.account;
    let mut data = Map::new();
    let (uid, name, kind, owner) = match f.resource {
        Resource::Account => {
            data.insert("audit_status".into(), json!(a.audit_status));
            data.insert("error".into(), json!(a.error));
            (a.id.clone(), a.name.clone(), "AwsAccount", None)
        }
        Resource::Root(u) | Resource::User(u) => {
            data.insert("password_enabled".into(), json!(u.password_enabled));
            data.insert("mfa".into(), json!(u.mfa_type));
            data.insert("last_activity".into(), json!(u.last_activity));
            let kind = if matches!(f.resource, Resource::Root(_)) {
                "AwsAccount"
            } else {
                "AwsIamUser"
            };
            (u.arn.clone(), u.name.clone(), kind, None)
        }
        Resource::Key(k) => {
            data.insert("access_key_id".into(), json!(k.id));
            data.insert("user_name".into(), json!(k.user));
            data.insert("status".into(), json!(k.status));
            data.insert("created".into(), json!(k.created));
            data.insert("last_used".into(), json!(k.last_used));
            data.insert("age_days".into(), json!(k.key_age_days));
            let owner = a.user(&k.user).map(|u| {
                json!({
                    "name": k.user,
                    "uid": u.arn,
                    "type_id": 1,
                    "type": "User",
                    "account": { "uid": a.id, "name": a.name, "type_id": 10, "type": "AWS Account" },
                })
            });
            (k.id.clone(), k.id.clone(), "AwsIamAccessKey", owner)
        }
    };
    let mut r = json!({
        "uid": uid,
        "name": name,
        "type": kind,
        "region": ctx.region,
        "cloud_partition": ctx.partition,
        "data": Value::Object(data),
    });
    if let Some(owner) = owner {
        r["owner"] = owner;
    }
    r
}

/// The finding's type, in Security Hub's type taxonomy: a CIS check, or (for the checks CIS has no
/// requirement for) an AWS security best practice, or for who created a key, a TTP.
fn finding_type(f: &Finding<'_>, cis: &[(CisVersion, &str)]) -> &'static str {
    match f.kind {
        FindingKind::Flag(flag) if cis.is_empty() => match flag {
            Flag::KeyCreatedForOtherUser | Flag::KeyShortLived => "TTPs/Persistence",
            _ => "Software and Configuration Checks/AWS Security Best Practices",
        },
        _ => "Software and Configuration Checks/Industry and Regulatory Standards/CIS AWS Foundations Benchmark",
    }
}

/// The CIS requirements a finding fails in the run's versions: none for the coverage finding; the root
/// user's (its row, or a key of it) judged as the root user's.
fn cis_of(f: &Finding<'_>, versions: &[CisVersion]) -> Vec<(CisVersion, &'static str)> {
    let FindingKind::Flag(flag) = f.kind else {
        return Vec::new();
    };
    let root = match f.resource {
        Resource::Root(_) => true,
        Resource::Key(k) => k.user == crate::record::ROOT_USER,
        _ => false,
    };
    flag.requirements(root, versions)
}

/// One finding event. Its `first_seen_time` is the finding's first sighting from its history, else what
/// the facts say (a key's creation), else none.
fn event(
    ctx: &FindingsContext,
    f: &Finding<'_>,
    activity: Activity,
    first_seen_ms: Option<i64>,
) -> Value {
    let class = ctx.class;
    let a = f.account;
    let uid = f.uid();
    let severity = f.severity();
    let closing = activity == Activity::Close;
    let (activity_name, status_id, status) = match activity {
        Activity::Create => ("Create", 1, "New"),
        Activity::Update => ("Update", 1, "New"),
        Activity::Close => ("Close", 4, "Resolved"),
    };
    let cis = cis_of(f, &ctx.cis_versions);
    let (desc, remediation, reference) = match f.kind {
        FindingKind::Flag(flag) => (
            match flag.cis().filter(|_| !cis.is_empty()) {
                Some(c) => format!(
                    "{} CIS AWS Foundations Benchmark {}: {}.",
                    f.title(),
                    cis.iter()
                        .map(|(v, n)| format!("v{} {n}", v.number()))
                        .collect::<Vec<_>>()
                        .join(" / "),
                    c.title
                ),
                None => format!(
                    "{}. Not a CIS requirement: iam-audit's own check `{}` (its README says why it matters).",
                    f.title(),
                    flag.code()
                ),
            },
            flag.remediation().to_string(),
            flag.reference(),
        ),
        FindingKind::Coverage => (
            format!(
                "The audit could not fully read account {} ({}): its credentials are unknown there. {}",
                a.id, a.audit_status, a.error
            ),
            "Fix what the error says (usually: deploy the audit role, or grant the missing action), then audit the account again.".to_string(),
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_common-scenarios_aws-accounts.html",
        ),
    };
    let mut finding_info = json!({
        "uid": uid,
        "title": f.title(),
        "desc": desc,
        "types": [finding_type(f, &cis)],
    });
    if let Some(t) = first_seen_ms.or_else(|| first_seen(f, ctx.thresholds).map(millis)) {
        finding_info["first_seen_time"] = json!(t);
    }
    let mut cloud = json!({
        "provider": "AWS",
        "region": ctx.region,
        "account": { "uid": a.id, "name": a.name, "type_id": 10, "type": "AWS Account" },
    });
    if let Some(org) = &ctx.org_id {
        let mut o = json!({ "uid": org });
        if !a.ou_path.is_empty() {
            o["ou_name"] = json!(a.ou_path);
        }
        cloud["org"] = o;
    }
    let mut e = json!({
        "activity_id": activity as u8,
        "activity_name": activity_name,
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": class.uid(),
        "class_name": class.name(),
        "type_uid": class.uid() * 100 + activity as u32,
        "type_name": format!("{}: {activity_name}", class.name()),
        "severity_id": severity.ocsf_id(),
        "severity": severity.name(),
        "status_id": status_id,
        "status": status,
        "time": millis(ctx.started_at),
        "message": f.title(),
        "metadata": {
            "version": OCSF_VERSION,
            "uid": format!("{uid}@{}", ctx.stamp),
            "profiles": ["cloud"],
            "product": {
                "name": "iam-audit",
                "vendor_name": "iam-audit",
                "version": env!("CARGO_PKG_VERSION"),
            },
        },
        "finding_info": finding_info,
        "cloud": cloud,
        "resources": [resource(ctx, f)],
        "remediation": { "desc": remediation, "references": [reference] },
    });
    if class == OcsfClass::Compliance {
        let (standards, requirements, control) = match f.kind {
            FindingKind::Flag(flag) => match flag.cis().filter(|_| !cis.is_empty()) {
                Some(c) => (
                    json!(cis
                        .iter()
                        .map(|(v, _)| format!("CIS AWS Foundations Benchmark v{}", v.number()))
                        .collect::<Vec<_>>()),
                    json!(cis
                        .iter()
                        .map(|(v, n)| format!("v{} {n}", v.number()))
                        .collect::<Vec<_>>()),
                    format!("{} {}", cis.last().map_or("", |(_, n)| *n), c.title),
                ),
                None => (
                    json!(["iam-audit credential checks"]),
                    json!([flag.code()]),
                    flag.title().to_string(),
                ),
            },
            FindingKind::Coverage => (
                json!(["iam-audit coverage"]),
                json!(["every ACTIVE account fully audited"]),
                "every ACTIVE account fully audited".to_string(),
            ),
        };
        e["compliance"] = json!({
            "standards": standards,
            "requirements": requirements,
            "control": control,
            "status_id": if closing { 1 } else { 3 },
            "status": if closing { "Pass" } else { "Fail" },
        });
    }
    e
}
