//! One audit of the whole organization, start to end: credentials, the output directory, the accounts
//! and their OU paths, the writer, the pool of account audits, and the summary. This is what the binary
//! and the tests call; everything below it is a room of its own.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;

use crate::aws::Aws;
use crate::config::Settings;
use crate::error::AuditError;
use crate::observe::Observer;
use crate::org;
use crate::pool::{self, Shutdown};
use crate::record::{Record, RunFacts};
use crate::report;
use crate::report::excepted::Accepting;
use crate::store::Remote;
use crate::summary::Summary;

mod out;
mod start;

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
    let dir = settings.keys.output_dir.clone();
    let output_error = |source| AuditError::output(&dir, source);
    report::files::prepare_dir(&dir).map_err(output_error)?;
    let (listing, org_id) = start::open_listing(&settings, &mut aws, &shutdown).await?;
    let format = settings.format;
    let exceptions = read.accepting.as_ref().map(|a| a.exceptions.clone());
    let start::Opened {
        writer,
        paths,
        resumed,
        stamp,
    } = start::open_writer(&settings, &aws, remote, read.named, read.accepting, org_id).await?;
    let interrupted = shutdown.stop_starting.clone();
    let (tx, written) = writer
        .spawn(settings.keys.channel_capacity)
        .map_err(output_error)?;
    let end = tx.clone();
    let stats = aws.stats().clone();
    let settings = Arc::new(settings);
    // Every account's closing row is counted as it is written (see `CountingObserver`).
    let counter = CountingObserver::new(observer);
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
            let (aws, settings, rules) = (aws.clone(), settings.clone(), exceptions.clone());
            async move { crate::account::audit(&aws, settings, account, rules, &sink, abort).await }
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
    let mut listed = listing_end(listed.into_inner());
    let found = listed.ids.len();
    // The last record: how the run went, for the summary page. Only a whole listing tells which accounts
    // of an earlier run left the organization.
    let whole = listed.cut.is_none() && !listed.interrupted;
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

    let written = written
        .await
        .map_err(|f| writer_failed(f, &ids, &dir, resumed.done.len()))?;
    let counted = counter.summary.lock().expect("summary").clone();
    let summary = Summary {
        accounts: counted.accounts + resumed.audited + resumed.not_active,
        audited: counted.audited + resumed.audited,
        not_active: counted.not_active + resumed.not_active,
        resumed: resumed.audited + resumed.not_active,
        filtered_out,
        ou_paths_unread: listed.tree_error.clone(),
        root_access: aws.root_access().line(),
        keys: written.keys,
        events: written.events,
        credentials: written.credentials,
        key_history: written.key_history,
        changes: written.digest,
        compare_disabled: !settings.keys.compare_runs,
        calls: stats.snapshot(),
        elapsed: started.elapsed(),
        optional: out::optional_of(&aws, &settings),
        ..counted
    }
    .with_files(paths);
    // A listing that failed part-way: the reports are whole for the accounts found, but the run is not.
    if let Some(error) = listed.cut {
        return Err(out::listing_cut(error, found, remote, summary, &dir).await);
    }
    // The files are final: now what leaves the machine. A run told to stop that still finished every
    // account (a Lambda invocation whose deadline came after its last account) is complete, and imports.
    let stopped_early = interrupted.is_cancelled() && summary.partial + summary.skipped > 0;
    out::send_out(
        &settings,
        &aws,
        remote,
        summary,
        stopped_early,
        &stamp,
        format,
    )
    .await
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

impl CountingObserver {
    fn new(inner: Arc<dyn Observer>) -> Arc<CountingObserver> {
        Arc::new(CountingObserver {
            inner,
            summary: std::sync::Mutex::new(Summary::default()),
        })
    }
}

/// The listing as it ended; one the run stopped before its end counts as interrupted (and says so).
fn listing_end(listed: Option<org::Listed>) -> org::Listed {
    let listed = listed.unwrap_or(org::Listed {
        interrupted: true,
        ..org::Listed::default()
    });
    if listed.interrupted {
        tracing::warn!(
            "the run was stopped before the organization was listed to its end: {} accounts found; --resume lists it again",
            listed.ids.len()
        );
    }
    listed
}

/// The writer stopped on an I/O error: every account of the run whose closing row it did not write.
fn writer_failed(
    failure: report::WriteFailure,
    ids: &[String],
    dir: &std::path::Path,
    done_before: usize,
) -> AuditError {
    let unwritten: Vec<String> = ids
        .iter()
        .filter(|id| !failure.accounts_written.contains(*id))
        .cloned()
        .collect();
    AuditError::WriterFailed {
        dir: dir.to_path_buf(),
        source: failure.error,
        written: failure.accounts_written.len() + done_before,
        unwritten,
    }
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
