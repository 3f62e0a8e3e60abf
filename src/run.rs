//! One audit of the whole organization, start to end: credentials, the output directory, the accounts
//! and their OU paths, the writer, the pool of account audits, and the summary. This is what the binary
//! and the tests call; everything below it is a room of its own.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;

use crate::aws::Aws;
use crate::config::{iam_home_region, Settings};
use crate::error::AuditError;
use crate::observe::Observer;
use crate::org;
use crate::pool::{self, Shutdown};
use crate::record::{Record, RunFacts};
use crate::report::compare::Comparison;
use crate::report::digest::NotCompared;
use crate::report::excepted::Accepting;
use crate::report::snapshot::GroupedRun;
use crate::report::{self, FindingsContext, OcsfClass, Writer};
use crate::store::Remote;
use crate::summary::Summary;

/// The run `--compare DIR` names, looked up before anything is written: naming a directory without a
/// run is a usage error.
fn named_earlier_run(settings: &Settings) -> Result<Option<report::files::Run>, AuditError> {
    let compare = settings.keys.compare.as_ref();
    let Some(dir) = compare.filter(|_| settings.keys.compare_runs) else {
        return Ok(None);
    };
    let error = |reason: String| AuditError::Compare {
        dir: dir.clone(),
        reason,
    };
    match report::files::find_run(dir) {
        Ok(Some(run)) => Ok(Some(run)),
        Ok(None) => Err(error("no run of iam-audit there".into())),
        Err(e) => Err(error(e.to_string())),
    }
}

/// The earlier run to compare with (the one `--compare` named, or the latest run in the output directory
/// older than this one, `stamp`), read whole and grouped by account; or, when it is there but cannot be read whole (a file cut
/// short, a row that does not parse, a download that failed), no comparison and why: a run compared with
/// part of another would call everything it could not read resolved or deleted.
fn earlier_run(
    settings: &Settings,
    named: Option<report::files::Run>,
    stamp: &str,
    unreadable: Option<NotCompared>,
) -> std::io::Result<(Option<Comparison>, Option<NotCompared>)> {
    if unreadable.is_some() {
        return Ok((None, unreadable));
    }
    let dir = &settings.keys.output_dir;
    let found = match named {
        Some(run) => Some(run),
        None => report::files::latest_run_before(dir, stamp)?,
    };
    let Some((label, format, paths)) = found else {
        return Ok((None, None));
    };
    match GroupedRun::read(&paths, format, dir) {
        Ok(grouped) => Ok((Some(Comparison::new(grouped, label)), None)),
        Err(e) => {
            let n = NotCompared {
                label,
                reason: e.to_string(),
            };
            tracing::warn!("{}", n.line());
            Ok((None, Some(n)))
        }
    }
}

/// Run one audit of the whole organization and write its reports.
///
/// `shutdown` stops the run early (SIGINT, SIGTERM): accounts not yet started are reported `skipped`,
/// running ones finish or, once aborted, are `partial`, and every row read so far is written.
///
/// A run that fails outright (exit 1: no credentials, no account list, reports not writable) still
/// alerts its `--notify` destinations, so a scheduled audit that stops working is heard of.
pub async fn run(
    settings: Settings,
    observer: Arc<dyn Observer>,
    shutdown: Shutdown,
) -> Result<Summary, AuditError> {
    let notify = (!settings.notify.is_empty()).then(|| settings.clone());
    let result = run_audit(settings, observer, shutdown).await;
    if let (Err(e), Some(settings)) = (&result, notify) {
        if e.exit_code() == 1 {
            let aws = Aws::connect(&settings).await.ok();
            let target = aws.as_ref().map(crate::send::AwsTarget::new);
            let alert = crate::send::notify::failure(&e.to_string());
            for d in crate::send::notify::deliver(&settings, &alert, target.as_ref()).await {
                match d.failure {
                    None => tracing::warn!("the failure was alerted to {}", d.label),
                    Some(why) => tracing::warn!("the alert to {} failed too ({why})", d.label),
                }
            }
        }
    }
    result
}

async fn run_audit(
    mut settings: Settings,
    observer: Arc<dyn Observer>,
    shutdown: Shutdown,
) -> Result<Summary, AuditError> {
    let started = Instant::now();
    // Usage errors first, so they leave nothing behind: the run --compare names, then the credentials
    // (an unknown profile).
    let named = named_earlier_run(&settings)?;
    let aws = Aws::connect(&settings).await?;
    let read = Read {
        named,
        accepting: Accepting::of(crate::exceptions::load(&settings, &aws).await?, &settings),
    };
    // Reports to S3: the run writes in a private staging directory, uploaded at its end.
    let Some(location) = settings.remote.clone() else {
        return Box::pin(audit_into(
            settings, observer, shutdown, aws, read, None, started,
        ))
        .await;
    };
    let remote = Remote::open(&aws, &settings, &location)
        .await
        .map_err(AuditError::from)?;
    settings.keys.output_dir = remote.staging().to_path_buf();
    // A new run takes its stamp under the prefix first: two runs starting in the same second get two.
    if settings.resume_stamp.is_none() && settings.claimed_stamp.is_none() {
        let claimed = remote.claim_stamp(&settings.stamp()).await;
        match claimed {
            Ok(stamp) => settings.claimed_stamp = Some(stamp),
            Err(error) => {
                remote.remove_staging();
                return Err(AuditError::Remote { error });
            }
        }
    }
    // Boxed: the audit's future is large, and nested in the binary's it would overflow the compiler's
    // layout depth.
    let result = Box::pin(audit_into(
        settings,
        observer,
        shutdown,
        aws,
        read,
        Some(&remote),
        started,
    ))
    .await;
    match &result {
        // The files are in S3, or nothing was written: the staging directory goes.
        Ok(_) | Err(AuditError::Remote { .. }) => remote.remove_staging(),
        // The files it holds are the run's only copy; the error names it.
        Err(AuditError::Upload { .. } | AuditError::WriterFailed { .. }) => {}
        Err(_) => remote.remove_staging(),
    }
    result
}

/// The latest run under `settings`' S3 prefix (`--resume s3://…`): its stamp and format.
pub async fn latest_remote_run(
    settings: &Settings,
) -> Result<Option<(String, crate::config::Format)>, AuditError> {
    let Some(location) = &settings.remote else {
        return Ok(None);
    };
    let aws = Aws::connect(settings).await?;
    let remote = Remote::open(&aws, settings, location)
        .await
        .map_err(AuditError::from)?;
    let found = remote.latest_run().await;
    remote.remove_staging();
    found.map_err(|error| AuditError::Remote { error })
}

/// What a run reads before it writes anything: the earlier run `--compare` names, the exceptions.
struct Read {
    named: Option<report::files::Run>,
    accepting: Option<Accepting>,
}

/// The audit into `settings.keys.output_dir` (the staging directory of `remote`, if any).
async fn audit_into(
    settings: Settings,
    observer: Arc<dyn Observer>,
    shutdown: Shutdown,
    mut aws: Aws,
    read: Read,
    remote: Option<&Remote>,
    started: Instant,
) -> Result<Summary, AuditError> {
    let Read { named, accepting } = read;
    let dir = settings.keys.output_dir.clone();
    let output_error = |source| AuditError::Output {
        dir: dir.clone(),
        source,
    };
    report::files::prepare_dir(&dir).map_err(output_error)?;
    // The listing starts now and goes on while accounts are audited: its first answers decide whether
    // the organization can be listed at all, before anything is written.
    let mut listing = org::Listing::start(
        aws.organizations(),
        settings.keys.max_pages,
        settings.keys.ou_paths,
        settings.ou_filters(),
        shutdown.abort.clone(),
    );
    // An optional read of the management account: off with the other optional actions (then every
    // member's root MFA is judged as if root credentials were not managed centrally).
    let optional = settings.keys.optional_actions;
    let root_management = async {
        if optional {
            aws.read_root_credentials_management().await
        }
    };
    let (first, ()) = tokio::join!(listing.first(), root_management);
    let org_id = first.map_err(|error| {
        if error.action == "organizations:ListAccounts" {
            AuditError::ListAccounts {
                failure: error.failure,
            }
        } else {
            AuditError::OuTree { error }
        }
    })?;
    let format = settings.format;
    let stamp = settings
        .resume_stamp
        .clone()
        .or_else(|| settings.claimed_stamp.clone())
        .unwrap_or_else(|| settings.stamp());
    // From S3: the run --resume continues and the earlier run to compare with, read back first.
    let unreadable = match remote {
        Some(r) => r
            .fetch_for_run(
                settings.resume_stamp.as_deref(),
                settings.keys.compare_runs && named.is_none(),
                &stamp,
            )
            .await
            .map_err(|error| AuditError::Remote { error })?,
        None => None,
    };
    let (comparison, not_compared) = if settings.keys.compare_runs {
        earlier_run(&settings, named, &stamp, unreadable).map_err(output_error)?
    } else {
        (None, None)
    };
    let spec = |comparison| report::Spec {
        dir: dir.clone(),
        format,
        values: settings.values,
        escape: settings.keys.escape_formulas,
        findings: FindingsContext {
            class: if settings.keys.ocsf_class == "detection" {
                OcsfClass::Detection
            } else {
                OcsfClass::Compliance
            },
            started_at: settings.started_at,
            stamp: stamp.clone(),
            org_id: org_id.clone(),
            region: iam_home_region(aws.partition()).to_string(),
            partition: aws.partition().to_string(),
            thresholds: settings.thresholds,
            accepting,
        },
        comparison,
        not_compared: not_compared.clone(),
        security_hub: settings.keys.security_hub,
    };
    // A resumed run continues its files: accounts already audited keep their rows and are not audited
    // again; every row of the others is removed, to be written again.
    let (writer, paths, resumed) = match &settings.resume_stamp {
        Some(stamp) => {
            let paths = report::OutputPaths::with_format(&dir, stamp, format);
            let resumed = report::prepare_resume(&paths, format).map_err(output_error)?;
            let mut comparison: Option<Comparison> = comparison;
            if let Some(c) = &mut comparison {
                c.already_compared(resumed.done.iter().cloned());
            }
            let writer = Writer::append(spec(comparison), &paths).map_err(output_error)?;
            (writer, paths, resumed)
        }
        None => {
            let (writer, paths) = Writer::create(spec(comparison), &stamp).map_err(output_error)?;
            (writer, paths, report::Resumed::default())
        }
    };
    let interrupted = shutdown.stop_starting.clone();
    let (tx, written) = writer
        .spawn(settings.keys.channel_capacity)
        .map_err(output_error)?;
    let end = tx.clone();

    let stats = aws.stats().clone();
    let settings = Arc::new(settings);
    // Every account's closing row is counted as it is written (see `CountingObserver`).
    let counter = Arc::new(CountingObserver {
        inner: observer,
        summary: std::sync::Mutex::new(Summary::default()),
    });
    counter.audit_started(&stats);
    // The accounts as the listing finds them, less those the filters leave out and those a resumed run
    // has done; the listing's end when it comes.
    let picked = RefCell::new(Picked::default());
    let listed: RefCell<Option<org::Listed>> = RefCell::new(None);
    let pick = |a: org::Account| -> Option<org::Account> {
        let mut p = picked.borrow_mut();
        if !a.selected(&settings) {
            p.filtered_out += 1;
            return None;
        }
        if resumed.done.contains(&a.id) {
            return None;
        }
        p.ids.push(a.id.clone());
        p.active += usize::from(a.is_active());
        counter.accounts_found(p.ids.len());
        Some(a)
    };
    let accounts = listing.into_stream().flat_map(|found| {
        let now: Vec<org::Account> = match found {
            org::Found::Account(a) => pick(a).into_iter().collect(),
            org::Found::Complete(mut done) => {
                let inactive: Vec<org::Account> = std::mem::take(&mut done.inactive)
                    .into_iter()
                    .filter_map(pick)
                    .collect();
                {
                    let p = picked.borrow();
                    counter.accounts_listed(p.active, p.ids.len());
                }
                *listed.borrow_mut() = Some(*done);
                inactive
            }
        };
        futures::stream::iter(now)
    });
    let audit = {
        let (aws, settings) = (aws.clone(), settings.clone());
        move |account, sink: Arc<crate::sink::Sink>, abort| {
            let (aws, settings) = (aws.clone(), settings.clone());
            async move { crate::account::audit(&aws, settings, account, &sink, abort).await }
        }
    };
    pool::run(
        accounts,
        settings.keys.concurrency,
        tx,
        shutdown,
        counter.clone(),
        stats.clone(),
        audit,
    )
    .await;
    let Picked {
        ids, filtered_out, ..
    } = picked.into_inner();
    let filtered_out = filtered_out as u64;
    let mut listed = listed.into_inner().unwrap_or(org::Listed {
        interrupted: true,
        ..org::Listed::default()
    });
    // Only a whole listing tells which accounts of an earlier run left the organization.
    let whole = listed.cut.is_none() && !listed.interrupted;
    let found = listed.ids.len();
    if listed.interrupted {
        tracing::warn!(
            "the run was stopped before the organization was listed to its end: {found} accounts found; --resume lists it again"
        );
    }
    // The last record: how the run went, for the summary page.
    let calls = stats.snapshot();
    let _ = end
        .send(Record::End(RunFacts {
            elapsed_s: started.elapsed().as_secs_f64(),
            calls: calls.calls,
            throttled: calls.throttled,
            server_errors: calls.server_errors,
            assume_role: calls.assume_role,
            filtered_out,
            resumed: resumed.audited + resumed.not_active,
            in_org: whole.then(|| std::mem::take(&mut listed.ids)),
        }))
        .await;
    drop(end);

    let written = written.await.map_err(|failure| {
        let unwritten: Vec<String> = ids
            .iter()
            .filter(|id| !failure.accounts_written.contains(*id))
            .cloned()
            .collect();
        AuditError::WriterFailed {
            dir: dir.clone(),
            source: failure.error,
            written: failure.accounts_written.len() + resumed.done.len(),
            unwritten,
        }
    })?;
    let counted = counter.summary.lock().expect("summary").clone();
    let mut summary = Summary {
        accounts: counted.accounts + resumed.audited + resumed.not_active,
        audited: counted.audited + resumed.audited,
        not_active: counted.not_active + resumed.not_active,
        resumed: resumed.audited + resumed.not_active,
        filtered_out,
        ou_paths_unread: listed.tree_error.clone(),
        keys: written.keys,
        events: written.events,
        credentials: written.credentials,
        key_history: written.key_history,
        changes: written.digest,
        compare_disabled: !settings.keys.compare_runs,
        calls: stats.snapshot(),
        elapsed: started.elapsed(),
        keys_file: paths.keys,
        users_file: paths.users,
        events_file: paths.events,
        accounts_file: paths.accounts,
        findings_file: paths.findings,
        changes_file: paths.changes,
        summary_file: paths.summary,
        credentials_file: paths.credentials,
        key_history_file: paths.key_history,
        history_file: paths.history,
        optional: optional_of(&aws, &settings),
        ..counted
    };
    // A listing that failed part-way: the reports are whole for the accounts found, but the run is not.
    if let Some(error) = listed.cut {
        let dir = match remote {
            Some(r) => {
                upload(r, &mut summary).await?;
                std::path::PathBuf::from(r.location().url(""))
            }
            None => dir.clone(),
        };
        return Err(AuditError::ListingCut {
            error,
            found,
            audited: summary.audited,
            dir,
        });
    }
    // The files are final: now what leaves the machine. A run told to stop that still finished every
    // account (a Lambda invocation whose deadline came after its last account) is complete, and imports.
    let stopped_early = interrupted.is_cancelled() && summary.partial + summary.skipped > 0;
    let target = crate::send::AwsTarget::new(&aws);
    if settings.keys.security_hub {
        summary.security_hub = Some(if stopped_early {
            "security hub: nothing imported, the run was interrupted (--resume imports when it finishes)"
                .to_string()
        } else {
            match crate::send::securityhub::import(
                &target,
                &settings,
                &summary.findings_file,
                &summary.accounts_file,
                &summary.history_file,
                format,
            )
            .await
            {
                Ok(r) if r.failed_accounts == 0 => format!(
                    "security hub: imported {} findings and archived {} in {} accounts",
                    r.imported, r.archived, r.accounts
                ),
                Ok(r) => format!(
                    "security hub: imported {} findings and archived {} in {} accounts; warning: {} accounts not fully imported (the accounts report's security_hub column says why)",
                    r.imported, r.archived, r.accounts, r.failed_accounts
                ),
                Err(e) => format!(
                    "security hub: warning: the import stopped ({e}); the reports are written"
                ),
            }
        });
    }
    if let Some(r) = remote {
        upload(r, &mut summary).await?;
    }
    if settings.alert_when_stopped || !stopped_early {
        summary.alerts = crate::send::notify::send(&settings, &summary, &stamp, Some(&target))
            .await
            .into_iter()
            .map(|d| (d.label, d.failure))
            .collect();
    }
    Ok(summary)
}

/// Upload the run's files (after the Security Hub import, which fills the accounts report's last
/// column and the history's Security Hub state); the summary then names them in S3. The accounts report
/// goes last, and only once every other file (the findings' history too) has arrived: it is what
/// `--resume` (and the next Lambda invocation) trusts to tell which accounts are done, so it never names
/// an account whose rows are not in S3 beside it.
/// What became of the optional actions, for the summary.
fn optional_of(aws: &Aws, settings: &Settings) -> crate::summary::Optional {
    use crate::summary::Optional;
    if !settings.keys.optional_actions {
        return Optional::Off;
    }
    let refused: Vec<(String, String, u32, u64)> = aws
        .optional()
        .refused()
        .into_iter()
        .map(|(key, n, skipped)| {
            let (role, action) = key.split_once(' ').unwrap_or(("", key.as_str()));
            (action.to_string(), role.to_string(), n, skipped)
        })
        .collect();
    if refused.is_empty() {
        Optional::Asked
    } else {
        Optional::Refused(refused)
    }
}

async fn upload(remote: &Remote, summary: &mut Summary) -> Result<(), AuditError> {
    let accounts = summary.accounts_file.clone();
    let mut files = [
        &mut summary.keys_file,
        &mut summary.users_file,
        &mut summary.events_file,
        &mut summary.findings_file,
        &mut summary.changes_file,
        &mut summary.summary_file,
        &mut summary.credentials_file,
        &mut summary.key_history_file,
        &mut summary.history_file,
        &mut summary.accounts_file,
    ];
    let others: Vec<std::path::PathBuf> = files
        .iter()
        .map(|f| f.to_path_buf())
        .filter(|f| f.is_file() && *f != accounts)
        .collect();
    let kept = |error| AuditError::Upload {
        error,
        kept: remote.staging().to_path_buf(),
    };
    remote.upload(&others).await.map_err(kept)?;
    if accounts.is_file() {
        remote
            .upload(std::slice::from_ref(&accounts))
            .await
            .map_err(kept)?;
    }
    for f in files.iter_mut() {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        **f = std::path::PathBuf::from(remote.location().url(&name));
    }
    Ok(())
}

/// The accounts the run takes from the listing, as it goes.
#[derive(Default)]
struct Picked {
    /// Their ids, for the writer's failure message.
    ids: Vec<String>,
    active: usize,
    /// Left out by the account and OU filters.
    filtered_out: usize,
}

/// Counts each account's closing row for the summary, and passes every notification on.
struct CountingObserver {
    inner: Arc<dyn Observer>,
    summary: std::sync::Mutex<Summary>,
}

impl Observer for CountingObserver {
    fn audit_started(&self, stats: &Arc<crate::stats::CallStats>) {
        self.inner.audit_started(stats);
    }
    fn accounts_found(&self, found: usize) {
        self.inner.accounts_found(found);
    }
    fn accounts_listed(&self, active: usize, total: usize) {
        self.inner.accounts_listed(active, total);
    }
    fn account_started(&self, id: &str, name: &str, users: &Arc<crate::observe::UserCounts>) {
        self.inner.account_started(id, name, users);
    }
    fn account_finished(&self, row: &crate::record::AccountRow, calls: crate::stats::CallCounts) {
        self.summary.lock().expect("summary").count(row);
        self.inner.account_finished(row, calls);
    }
}
