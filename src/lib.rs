//! iam-audit: audit IAM access keys, console passwords, MFA devices and IAM lifecycle events across every
//! account of an AWS Organization, concurrently and inside the API quotas.
//!
//! The data flows through the modules in this order (design §4):
//! `config` → `aws` (base SDK config, one HTTP client, one STS client) → `org` (the accounts) → `pool`
//! (bounded fan-out, cancellation) → `account`, which composes `iam` (per-user calls, or
//! `credential_report`; verdicts from `risk`) and `cloudtrail`, both calling AWS
//! through the account's `session` (credentials, paced clients, retries, the tally) → `report` (the one
//! writer task). Below them: `limits` (buckets), `retry` (failures), `pages`, `stats` (counters);
//! `progress` only observes.
//!
//! `run` is the whole audit and is what the binary and the tests call.

pub mod account;
pub mod aws;
pub mod check;
pub mod cloudtrail;
pub mod config;
pub mod credential_report;
pub mod iam;
pub mod limits;
pub mod org;
pub mod pages;
pub mod pool;
pub mod progress;
pub mod report;
pub mod retry;
pub mod risk;
pub mod session;
#[cfg(feature = "sim")]
pub mod sim;
pub mod stats;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

pub use config::{Config, ConfigError, Settings};
pub use pool::Shutdown;
pub use progress::{Observer, Silent, Summary};

use crate::aws::{Aws, CredentialsSetupError};
use crate::report::Writer;
use crate::retry::Failure;

/// A failure of the run as a whole. Per-account failures are rows of the accounts report, not errors.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Credentials(#[from] CredentialsSetupError),
    #[error("cannot list the organization's accounts ({failure}). Run from the management account or a delegated administrator with organizations:ListAccounts (see README: Setting up the audit role)")]
    ListAccounts { failure: Failure },
    #[error("cannot read the organization's OU tree for the OU filters ({error}). Grant organizations:ListRoots, organizations:ListOrganizationalUnitsForParent and organizations:ListAccountsForParent (see README: Setting up the audit role), or filter by account instead")]
    OuTree { error: org::ListingError },
    #[error(
        "cannot write the reports to {dir}: {source}. Pass --output-dir with a writable directory"
    )]
    Output {
        dir: PathBuf,
        source: std::io::Error,
    },
}

impl AuditError {
    /// The process exit code of design §2.
    pub fn exit_code(&self) -> i32 {
        match self {
            AuditError::Config(_) => 2,
            AuditError::Credentials(CredentialsSetupError::UnknownProfile { .. }) => 2,
            AuditError::Credentials(_) => 1,
            AuditError::ListAccounts { .. } => 1,
            AuditError::OuTree { .. } => 1,
            AuditError::Output { .. } => 1,
        }
    }
}

/// Check the output directory can take files before any AWS call is made. Directories created here are
/// private (0700): the reports are the organization's credential inventory.
fn check_output_dir(dir: &Path) -> Result<(), AuditError> {
    let err = |source| AuditError::Output {
        dir: dir.to_path_buf(),
        source,
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(err)?;
    let probe = dir.join(format!(".iam-audit-probe-{}", std::process::id()));
    report::create_private(&probe).map_err(err)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// The organization's accounts and, unless `ou_paths` is off, where each sits in the OU tree, both read at
/// once. The OU tree is optional: when it cannot be read the accounts keep an empty `ou_path` and the
/// error comes back (`Some`) for the summary, unless an OU filter needs it.
async fn read_organization(
    aws: &Aws,
    settings: &Settings,
) -> Result<(Vec<org::Account>, Option<org::ListingError>), AuditError> {
    let client = aws.organizations();
    let tree = async {
        if settings.ou_paths {
            org::ou_places(&client, settings.max_pages).await.map(Some)
        } else {
            Ok(None)
        }
    };
    let (accounts, tree) = tokio::join!(org::list_accounts(&client, settings.max_pages), tree);
    let mut accounts = accounts.map_err(|e| AuditError::ListAccounts { failure: e.failure })?;
    match tree {
        Ok(Some(mut places)) => {
            for a in &mut accounts {
                a.place = places.remove(&a.id);
            }
            Ok((accounts, None))
        }
        Ok(None) => Ok((accounts, None)),
        Err(error) if settings.ou_filters() => Err(AuditError::OuTree { error }),
        Err(error) => {
            tracing::warn!(
                "cannot read the OU tree ({error}); the accounts report's ou_path stays empty (the summary says what to grant)"
            );
            Ok((accounts, Some(error)))
        }
    }
}

/// Run one audit of the whole organization and write the four reports.
///
/// `shutdown` stops the run early (SIGINT, SIGTERM): accounts not yet started are reported `skipped`,
/// running ones finish or, once aborted, are `partial`, and every row read so far is written.
pub async fn run(
    settings: Settings,
    observer: Arc<dyn Observer>,
    shutdown: Shutdown,
) -> Result<Summary, AuditError> {
    let started = Instant::now();
    // Credentials first: an unknown profile is a usage error and must leave nothing behind.
    let mut aws = Aws::connect(&settings).await?;
    check_output_dir(&settings.output_dir)?;
    let (accounts, ou_paths_unread) = read_organization(&aws, &settings).await?;
    aws.read_root_credentials_management().await;

    let output_error = |source| AuditError::Output {
        dir: settings.output_dir.clone(),
        source,
    };
    // A resumed run continues its files: accounts already audited keep their rows and are not audited
    // again; every row of the others is removed, to be written again.
    let (writer, paths, resumed) = match &settings.resume_stamp {
        Some(stamp) => {
            let paths =
                report::OutputPaths::with_format(&settings.output_dir, stamp, settings.format);
            let resumed = report::prepare_resume(&paths, settings.format).map_err(output_error)?;
            let writer = Writer::open_append(
                &paths,
                settings.format,
                settings.values,
                settings.escape_formulas,
            )
            .map_err(output_error)?;
            (writer, paths, resumed)
        }
        None => {
            let (writer, paths) = Writer::create_new(
                &settings.output_dir,
                &settings.stamp(),
                settings.format,
                settings.values,
                settings.escape_formulas,
            )
            .map_err(output_error)?;
            (writer, paths, report::Resumed::default())
        }
    };
    let listed = accounts.len();
    let accounts: Vec<org::Account> = accounts
        .into_iter()
        .filter(|a| a.selected(&settings))
        .collect();
    let filtered_out = (listed - accounts.len()) as u64;
    let accounts: Vec<org::Account> = accounts
        .into_iter()
        .filter(|a| !resumed.done.contains(&a.id))
        .collect();
    let (tx, rx) = mpsc::channel(settings.channel_capacity);
    let writer_task = tokio::spawn(report::run_writer(writer, rx));

    let active = accounts.iter().filter(|a| a.is_active()).count();
    observer.accounts_listed(active, accounts.len());
    let mut summary = Summary {
        accounts: resumed.audited + resumed.not_active,
        audited: resumed.audited,
        not_active: resumed.not_active,
        resumed: resumed.audited + resumed.not_active,
        filtered_out,
        ou_paths_unread,
        keys_file: paths.keys.clone(),
        users_file: paths.users.clone(),
        events_file: paths.events.clone(),
        accounts_file: paths.accounts.clone(),
        ..Summary::default()
    };
    let stats = aws.stats().clone();
    let settings = Arc::new(settings);
    let live = Arc::new(progress::Live::new(stats.clone()));
    observer.live(live.clone());
    pool::run(
        &aws,
        settings.clone(),
        accounts,
        tx,
        shutdown,
        live,
        |row| {
            summary.count(row);
            observer.account_finished(row, stats.snapshot());
        },
    )
    .await;

    let written = match writer_task.await {
        Ok(Ok(w)) => w,
        Ok(Err(source)) => {
            return Err(AuditError::Output {
                dir: settings.output_dir.clone(),
                source,
            })
        }
        Err(e) => {
            return Err(AuditError::Output {
                dir: settings.output_dir.clone(),
                source: std::io::Error::other(e),
            })
        }
    };
    summary.keys = written.keys;
    summary.events = written.events;
    summary.calls = aws.stats().snapshot();
    summary.elapsed = started.elapsed();
    Ok(summary)
}
