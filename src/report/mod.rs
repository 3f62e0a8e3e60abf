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

pub mod files;
pub mod resume;
pub mod table;
pub mod tables;

use std::collections::HashSet;
use std::fs::File;
use std::path::Path;

use tokio::sync::{mpsc, oneshot};

use crate::config::{Format, Values};
use crate::record::Record;

pub use files::{create_private, latest_run, stamp_time, OutputPaths};
pub use resume::{prepare_resume, Resumed};
pub use table::escape_formula;
pub use tables::{Report, ACCOUNT_COLUMNS, EVENT_COLUMNS, KEY_COLUMNS, USER_COLUMNS};

/// One output of the run: it receives every record, in arrival order, and writes what it wants of them.
/// A new output (a findings file, a summary page) is a new implementation, not an edit of the writer.
pub trait Output: Send {
    fn write(&mut self, record: &Record) -> std::io::Result<()>;
    /// Make everything written so far durable (after each account's closing row).
    fn flush(&mut self) -> std::io::Result<()>;
    /// Its files, to be cut back to their last flush if the writer fails.
    fn files(&self) -> Vec<&File>;
    /// The run is over: complete the output.
    fn finish(&mut self) -> std::io::Result<()> {
        self.flush()
    }
}

/// Totals the writer counted, for the summary.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Written {
    pub keys: u64,
    pub users: u64,
    pub events: u64,
    pub accounts: u64,
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

/// The outputs of one run.
pub struct Writer {
    outputs: Vec<Box<dyn Output>>,
}

impl Writer {
    pub fn new(outputs: Vec<Box<dyn Output>>) -> Writer {
        Writer { outputs }
    }

    /// Create the four reports of a new run in `dir`, private and with their headers. If a name of this
    /// stamp is taken, the four take the stamp's next free suffix together; the paths say which.
    pub fn create_tables(
        dir: &Path,
        stamp: &str,
        format: Format,
        values: Values,
        escape: bool,
    ) -> std::io::Result<(Writer, OutputPaths)> {
        let (stamp, files) = files::create_set(dir, stamp, |s| Report::file_names(s, format))?;
        let paths = OutputPaths::with_format(dir, &stamp, format);
        let mut outputs: Vec<Box<dyn Output>> = Vec::new();
        for (report, file) in Report::ALL.into_iter().zip(files) {
            let table = table::Table::new(file, format, report.columns(), escape, true)?;
            outputs.push(Box::new(tables::TableOutput::new(report, table, values)));
        }
        let mut w = Writer { outputs };
        w.flush()?;
        Ok((w, paths))
    }

    /// Continue a run's four reports (prepared by `prepare_resume`): rows are appended after theirs.
    pub fn append_tables(
        paths: &OutputPaths,
        format: Format,
        values: Values,
        escape: bool,
    ) -> std::io::Result<Writer> {
        let mut outputs: Vec<Box<dyn Output>> = Vec::new();
        for report in Report::ALL {
            let file = files::open_append(paths.of(report))?;
            let table = table::Table::new(file, format, report.columns(), escape, false)?;
            outputs.push(Box::new(tables::TableOutput::new(report, table, values)));
        }
        Ok(Writer { outputs })
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
        let mut handle = |record: Record| -> std::io::Result<()> {
            self.write(&record)?;
            match &record {
                Record::Key(_) => written.keys += 1,
                Record::User(_) => written.users += 1,
                Record::Event(_) => written.events += 1,
                Record::Account(a) => {
                    written.accounts += 1;
                    // An account is complete: make its rows durable before the next one.
                    self.flush()?;
                    for (file, len) in &mut durable {
                        *len = file.metadata()?.len();
                    }
                    accounts_written.insert(a.account_id.clone());
                }
            }
            Ok(())
        };
        let result = (|| {
            // A record sent to a parked writer wakes it (a futex call and a context switch on both
            // sides). So the writer takes records in batches: woken by one, it pauses, then writes all
            // that came meanwhile before it parks again; a stream of rows wakes it a few hundred times a
            // second instead of once per row.
            while let Some(first) = rx.blocking_recv() {
                handle(first)?;
                std::thread::sleep(BATCH_PAUSE);
                while let Ok(record) = rx.try_recv() {
                    handle(record)?;
                }
            }
            Ok(())
        })();
        let result = result.and_then(|()| {
            for o in &mut self.outputs {
                o.finish()?;
            }
            Ok(())
        });
        match result {
            Ok(()) => Ok(written),
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
