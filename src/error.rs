//! A failure of the run as a whole, and its exit code (design §2). Per-account failures are rows of the
//! accounts report, never errors; these are the setup failures: bad config, no credentials, the
//! organization not listable, the output not writable.

use std::path::PathBuf;

use crate::aws::CredentialsSetupError;
use crate::config::ConfigError;
use crate::org::ListingError;
use crate::retry::Failure;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Credentials(#[from] CredentialsSetupError),
    #[error("{0}. Nothing was audited; `iam-audit exceptions check FILE` checks a file alone (docs/exceptions.md)")]
    Exceptions(#[from] crate::exceptions::ExceptionsError),
    #[error("cannot list the organization's accounts ({failure}). Run from the management account or a delegated administrator with organizations:ListAccounts (see docs/setup.md)")]
    ListAccounts { failure: Failure },
    #[error("cannot read the organization's OU tree for the OU filters ({error}). Grant organizations:ListRoots, organizations:ListOrganizationalUnitsForParent and organizations:ListAccountsForParent (see docs/setup.md), or filter by account instead")]
    OuTree { error: ListingError },
    #[error("the organization's listing failed part-way ({error}), after {found} accounts were found. The reports in {} are complete for the {audited} accounts audited; the organization's other accounts are unknown. Finish the run with --resume {} once the listing answers", dir.display(), dir.display())]
    ListingCut {
        error: ListingError,
        found: usize,
        audited: u64,
        dir: PathBuf,
    },
    #[error(
        "cannot write the reports to {dir}: {source}. Pass --output-dir with a writable directory"
    )]
    Output {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("--compare {}: {reason}. Name a directory that holds an earlier run's reports (or one of its report files, or DIR/STAMP), or leave --compare out to compare with the latest run in --output-dir", dir.display())]
    Compare { dir: PathBuf, reason: String },
    #[error("cannot use {} for the reports: {error}. Check that the bucket exists and belongs to the expected account (--s3-expected-owner, else the caller's), and that the caller may s3:ListBucket under the prefix, s3:GetObject and s3:PutObject there (docs/unattended.md, Permissions)", error.url)]
    Remote { error: crate::store::RemoteError },
    #[error("{error}. An S3 run writes its reports there first: make TMPDIR (or /tmp) a directory this user may write. In a container: a writable /tmp (Kubernetes: an emptyDir; docker run: -v /tmp); on ECS Fargate the image must declare /tmp a VOLUME, as this repository's Dockerfile does, or Fargate mounts the task volume owned by root")]
    Staging { error: crate::store::OpenError },
    #[error("the reports could not be uploaded: {error}. They are kept, complete, in {}: copy them yourself (aws s3 cp --recursive --sse AES256 …), or fix the bucket and run again", kept.display())]
    Upload {
        error: crate::store::RemoteError,
        kept: PathBuf,
    },
    #[error("cannot write the reports to {dir}: {source}. The files hold every account written before the failure, each whole ({written} accounts); {} were not written: {}. Free space or fix the disk, then finish the run with --resume {}", unwritten.len(), unwritten.join(", "), dir.display())]
    WriterFailed {
        dir: PathBuf,
        source: std::io::Error,
        written: usize,
        /// Every account of the run whose closing row did not reach the accounts report.
        unwritten: Vec<String>,
    },
}

impl AuditError {
    /// The reports cannot be written in `dir`.
    pub fn output(dir: &std::path::Path, source: std::io::Error) -> AuditError {
        AuditError::Output {
            dir: dir.to_path_buf(),
            source,
        }
    }

    /// The process exit code of design §2.
    pub fn exit_code(&self) -> i32 {
        match self {
            AuditError::Config(_) => 2,
            AuditError::Exceptions(_) => 2,
            AuditError::Credentials(CredentialsSetupError::UnknownProfile { .. }) => 2,
            AuditError::Credentials(_) => 1,
            AuditError::ListAccounts { .. } => 1,
            AuditError::OuTree { .. } => 1,
            AuditError::ListingCut { .. } => 1,
            AuditError::Output { .. } => 1,
            AuditError::Compare { .. } => 2,
            AuditError::WriterFailed { .. } => 1,
            AuditError::Remote { .. } => 1,
            AuditError::Staging { .. } => 1,
            AuditError::Upload { .. } => 1,
        }
    }
}

impl From<crate::store::OpenError> for AuditError {
    fn from(e: crate::store::OpenError) -> Self {
        match e {
            crate::store::OpenError::Remote(error) => AuditError::Remote { error },
            staging => AuditError::Staging { error: staging },
        }
    }
}
