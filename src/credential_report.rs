//! The `credential_report` strategy: one generated CSV per account covers every IAM user and the root
//! user. GenerateCredentialReport is called until the report is `COMPLETE` (AWS reuses a report younger
//! than 4 hours, so this is often the first answer), then GetCredentialReport. The report has neither
//! access-key ids nor MFA device types, so two things are fetched besides: ListAccessKeys for the users
//! whose report row shows a key, and (once per account, in `iam`) ListVirtualMFADevices. A key is matched
//! to its report slot by the slot's `last_rotated` = the key's CreateDate; a key matching no slot was
//! created after the report and goes through GetAccessKeyLastUsed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;

use std::collections::HashMap;

use crate::iam::{
    last_used, list_access_keys, mfa_devices, root_cells, send_user, Audited, IamOutcome,
    ListedKeys, Summary, VirtualMfa, CENTRALIZED_NOTE,
};
use crate::report::{LastUsed, Mfa, Password, Sink, Source, ROOT_USER};
use crate::retry::Failure;
use crate::risk::{KeyFacts, UserFacts};
use crate::session::{utc, Session};

/// Polls of GenerateCredentialReport wait this long at first, doubling up to `POLL_MAX`.
const POLL_FIRST: Duration = Duration::from_millis(500);
const POLL_MAX: Duration = Duration::from_secs(8);
/// A report not ready after this long is given up (`auto` then falls back to per-user calls).
const REPORT_WAIT: Duration = Duration::from_secs(300);

/// Why the report could not be had: the action and the AWS error.
#[derive(Debug, Clone)]
pub struct ReportError {
    pub action: &'static str,
    pub failure: Failure,
}

impl ReportError {
    pub fn action(&self) -> &'static str {
        self.action
    }
}

fn err(action: &'static str, failure: Failure) -> ReportError {
    ReportError { action, failure }
}

/// One access-key slot of a report row.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub active: bool,
    /// The key's CreateDate; `None` = no key in this slot.
    pub last_rotated: Option<DateTime<Utc>>,
    /// `None` = never used.
    pub last_used: Option<DateTime<Utc>>,
    pub region: String,
    pub service: String,
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub user: String,
    pub arn: String,
    pub created: Option<DateTime<Utc>>,
    /// `None`: `not_supported` (the root user).
    pub password_enabled: Option<bool>,
    /// `None`: never (`N/A`, `no_information`).
    pub password_last_used: Option<DateTime<Utc>>,
    pub password_last_changed: Option<DateTime<Utc>>,
    pub mfa_active: bool,
    pub keys: [Slot; 2],
}

/// A parsed report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub generated: Option<DateTime<Utc>>,
    pub root: Option<Row>,
    pub users: Vec<Row>,
}

/// A report time: RFC 3339 (`2026-03-05T15:30:22+00:00`); `N/A`, `no_information`, `not_supported` and
/// empty cells are no time.
fn time(cell: &str) -> Result<Option<DateTime<Utc>>, String> {
    match cell {
        "" | "N/A" | "no_information" | "not_supported" => Ok(None),
        t => DateTime::parse_from_rfc3339(t)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| format!("'{t}' is not a time ({e})")),
    }
}

fn boolean(cell: &str) -> Result<Option<bool>, String> {
    match cell {
        "true" | "TRUE" => Ok(Some(true)),
        "false" | "FALSE" => Ok(Some(false)),
        "N/A" | "not_supported" | "no_information" | "" => Ok(None),
        other => Err(format!("'{other}' is not true or false")),
    }
}

/// Parse the report's CSV by header name (AWS may add or reorder columns).
pub fn parse(csv_bytes: &[u8], generated: Option<DateTime<Utc>>) -> Result<Report, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(csv_bytes);
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let col = |name: &str| -> Result<usize, String> {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| format!("the report has no '{name}' column"))
    };
    let user = col("user")?;
    let arn = col("arn")?;
    let created = col("user_creation_time")?;
    let password_enabled = col("password_enabled")?;
    let password_last_used = col("password_last_used")?;
    let password_last_changed = col("password_last_changed").ok();
    let mfa_active = col("mfa_active")?;
    let mut slots = Vec::new();
    for n in 1..=2 {
        slots.push([
            col(&format!("access_key_{n}_active"))?,
            col(&format!("access_key_{n}_last_rotated"))?,
            col(&format!("access_key_{n}_last_used_date"))?,
            col(&format!("access_key_{n}_last_used_region"))?,
            col(&format!("access_key_{n}_last_used_service"))?,
        ]);
    }
    let mut report = Report {
        generated,
        root: None,
        users: Vec::new(),
    };
    for (line, record) in reader.records().enumerate() {
        let at = |e: String| format!("row {}: {e}", line + 2);
        let record = record.map_err(|e| e.to_string())?;
        let record = unsplit_name(record, headers.len(), user, arn).map_err(at)?;
        let cell = |i: usize| record.get(i).unwrap_or("").trim();
        let slot = |s: &[usize; 5]| -> Result<Slot, String> {
            Ok(Slot {
                active: boolean(cell(s[0])).map_err(at)?.unwrap_or(false),
                last_rotated: time(cell(s[1])).map_err(at)?,
                last_used: time(cell(s[2])).map_err(at)?,
                region: cell(s[3]).to_string(),
                service: cell(s[4]).to_string(),
            })
        };
        let row = Row {
            user: cell(user).to_string(),
            arn: cell(arn).to_string(),
            created: time(cell(created)).map_err(at)?,
            password_enabled: boolean(cell(password_enabled)).map_err(at)?,
            password_last_used: time(cell(password_last_used)).map_err(at)?,
            password_last_changed: match password_last_changed {
                Some(i) => time(cell(i)).map_err(at)?,
                None => None,
            },
            mfa_active: boolean(cell(mfa_active)).map_err(at)?.unwrap_or(false),
            keys: [slot(&slots[0])?, slot(&slots[1])?],
        };
        if row.user.is_empty() {
            return Err(at("a row without a user name".into()));
        }
        if row.user == ROOT_USER {
            report.root = Some(row);
        } else {
            report.users.push(row);
        }
    }
    Ok(report)
}

/// IAM user names may hold commas (`frank,smith`), and a report writer that does not quote them splits the
/// name or the ARN that ends with it into more cells than the header has. When `user` and `arn` are the
/// first two columns, the extra cells are rejoined where the ARN then ends with the name. A row that still
/// does not fit is an error.
fn unsplit_name(
    record: csv::StringRecord,
    columns: usize,
    user: usize,
    arn: usize,
) -> Result<csv::StringRecord, String> {
    if record.len() == columns {
        return Ok(record);
    }
    let extra = record.len().saturating_sub(columns);
    if record.len() > columns && user == 0 && arn == 1 {
        let cells: Vec<&str> = record.iter().collect();
        // The name took `a` extra cells and the ARN the rest (one of them may have been quoted).
        for a in 0..=extra {
            let name = cells[..=a].join(",");
            let mut arn = cells[a + 1..=extra + 1].join(",");
            // One writer (moto) quotes the name inside the ARN: `…:user/"frank,smith"`.
            if let Some(stem) = arn.strip_suffix(&format!("/\"{name}\"")) {
                arn = format!("{stem}/{name}");
            }
            if arn.ends_with(&format!("/{name}")) {
                let mut fixed = csv::StringRecord::new();
                fixed.push_field(&name);
                fixed.push_field(&arn);
                for c in &cells[extra + 2..] {
                    fixed.push_field(c);
                }
                return Ok(fixed);
            }
        }
    }
    Err(format!(
        "{} cells where the header has {columns}",
        record.len()
    ))
}

/// Generate (or reuse) the account's report and read it.
pub async fn fetch(session: &Session) -> Result<Report, ReportError> {
    let iam = session.iam();
    let started = tokio::time::Instant::now();
    let mut delay = POLL_FIRST;
    let mut wait = |what: &str| -> Result<Duration, ReportError> {
        if started.elapsed() + delay > REPORT_WAIT {
            return Err(err(
                "iam:GenerateCredentialReport",
                Failure::new(
                    "ReportNotReady",
                    format!(
                        "the credential report was still {what} after {} s",
                        REPORT_WAIT.as_secs()
                    ),
                ),
            ));
        }
        let d = delay;
        delay = (delay * 2).min(POLL_MAX);
        Ok(d)
    };
    // At most one regeneration when the report vanished or expired between the two calls.
    for _ in 0..2 {
        loop {
            let r = iam
                .try_call("iam:GenerateCredentialReport", |c, o| {
                    c.generate_credential_report()
                        .customize()
                        .config_override(o)
                        .send()
                })
                .await;
            match r {
                Ok(out) => {
                    use aws_sdk_iam::types::ReportStateType as S;
                    match out.state() {
                        Some(S::Complete) => break,
                        Some(S::Started | S::Inprogress) | None => {
                            let d = wait("being generated")?;
                            tokio::time::sleep(d).await;
                        }
                        Some(other) => {
                            return Err(err(
                                "iam:GenerateCredentialReport",
                                Failure::new(
                                    "MalformedResponse",
                                    format!("unknown report state '{}'", other.as_str()),
                                ),
                            ))
                        }
                    }
                }
                // Too many generations at once in this account: wait like a throttle.
                Err(f) if f.code == "LimitExceeded" || f.code == "LimitExceededException" => {
                    let d = wait("refused with LimitExceeded")?;
                    tokio::time::sleep(d).await;
                }
                Err(f) => return Err(err("iam:GenerateCredentialReport", f)),
            }
        }
        loop {
            let r = iam
                .try_call("iam:GetCredentialReport", |c, o| {
                    c.get_credential_report()
                        .customize()
                        .config_override(o)
                        .send()
                })
                .await;
            match r {
                Ok(out) => {
                    let Some(content) = out.content() else {
                        return Err(err(
                            "iam:GetCredentialReport",
                            Failure::new("MalformedResponse", "the report has no content"),
                        ));
                    };
                    let generated = out.generated_time().and_then(utc);
                    return parse(content.as_ref(), generated).map_err(|m| {
                        err(
                            "iam:GetCredentialReport",
                            Failure::new("MalformedResponse", format!("credential report: {m}")),
                        )
                    });
                }
                Err(f) if f.code == "ReportInProgress" => {
                    let d = wait("in progress")?;
                    tokio::time::sleep(d).await;
                }
                Err(f) if f.code == "ReportNotPresent" || f.code == "ReportExpired" => break,
                Err(f) => return Err(err("iam:GetCredentialReport", f)),
            }
        }
    }
    Err(err(
        "iam:GetCredentialReport",
        Failure::new(
            "ReportNotPresent",
            "the credential report vanished twice right after it was generated",
        ),
    ))
}

fn slot_last_used(s: &Slot, now: DateTime<Utc>) -> Option<LastUsed> {
    let na = |v: &str| {
        if v.is_empty() {
            "N/A".to_string()
        } else {
            v.to_string()
        }
    };
    s.last_used.map(|date| LastUsed {
        date,
        service: na(&s.service),
        region: na(&s.region),
        days_since: (now - date).num_days(),
    })
}

fn password(row: &Row) -> Password {
    match row.password_enabled {
        Some(true) => Password::Configured,
        Some(false) => Password::NotConfigured,
        None => Password::Unknown,
    }
}

/// Each user's MFA where the report, the virtual devices and the account summary cannot tell it:
/// ListMFADevices for those users. `hardware_pinned`: every user with MFA and no virtual device has
/// exactly one other device.
struct MfaResolution {
    listed: HashMap<String, (Mfa, Option<usize>)>,
    hardware_pinned: bool,
}

/// The report says whether a user has MFA; ListVirtualMFADevices names the virtual devices. A user with
/// MFA and no virtual device has a hardware or FIDO one. What they cannot tell is whether a user with a
/// virtual device also has a hardware one (then Hardware is the strongest). GetAccountSummary's
/// `MFADevicesInUse` counts every assigned device: when it equals the virtual devices plus one per
/// hardware-only user, no user mixes the two and nothing more is called. Otherwise the users with a
/// virtual device are asked with ListMFADevices (and every user with MFA when the virtual devices are
/// unknown).
async fn resolve_mfa(
    session: &Session,
    report: &Report,
    summary: &Summary,
    virtual_mfa: &VirtualMfa,
) -> MfaResolution {
    let in_use = summary
        .as_ref()
        .ok()
        .and_then(|m| {
            m.get(&aws_sdk_iam::types::SummaryKeyType::MfaDevicesInUse)
                .copied()
        })
        .map(|n| n.max(0) as usize);
    let rows = || report.users.iter().chain(report.root.iter());
    let (ask, hardware_only, virtual_total): (Vec<&Row>, usize, usize) = match virtual_mfa {
        Ok(by_user) => {
            let count = |r: &Row| {
                let key = if r.user == ROOT_USER {
                    "root"
                } else {
                    r.arn.as_str()
                };
                by_user.get(key).map_or(0, Vec::len)
            };
            let hardware_only = rows().filter(|r| r.mfa_active && count(r) == 0).count();
            let virtual_total = by_user.values().map(Vec::len).sum();
            let clean = in_use == Some(virtual_total + hardware_only);
            let ask = if clean {
                Vec::new()
            } else {
                report
                    .users
                    .iter()
                    .filter(|r| r.mfa_active && count(r) > 0)
                    .collect()
            };
            (ask, hardware_only, virtual_total)
        }
        Err(_) => (report.users.iter().filter(|r| r.mfa_active).collect(), 0, 0),
    };
    // Devices beyond the virtual ones and one per hardware-only user: on the users with a virtual device
    // (or on a hardware-only user with several). Ask until they are all found, a chunk at a time.
    let unexplained = match (virtual_mfa, in_use) {
        (Ok(_), Some(n)) => n.checked_sub(virtual_total + hardware_only),
        _ => None,
    };
    let extra_of = |arn: &str, devices: Option<usize>| -> usize {
        let virtual_devices = match virtual_mfa {
            Ok(by_user) => by_user.get(arn).map_or(0, Vec::len),
            Err(_) => 0,
        };
        devices.unwrap_or(0).saturating_sub(virtual_devices)
    };
    let mut listed: HashMap<String, (Mfa, Option<usize>)> = HashMap::new();
    let mut found = 0usize;
    let chunk = session.settings().user_concurrency.max(1);
    for users in ask.chunks(chunk) {
        if unexplained.is_some_and(|e| found >= e) {
            break;
        }
        let answers: Vec<(String, String, (Mfa, Option<usize>))> =
            futures::future::join_all(users.iter().map(|r| async move {
                (
                    r.user.clone(),
                    r.arn.clone(),
                    mfa_devices(session, &r.user).await,
                )
            }))
            .await;
        for (name, arn, mfa) in answers {
            found += extra_of(&arn, mfa.1);
            listed.insert(name, mfa);
        }
    }
    let hardware_pinned = virtual_mfa.is_ok()
        && listed.values().all(|(_, n)| n.is_some())
        && unexplained == Some(found);
    MfaResolution {
        listed,
        hardware_pinned,
    }
}

/// A user's MFA type and device count from the resolution.
fn user_mfa(
    row: &Row,
    virtual_devices: Option<usize>,
    resolved: &MfaResolution,
) -> (Mfa, Option<usize>) {
    if let Some(listed) = resolved.listed.get(&row.user) {
        if row.user != ROOT_USER {
            return *listed;
        }
    }
    match (row.mfa_active, virtual_devices) {
        (false, _) => (Mfa::None, Some(0)),
        (true, Some(0)) => (Mfa::Hardware, resolved.hardware_pinned.then_some(1)),
        (true, Some(n)) => (Mfa::Virtual, Some(n)),
        (true, None) => (Mfa::Unknown, None),
    }
}

/// The users and the root user from the report; rows go to the writer as they are built.
pub async fn inventory(
    session: &Session,
    sink: &Sink,
    report: Report,
    summary: &Summary,
    virtual_mfa: &VirtualMfa,
) -> IamOutcome {
    let resolved = resolve_mfa(session, &report, summary, virtual_mfa).await;
    let (root_access_keys, root_mfa) = match &report.root {
        Some(root) => report_root(session, sink, root, virtual_mfa, &resolved).await,
        // moto's reports, and maybe others, have no root row: the account summary then.
        None => {
            crate::iam::api_root(
                session,
                sink,
                summary,
                virtual_mfa,
                Source::CredentialReport,
            )
            .await
        }
    };
    sink.count_users(report.users.len() as u64);
    let generated = report.generated;
    let resolved = &resolved;
    futures::stream::iter(report.users)
        .map(|row| report_user(session, sink, row, virtual_mfa, resolved))
        .buffer_unordered(session.settings().user_concurrency)
        .all(|sent| async move { sent })
        .await;
    IamOutcome {
        strategy: Some(Source::CredentialReport),
        credential_report_time: generated,
        root_access_keys,
        root_mfa,
    }
}

async fn report_root(
    session: &Session,
    sink: &Sink,
    root: &Row,
    virtual_mfa: &VirtualMfa,
    resolved: &MfaResolution,
) -> (String, String) {
    let now = session.settings().started_at;
    let virtual_devices = virtual_mfa
        .as_ref()
        .ok()
        .map(|m| m.get("root").map_or(0, Vec::len));
    let centralized = session.centralized_root();
    let (mfa, mfa_devices) = user_mfa(root, virtual_devices, resolved);
    let facts = UserFacts {
        root: true,
        created: root.created,
        password: password(root),
        password_last_used: root.password_last_used,
        password_set: root.password_last_changed,
        mfa_active: Some(root.mfa_active),
        mfa,
        // The report's slots are the root user's keys: none beyond them.
        active_keys_without_ids: Some(0),
        centralized_root: centralized,
    };
    let keys: Vec<(Option<String>, KeyFacts)> = root
        .keys
        .iter()
        .filter(|s| s.last_rotated.is_some() || s.active)
        .map(|s| {
            (
                None,
                KeyFacts {
                    active: s.active,
                    created: s.last_rotated,
                    last_used: Ok(slot_last_used(s, now)),
                },
            )
        })
        .collect();
    let cells = root_cells(&facts, &keys);
    let arn = if root.arn.is_empty() {
        format!(
            "arn:{}:iam::{}:root",
            session.partition(),
            session.account().id
        )
    } else {
        root.arn.clone()
    };
    send_user(
        session,
        sink,
        Audited {
            name: ROOT_USER,
            arn: &arn,
            facts,
            keys,
            mfa_devices,
            source: Source::CredentialReport,
            note: if centralized {
                CENTRALIZED_NOTE.to_string()
            } else {
                String::new()
            },
        },
    )
    .await;
    cells
}

async fn report_user(
    session: &Session,
    sink: &Sink,
    row: Row,
    virtual_mfa: &VirtualMfa,
    resolved: &MfaResolution,
) -> bool {
    let now = session.settings().started_at;
    let name = row.user.as_str();
    let virtual_devices = virtual_mfa
        .as_ref()
        .ok()
        .map(|m| m.get(&row.arn).map_or(0, Vec::len));
    let (mfa, mfa_devices) = user_mfa(&row, virtual_devices, resolved);
    let facts = UserFacts {
        root: false,
        created: row.created,
        password: password(&row),
        password_last_used: row.password_last_used,
        password_set: row.password_last_changed,
        mfa_active: Some(row.mfa_active),
        mfa,
        active_keys_without_ids: None,
        centralized_root: false,
    };
    let slots: Vec<&Slot> = row
        .keys
        .iter()
        .filter(|s| s.last_rotated.is_some())
        .collect();
    let keys = if slots.is_empty() {
        Vec::new()
    } else {
        match list_access_keys(session, name).await {
            // Deleted since the report: no row (noted in the accounts report).
            ListedKeys { deleted: true, .. } => return true,
            ListedKeys {
                keys: listed,
                failed: false,
                ..
            } => {
                let mut taken = [false; 2];
                let mut keys = Vec::new();
                for k in listed {
                    let created = k.create_date().and_then(utc);
                    let slot = row.keys.iter().enumerate().position(|(i, s)| {
                        !taken[i]
                            && s.last_rotated.is_some()
                            && s.last_rotated.map(|t| t.timestamp())
                                == created.map(|t| t.timestamp())
                    });
                    let used = match slot {
                        Some(i) => {
                            taken[i] = true;
                            Ok(slot_last_used(&row.keys[i], now))
                        }
                        // Created after the report: ask for this key alone.
                        None => last_used(session, k.access_key_id().unwrap_or_default())
                            .await
                            .map(|u| {
                                u.map(|(date, service, region)| LastUsed {
                                    days_since: (now - date).num_days(),
                                    date,
                                    service,
                                    region,
                                })
                            }),
                    };
                    keys.push((
                        k.access_key_id().map(str::to_string),
                        KeyFacts {
                            active: k.status().map(|s| s.as_str()) == Some("Active"),
                            created,
                            last_used: used,
                        },
                    ));
                }
                keys
            }
            // The keys' ids are unknown (the failure is in the accounts report); the report's slots
            // still give the user's verdicts.
            ListedKeys { failed: true, .. } => slots
                .iter()
                .map(|s| {
                    (
                        None,
                        KeyFacts {
                            active: s.active,
                            created: s.last_rotated,
                            last_used: Ok(slot_last_used(s, now)),
                        },
                    )
                })
                .collect(),
        }
    };
    send_user(
        session,
        sink,
        Audited {
            name,
            arn: &row.arn,
            facts,
            keys,
            mfa_devices,
            source: Source::CredentialReport,
            note: String::new(),
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";

    #[test]
    fn parses_the_root_row_and_the_special_values() {
        let text = format!(
            "{HEADER}\n\
             <root_account>,arn:aws:iam::111122223333:root,2020-01-01T00:00:00+00:00,not_supported,2026-02-01T10:00:00+00:00,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n\
             alice,arn:aws:iam::111122223333:user/alice,2021-05-05T08:00:00+00:00,true,no_information,2021-05-05T08:00:00+00:00,N/A,false,true,2025-01-02T03:04:05+00:00,2026-03-01T00:00:00+00:00,eu-west-1,s3,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n"
        );
        let r = parse(text.as_bytes(), None).unwrap();
        let root = r.root.unwrap();
        assert_eq!(root.password_enabled, None);
        assert!(root.mfa_active);
        assert_eq!(root.keys[0].last_rotated, None);
        assert_eq!(r.users.len(), 1);
        let alice = &r.users[0];
        assert_eq!(alice.password_enabled, Some(true));
        assert_eq!(alice.password_last_used, None, "no_information is never");
        assert!(alice.keys[0].active);
        assert_eq!(
            alice.keys[0].last_rotated.unwrap().to_rfc3339(),
            "2025-01-02T03:04:05+00:00"
        );
        assert_eq!(alice.keys[0].service, "s3");
        assert_eq!(alice.keys[1].last_rotated, None);
    }

    #[test]
    fn columns_are_found_by_name_and_bad_cells_are_errors() {
        // Reordered columns still parse.
        let text = "arn,user,user_creation_time,password_enabled,password_last_used,mfa_active,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service\n\
                    arn:aws:iam::1:user/bob,bob,2021-05-05T08:00:00+00:00,false,N/A,true,false,N/A,N/A,N/A,N/A,true,2024-01-01T00:00:00+00:00,N/A,N/A,N/A\n";
        let r = parse(text.as_bytes(), None).unwrap();
        assert_eq!(r.users[0].user, "bob");
        assert!(r.users[0].keys[0].active);
        assert_eq!(r.users[0].keys[0].last_used, None);
        assert_eq!(
            parse(b"user,arn\nx,y\n", None).unwrap_err(),
            "the report has no 'user_creation_time' column"
        );
        // An unquoted name with commas splits the name and the ARN; both are rejoined.
        let split = text.replace(
            "arn:aws:iam::1:user/bob,bob,",
            "arn:aws:iam::1:user/bob,smith,bob,smith,",
        );
        let split = split.replacen("arn,user,", "user,arn,", 1);
        let r = parse(split.as_bytes(), None).unwrap_err();
        assert!(r.contains("cells where the header has"), "{r}");
        let quoted_order = "user,arn,user_creation_time,password_enabled,password_last_used,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service\n\
                            frank,smith,arn:aws:iam::1:user/frank,smith,2021-05-05T08:00:00+00:00,true,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A\n";
        let moto_style = quoted_order.replace(
            "frank,smith,arn:aws:iam::1:user/frank,smith,",
            "\"frank,smith\",arn:aws:iam::1:user/\"frank,smith\",",
        );
        let r = parse(moto_style.as_bytes(), None).unwrap();
        assert_eq!(r.users[0].arn, "arn:aws:iam::1:user/frank,smith");
        let r = parse(quoted_order.as_bytes(), None).unwrap();
        assert_eq!(r.users[0].user, "frank,smith");
        assert_eq!(r.users[0].arn, "arn:aws:iam::1:user/frank,smith");
        assert_eq!(r.users[0].password_enabled, Some(true));
        let bad = text.replace("2021-05-05T08:00:00+00:00", "yesterday");
        assert!(parse(bad.as_bytes(), None)
            .unwrap_err()
            .starts_with("row 2: 'yesterday' is not a time"));
    }
}
