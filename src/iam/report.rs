//! The `credential_report` strategy: one generated CSV per account covers every IAM user and the root
//! user. GenerateCredentialReport once (AWS reuses a report younger than 4 hours: then it answers
//! `COMPLETE`), then GetCredentialReport (parsed in `report_csv`), asked when reports take to be ready.
//! The report has neither access-key ids nor MFA device types, so two things are fetched besides:
//! ListAccessKeys for the users whose report row shows a key, and (once per account, in `calls`)
//! ListVirtualMFADevices. A key is matched to its report slot by the slot's `last_rotated` = the key's
//! CreateDate; a key matching no slot was created after the report and goes through GetAccessKeyLastUsed.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;

use crate::record::{Mfa, Source, ROOT_USER};
use crate::retry::Failure;
use crate::risk::{KeyFacts, UserFacts};
use crate::session::{utc, Session};
use crate::sink::Sink;

use super::calls::{
    last_used, list_access_keys, mfa_devices, ListedKeys, Summary, VirtualMfa, ROOT_OWNER,
};
use super::credentials::{Certs, Others};
use super::report_csv::{parse, CredentialReport, Row, Slot};
use super::root;
use super::rows::{send_user, Audited, IamOutcome};

/// Refused with LimitExceeded (too many generations at once in the account), GenerateCredentialReport is
/// asked again after this long, doubling up to `POLL_MAX`.
const POLL_FIRST: Duration = Duration::from_millis(250);
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

/// Generate (or reuse) the account's report and read it. GenerateCredentialReport once: `COMPLETE` (a
/// report younger than 4 hours is reused) goes straight to GetCredentialReport; `STARTED` waits as long
/// as reports take in this run (`Session::report_ready`, learned from every account's answers), then asks
/// GetCredentialReport, which answers `ReportInProgress` until the report is ready. Two calls for most
/// accounts.
pub async fn fetch(session: &Session) -> Result<CredentialReport, ReportError> {
    let iam = session.iam();
    let ready = session.report_ready();
    let started = tokio::time::Instant::now();
    let given_up = |what: &str| {
        err(
            "iam:GenerateCredentialReport",
            Failure::new(
                "ReportNotReady",
                format!(
                    "the credential report was still {what} after {} s",
                    REPORT_WAIT.as_secs()
                ),
            ),
        )
    };
    let mut refused_delay = POLL_FIRST;
    // At most one regeneration when the report vanished or expired between the two calls.
    for _ in 0..2 {
        // When this account's generation started, if it was not ready at once.
        let mut generating: Option<tokio::time::Instant> = None;
        loop {
            let r = iam
                .optional("iam:GenerateCredentialReport", |c, o| {
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
                            generating = Some(tokio::time::Instant::now());
                            tokio::time::sleep(ready.wait()).await;
                            break;
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
                    if started.elapsed() + refused_delay > REPORT_WAIT {
                        return Err(given_up("refused with LimitExceeded"));
                    }
                    tokio::time::sleep(refused_delay).await;
                    refused_delay = (refused_delay * 2).min(POLL_MAX);
                }
                Err(f) => return Err(err("iam:GenerateCredentialReport", f)),
            }
        }
        let mut early_asks = 0;
        loop {
            // How long after its generation started this ask goes out.
            let waited = generating.map(|g| g.elapsed());
            let r = iam
                .optional("iam:GetCredentialReport", |c, o| {
                    c.get_credential_report()
                        .customize()
                        .config_override(o)
                        .send()
                })
                .await;
            match r {
                Ok(out) => {
                    match (waited, early_asks) {
                        (Some(w), 0) => ready.ready_at_first_ask(w),
                        (Some(w), _) => ready.ready_after(w),
                        (None, _) => {}
                    }
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
                    if let Some(w) = waited {
                        ready.not_ready_after(w);
                    }
                    let again = ready.again(early_asks);
                    early_asks += 1;
                    if started.elapsed() + again > REPORT_WAIT {
                        return Err(given_up("in progress"));
                    }
                    tokio::time::sleep(again).await;
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
/// `MFADevicesInUse` counts every assigned device, the root user's included ("the number of MFA devices
/// that have been assigned to an IAM user or to the root account", in the IAM API's own description of
/// the summary keys): when it equals the virtual devices plus one per hardware-only user, no user mixes
/// the two and nothing more is called. Otherwise the users with a virtual device are asked with
/// ListMFADevices (and every user with MFA when the virtual devices are unknown).
///
/// A count exactly the root user's devices short of that cannot be AWS's (what is explained is a lower
/// bound of the devices assigned): it is read as a count that leaves the root user out, so that an IAM
/// that counts so costs no call either.
async fn resolve_mfa(
    session: &Session,
    report: &CredentialReport,
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
    // The users to ask, and the devices the report and the virtual devices explain (`None`: unknown).
    let (ask, explained): (Vec<&Row>, Option<usize>) = match virtual_mfa {
        Ok(by_user) => {
            let count = |r: &Row| {
                let key = if r.user == ROOT_USER {
                    ROOT_OWNER
                } else {
                    r.arn.as_str()
                };
                by_user.get(key).map_or(0, Vec::len)
            };
            // Every assigned virtual device (users created since the report too), and one device for
            // each user with MFA and no virtual one.
            let hardware_only = rows().filter(|r| r.mfa_active && count(r) == 0).count();
            let all = by_user.values().map(Vec::len).sum::<usize>() + hardware_only;
            let root = by_user.get(ROOT_OWNER).map_or(0, Vec::len)
                + usize::from(report.root.iter().any(|r| r.mfa_active && count(r) == 0));
            let explained = if root > 0 && in_use == Some(all - root) {
                all - root
            } else {
                all
            };
            let ask = if in_use == Some(explained) {
                Vec::new()
            } else {
                report
                    .users
                    .iter()
                    .filter(|r| r.mfa_active && count(r) > 0)
                    .collect()
            };
            (ask, Some(explained))
        }
        Err(_) => (report.users.iter().filter(|r| r.mfa_active).collect(), None),
    };
    // Devices beyond the virtual ones and one per hardware-only user: on the users with a virtual device
    // (or on a hardware-only user with several). Ask until they are all found, a chunk at a time.
    let unexplained = match (explained, in_use) {
        (Some(e), Some(n)) => n.checked_sub(e),
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
    let chunk = session.settings().keys.user_concurrency.max(1);
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
    report: CredentialReport,
    summary: &Summary,
    virtual_mfa: &VirtualMfa,
    others: &Others,
) -> IamOutcome {
    let resolved = resolve_mfa(session, &report, summary, virtual_mfa).await;
    let (root_access_keys, root_mfa) = match &report.root {
        Some(row) => {
            let virtual_devices = virtual_mfa
                .as_ref()
                .ok()
                .map(|m| m.get(ROOT_OWNER).map_or(0, Vec::len));
            let mfa = user_mfa(row, virtual_devices, &resolved);
            root::from_report(session, sink, row, mfa, summary).await
        }
        // moto's reports, and maybe others, have no root row: the account summary then.
        None => {
            root::from_summary(
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
        .map(|row| report_user(session, sink, row, virtual_mfa, resolved, others))
        .buffer_unordered(session.settings().keys.user_concurrency)
        .all(|sent| async move { sent })
        .await;
    IamOutcome {
        strategy: Some(Source::CredentialReport),
        credential_report_time: generated,
        root_access_keys,
        root_mfa,
    }
}

async fn report_user(
    session: &Session,
    sink: &Sink,
    row: Row,
    virtual_mfa: &VirtualMfa,
    resolved: &MfaResolution,
    others: &Others,
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
        password: row.password(),
        password_last_used: row.password_last_used,
        password_set: row.password_last_changed,
        mfa_active: Some(row.mfa_active),
        mfa,
        active_keys_without_ids: None,
        centralized_root: false,
        org_root_access_off: false,
    };
    let slots: Vec<&Slot> = row
        .keys
        .iter()
        .filter(|s| s.last_rotated.is_some())
        .collect();
    let certs = if row.has_certificate() {
        Certs::Some
    } else {
        Certs::None
    };
    let (listed, other) = tokio::join!(
        async {
            if slots.is_empty() {
                None
            } else {
                Some(list_access_keys(session, name).await)
            }
        },
        others.of_user(session, name, row.password(), certs)
    );
    let keys = match listed {
        None => Vec::new(),
        Some(listed) => match listed {
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
                            row.keys[i].last_use(now)
                        }
                        // Created after the report: ask for this key alone.
                        None => last_used(session, k.access_key_id().unwrap_or_default()).await,
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
                            last_used: s.last_use(now),
                        },
                    )
                })
                .collect(),
        },
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
            other: Some(other),
        },
    )
    .await
}
