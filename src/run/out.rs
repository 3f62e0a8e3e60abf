//! What leaves the machine once the run's files are final: the Security Hub import, the upload to S3
//! (the accounts report last), the alert; and what the summary says of the optional actions.

use crate::aws::Aws;
use crate::config::{Format, Settings};
use crate::error::AuditError;
use crate::store::Remote;
use crate::summary::Summary;

/// A listing that failed part-way: the reports are whole for the accounts found (uploaded, for an S3
/// run), but the run is not.
pub(super) async fn listing_cut(
    error: crate::org::ListingError,
    found: usize,
    remote: Option<&Remote>,
    mut summary: Summary,
    dir: &std::path::Path,
) -> AuditError {
    let dir = match remote {
        Some(r) => {
            if let Err(e) = upload(r, &mut summary).await {
                return e;
            }
            std::path::PathBuf::from(r.location().url(""))
        }
        None => dir.to_path_buf(),
    };
    AuditError::ListingCut {
        error,
        found,
        audited: summary.audited,
        dir,
    }
}

/// The import (unless the run stopped early: `--resume` imports when it finishes), the upload, the alert.
pub(super) async fn send_out(
    settings: &std::sync::Arc<Settings>,
    aws: &Aws,
    remote: Option<&Remote>,
    mut summary: Summary,
    stopped_early: bool,
    stamp: &str,
    format: Format,
) -> Result<Summary, AuditError> {
    let target = crate::send::AwsTarget::new(aws);
    if settings.keys.security_hub {
        summary.security_hub = Some(if stopped_early {
            "security hub: nothing imported, the run was interrupted (--resume imports when it finishes)"
                .to_string()
        } else {
            match crate::send::securityhub::import(
                &target,
                settings,
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
        summary.alerts = crate::send::notify::send(settings, &summary, stamp, Some(&target))
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
pub(super) async fn upload(remote: &Remote, summary: &mut Summary) -> Result<(), AuditError> {
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

/// What became of the optional actions, for the summary.
pub(super) fn optional_of(aws: &Aws, settings: &Settings) -> crate::summary::Optional {
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
