//! The report: the one writer of the run's files, on a thread of its own, and the outputs it feeds.
//!
//! Auditors send `Record`s over a bounded channel; the writer thread hands each record to every `Output`
//! (one per file: the four tables of design §3 in `tables`), and after each account's closing row makes
//! everything written durable. Only this thread touches the files, so nothing guards them with a mutex,
//! rows are never torn, and a slow or network disk never stalls the runtime's timers and buckets. Memory
//! does not grow with the rows. If a write fails, every file is cut back to its last complete account and
//! the channel closes, so the auditors stop.
//!
//! `files` keeps the files private and named by the run's stamp; `resume` prepares an interrupted run's
//! files to be continued. This room knows records and settings, never services or rules.

pub mod ages;
pub mod changes;
pub mod columns;
pub mod compare;
pub mod credentials;
pub mod digest;
pub mod excepted;
pub mod files;
pub mod findings;
pub mod history;
pub mod html;
mod ous;
pub mod page;
pub mod resume;
pub mod snapshot;
pub mod table;
pub mod tables;

use std::collections::HashSet;
use std::fs::File;
use std::path::PathBuf;

use tokio::sync::{mpsc, oneshot};

use crate::config::{Format, Values};
use crate::record::snapshot::AccountSnapshot;
use crate::record::{Record, RunFacts};

pub use columns::{
    ACCOUNT_COLUMNS, CREDENTIAL_COLUMNS, EVENT_COLUMNS, KEY_COLUMNS, KEY_HISTORY_COLUMNS,
    USER_COLUMNS,
};
pub use compare::CHANGE_COLUMNS;
use compare::{AccountChanges, Comparison};
use digest::Digest;
pub use files::{create_private, latest_run, stamp_time, OutputPaths};
pub use findings::{FindingsContext, OcsfClass};
pub use resume::{prepare_resume, Resumed};
pub use table::escape_formula;
pub use tables::RunFile;

/// One output of the run. It receives every record in arrival order, each account's snapshot and changes
/// as the account closes, and the end of the run, and writes what it wants of them. A new output (a
/// findings file, a summary page) is a new implementation, not an edit of the writer.
pub trait Output: Send {
    fn write(&mut self, _record: &Record) -> std::io::Result<()> {
        Ok(())
    }
    /// An account closed: what it holds, and what changed in it since the earlier run (`None` when no
    /// run is compared).
    fn account_closed(
        &mut self,
        _snapshot: &AccountSnapshot,
        _changes: Option<&AccountChanges>,
    ) -> std::io::Result<()> {
        Ok(())
    }
    /// Make everything written so far durable (after each account's closing row).
    fn flush(&mut self) -> std::io::Result<()>;
    /// Its files, to be cut back to their last flush if the writer fails.
    fn files(&self) -> Vec<&File>;
    /// An account a resumed run finished before it stopped (its rows are already in the files): for the
    /// outputs that summarize the whole run.
    fn earlier(
        &mut self,
        _row: &crate::record::AccountRow,
        _snapshot: Option<&AccountSnapshot>,
    ) -> std::io::Result<()> {
        Ok(())
    }
    /// An account of the earlier run that this run did not close, still in the organization or not known
    /// to have left it (left out by a filter, not reached): for the outputs that carry state forward.
    fn carry(&mut self, _old: &AccountSnapshot) -> std::io::Result<()> {
        Ok(())
    }
    /// The run is over: complete the output.
    fn finish(&mut self, _end: &RunEnd) -> std::io::Result<()> {
        self.flush()
    }
}

/// What the outputs learn when the run ends.
pub struct RunEnd<'a> {
    /// Accounts of the earlier run that this one did not close and that left the organization.
    pub removed: &'a [AccountChanges],
    pub digest: &'a Digest,
    pub facts: &'a RunFacts,
}

/// Totals the writer counted, and what the comparison found, for the summary.
#[derive(Debug, Default, Clone)]
pub struct Written {
    pub keys: u64,
    pub users: u64,
    pub events: u64,
    pub accounts: u64,
    /// Rows of the credentials file and of the key history.
    pub credentials: u64,
    pub key_history: u64,
    pub digest: Digest,
}

/// The writer stopped on an I/O error: the files hold the accounts written before it, each whole.
#[derive(Debug)]
pub struct WriteFailure {
    pub error: std::io::Error,
    /// The accounts whose closing row was written (and whose rows are all in the files).
    pub accounts_written: HashSet<String>,
}

/// How long the writer waits after a record wakes it, for more to come (see `Writer::run`).
const BATCH_PAUSE: std::time::Duration = std::time::Duration::from_millis(2);

/// How a run's files are written.
pub struct Spec {
    pub dir: PathBuf,
    pub format: Format,
    pub values: Values,
    pub escape: bool,
    pub findings: FindingsContext,
    /// The earlier run this one is compared with.
    pub comparison: Option<Comparison>,
    /// The earlier run that was there but could not be read whole, and why.
    pub not_compared: Option<digest::NotCompared>,
    /// `--security-hub`: the accounts report's `security_hub` cells wait for the import.
    pub security_hub: bool,
}

/// The outputs of one run, and what the writer keeps to feed them.
pub struct Writer {
    outputs: Vec<Box<dyn Output>>,
    snapshots: snapshot::Builder,
    comparison: Option<Comparison>,
    digest: Digest,
    history: HistoryClock,
    /// The run's exceptions, the rules that matched something, and the findings accepted and reopened.
    accepting: Option<excepted::Accepting>,
    matched: std::collections::BTreeSet<String>,
    too_broad: Vec<String>,
    accepted: (u64, u64),
}

/// What a finding's history is dated with: this run's start, the compared run's (the first sighting of
/// its findings that have no history yet), and the thresholds that date a key's findings.
#[derive(Clone, Copy)]
struct HistoryClock {
    now: i64,
    earlier_seen: Option<i64>,
    thresholds: crate::config::Thresholds,
}

impl Writer {
    /// Create every file of a new run in `spec.dir`, private, with their headers. If a name of this stamp
    /// is taken, the files take the stamp's next free suffix together; the paths say which.
    pub fn create(spec: Spec, stamp: &str) -> std::io::Result<(Writer, OutputPaths)> {
        let format = spec.format;
        let (stamp, mut files) = files::create_set(&spec.dir, stamp, |s| {
            let mut names = RunFile::file_names(s, format);
            names.push(files::history_name(s));
            names
        })?;
        let paths = OutputPaths::with_format(&spec.dir, &stamp, format);
        let history = files.pop().expect("the history file");
        let files: Vec<(RunFile, File, bool)> = RunFile::FILES
            .into_iter()
            .zip(files)
            .map(|(r, f)| (r, f, true))
            .collect();
        let mut w = Writer::open(spec, files, history, &paths)?;
        w.flush()?;
        Ok((w, paths))
    }

    /// Continue a run's files (prepared by `prepare_resume`): rows are appended after theirs. A file the
    /// run did not have (an older version wrote it) is created.
    pub fn append(spec: Spec, paths: &OutputPaths) -> std::io::Result<Writer> {
        let mut files = Vec::new();
        for r in RunFile::FILES {
            let path = paths.of(r);
            let (file, new) = match files::open_append(path) {
                Ok(f) => (f, false),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => (create_private(path)?, true),
                Err(e) => return Err(e),
            };
            files.push((r, file, new));
        }
        let history = match files::open_append(&paths.history) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_private(&paths.history)?,
            Err(e) => return Err(e),
        };
        let (dir, format) = (spec.dir.clone(), spec.format);
        let mut w = Writer::open(spec, files, history, paths)?;
        // What changed in the accounts finished before the resume, from their kept rows: the digest (the
        // page, the alert) is of the whole run.
        w.digest = Digest::of_run(paths, format, w.digest.against.clone())?;
        let outputs = &mut w.outputs;
        snapshot::replay_done(paths, format, &dir, |row, s| {
            for o in outputs.iter_mut() {
                o.earlier(row, s)?;
            }
            Ok(())
        })?;
        w.flush()?;
        Ok(w)
    }

    /// The outputs over a run's files (`new`: its header is still to be written).
    fn open(
        spec: Spec,
        files: Vec<(RunFile, File, bool)>,
        history: File,
        paths: &OutputPaths,
    ) -> std::io::Result<Writer> {
        let mut outputs: Vec<Box<dyn Output>> = vec![Box::new(history::HistoryOutput::new(
            history,
            spec.findings.clone(),
        ))];
        for (report, file, new) in files {
            match report {
                RunFile::Keys
                | RunFile::Users
                | RunFile::Events
                | RunFile::Accounts
                | RunFile::Credentials
                | RunFile::KeyHistory => {
                    let t =
                        table::Table::new(file, spec.format, report.columns(), spec.escape, new)?;
                    outputs.push(Box::new(
                        tables::TableOutput::new(report, t, spec.values)
                            .with_security_hub(spec.security_hub),
                    ));
                }
                RunFile::Findings => outputs.push(Box::new(findings::FindingsOutput::new(
                    file,
                    spec.findings.clone(),
                ))),
                RunFile::Changes => {
                    let t =
                        table::Table::new(file, spec.format, report.columns(), spec.escape, new)?;
                    outputs.push(Box::new(changes::ChangesOutput::new(t)));
                }
                // Written whole at the end of the run, over its placeholder.
                RunFile::Summary => {
                    drop(file);
                    outputs.push(Box::new(page::PageOutput::new(
                        paths.summary.clone(),
                        paths.stamp(),
                        spec.findings.cis_versions.clone(),
                    )));
                }
            }
        }
        let mut digest = match &spec.comparison {
            Some(c) => Digest::against(&c.label),
            None => Digest::default(),
        };
        digest.not_compared = spec.not_compared;
        let history = HistoryClock {
            now: spec.findings.started_at.timestamp_millis(),
            earlier_seen: spec
                .comparison
                .as_ref()
                .and_then(|c| files::stamp_time(&c.label))
                .map(|t| t.timestamp_millis()),
            thresholds: spec.findings.thresholds,
        };
        Ok(Writer {
            outputs,
            snapshots: snapshot::Builder::new(spec.values),
            comparison: spec.comparison,
            digest,
            history,
            accepting: spec.findings.accepting.clone(),
            matched: Default::default(),
            too_broad: Vec::new(),
            accepted: (0, 0),
        })
    }

    pub fn write(&mut self, record: &Record) -> std::io::Result<()> {
        for o in &mut self.outputs {
            o.write(record)?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        for o in &mut self.outputs {
            o.flush()?;
        }
        Ok(())
    }

    /// One record. An account's closing row is annotated with its new and resolved findings before it
    /// is written, then the outputs get the account's snapshot and changes.
    fn handle(&mut self, mut record: Record) -> std::io::Result<()> {
        let mut closed = self.snapshots.record(&record);
        if let (Some(snapshot), Some(acc)) = (&mut closed, &self.accepting) {
            snapshot.excepted = acc.accepted(snapshot);
            self.matched
                .extend(snapshot.excepted.values().map(|a| a.rule.clone()));
            self.matched.extend(acc.guarding(snapshot));
            let too_broad = acc.too_broad(snapshot);
            if let Record::Account(a) = &mut record {
                a.note = too_broad
                    .iter()
                    .map(|t| format!("too broad: exception {t}"))
                    .collect::<Vec<_>>()
                    .join("; ");
            }
            self.too_broad.extend(too_broad);
        }
        let mut changes = match (&closed, &mut self.comparison) {
            (Some(snapshot), Some(c)) => Some(c.account(snapshot)?),
            _ => None,
        };
        if let (Some(snapshot), Some(c)) = (&closed, &mut changes) {
            self.accepted.1 += excepted::adjust(c, snapshot);
        }
        // The account's history, grown from the one the compared run left.
        if let Some(snapshot) = &mut closed {
            let h = &self.history;
            let old = changes
                .as_ref()
                .map(|c| c.history.as_slice())
                .unwrap_or(&[]);
            snapshot.history = history::update(
                old,
                snapshot,
                changes.as_ref(),
                h.now,
                h.earlier_seen,
                |f| findings::first_seen_of(f, h.thresholds),
            );
            for e in &mut snapshot.history {
                e.exception = snapshot.excepted.get(&e.uid).map(|a| a.rule.clone());
            }
            self.accepted.0 += snapshot.excepted.len() as u64;
        }
        if let (Record::Account(a), Some(c)) = (&mut record, &changes) {
            a.new_findings = Some(c.new_findings.len() as u64);
            a.resolved_findings = Some(c.resolved_findings.len() as u64);
        }
        self.write(&record)?;
        if let Some(snapshot) = &closed {
            match &changes {
                Some(c) => self.digest.add(c),
                None => {
                    let mut all = AccountChanges::all_new(snapshot);
                    excepted::adjust(&mut all, snapshot);
                    self.digest.add(&all);
                }
            }
            for o in &mut self.outputs {
                o.account_closed(snapshot, changes.as_ref())?;
            }
        }
        Ok(())
    }

    /// The run is over: the earlier run's accounts this one did not close, then every output's end.
    fn end(&mut self, facts: &RunFacts) -> std::io::Result<()> {
        let outputs = &mut self.outputs;
        let removed = match self.comparison.take() {
            Some(c) => c.finish(facts.in_org.as_ref(), |old| {
                for o in outputs.iter_mut() {
                    o.carry(old)?;
                }
                Ok(())
            })?,
            None => Vec::new(),
        };
        for r in &removed {
            self.digest.add(r);
        }
        if let Some(acc) = &self.accepting {
            self.digest.exceptions = acc.digest(&self.matched, self.accepted.0, self.accepted.1);
            self.digest.exceptions.too_broad = std::mem::take(&mut self.too_broad);
        }
        let end = RunEnd {
            removed: &removed,
            digest: &self.digest,
            facts,
        };
        for o in &mut self.outputs {
            o.finish(&end)?;
        }
        Ok(())
    }

    /// Write every record until the channel closes (every auditor is done), then complete the outputs.
    /// Runs on the writer's own thread.
    fn run(mut self, mut rx: mpsc::Receiver<Record>) -> Result<Written, WriteFailure> {
        // Each file's handle and its length at the last flush: what a failure cuts it back to.
        let mut durable: Vec<(File, u64)> = Vec::new();
        for o in &self.outputs {
            for f in o.files() {
                let clone = f.try_clone().and_then(|c| {
                    let len = c.metadata()?.len();
                    Ok((c, len))
                });
                match clone {
                    Ok(d) => durable.push(d),
                    Err(error) => {
                        return Err(WriteFailure {
                            error,
                            accounts_written: HashSet::new(),
                        })
                    }
                }
            }
        }
        let mut written = Written::default();
        let mut accounts_written = HashSet::new();
        let mut facts = RunFacts::default();
        let mut step = |w: &mut Writer, record: Record| -> std::io::Result<()> {
            match &record {
                Record::Key(_) => written.keys += 1,
                Record::User(_) => written.users += 1,
                Record::Event(_) => written.events += 1,
                Record::Credential(_) => written.credentials += 1,
                Record::KeyHistory(_) => written.key_history += 1,
                Record::Account(_) => written.accounts += 1,
                Record::End(f) => {
                    facts = f.clone();
                    return Ok(());
                }
            }
            let account = match &record {
                Record::Account(a) => Some(a.account_id.clone()),
                _ => None,
            };
            w.handle(record)?;
            if let Some(id) = account {
                // An account is complete: make its rows durable before the next one.
                w.flush()?;
                for (file, len) in &mut durable {
                    *len = file.metadata()?.len();
                }
                accounts_written.insert(id);
            }
            Ok(())
        };
        let result = (|| {
            // A record sent to a parked writer wakes it (a futex call and a context switch on both
            // sides). So the writer takes records in batches: woken by one, it pauses, then writes all
            // that came meanwhile before it parks again; a stream of rows wakes it a few hundred times a
            // second instead of once per row.
            while let Some(first) = rx.blocking_recv() {
                step(&mut self, first)?;
                std::thread::sleep(BATCH_PAUSE);
                while let Ok(record) = rx.try_recv() {
                    step(&mut self, record)?;
                }
            }
            Ok(())
        })();
        let result = result.and_then(|()| self.end(&facts));
        match result {
            Ok(()) => Ok(Written {
                digest: std::mem::take(&mut self.digest),
                ..written
            }),
            Err(error) => {
                // Close the channel first, so the auditors stop; then drop the outputs (their buffers may
                // still write on drop) and cut every file back to its last complete account.
                drop(rx);
                drop(self);
                for (file, len) in &durable {
                    let _ = file.set_len(*len);
                }
                Err(WriteFailure {
                    error,
                    accounts_written,
                })
            }
        }
    }

    /// Start the writer on a thread of its own, fed by a channel of `capacity` records. The future
    /// resolves when every sender is gone and the files are complete, or when a write failed.
    pub fn spawn(
        self,
        capacity: usize,
    ) -> std::io::Result<(
        mpsc::Sender<Record>,
        impl std::future::Future<Output = Result<Written, WriteFailure>>,
    )> {
        let (tx, rx) = mpsc::channel(capacity);
        let (done_tx, done_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("iam-audit-writer".into())
            .spawn(move || {
                let _ = done_tx.send(self.run(rx));
            })?;
        let done = async move {
            done_rx.await.unwrap_or_else(|_| {
                Err(WriteFailure {
                    error: std::io::Error::other("the writer thread panicked"),
                    accounts_written: HashSet::new(),
                })
            })
        };
        Ok((tx, done))
    }
}
