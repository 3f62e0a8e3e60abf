//! What a run opens before it writes anything: the organization's listing (its first answers decide
//! whether the organization can be listed at all) and the earlier run to compare with, read whole.

use crate::aws::Aws;
use crate::config::iam_home_region;
use crate::config::Settings;
use crate::error::AuditError;
use crate::org;
use crate::pool::Shutdown;
use crate::report::compare::Comparison;
use crate::report::digest::NotCompared;
use crate::report::excepted::Accepting;
use crate::report::snapshot::GroupedRun;
use crate::report::{self, FindingsContext, OcsfClass, OutputPaths, Resumed, Writer};
use crate::store::Remote;

/// The listing started (it goes on while accounts are audited), its first answers in (the organization's
/// id), and the management account's root-credentials setting read beside it when optional actions are on.
pub(super) async fn open_listing(
    settings: &Settings,
    aws: &mut Aws,
    shutdown: &Shutdown,
) -> Result<(org::Listing, Option<String>), AuditError> {
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
    Ok((listing, org_id))
}

/// The earlier run to compare with (the one `--compare` named, or the latest run in the output directory
/// older than this one, `stamp`), read whole and grouped by account; or, when it is there but cannot be read whole (a file cut
/// short, a row that does not parse, a download that failed), no comparison and why: a run compared with
/// part of another would call everything it could not read resolved or deleted.
pub(super) fn earlier_run(
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

/// The run's files, opened: their stamp, and the writer over them.
pub(super) struct Opened {
    pub writer: Writer,
    pub paths: OutputPaths,
    /// What a resumed run had already done (nothing for a new run).
    pub resumed: Resumed,
    pub stamp: String,
}

/// The run's stamp (the one resumed, the one claimed under an S3 prefix, or the start time), the earlier
/// run read back (from S3 first) to compare with, and the writer over new files or, for `--resume`, over
/// the interrupted run's.
pub(super) async fn open_writer(
    settings: &Settings,
    aws: &Aws,
    remote: Option<&Remote>,
    named: Option<report::files::Run>,
    accepting: Option<Accepting>,
    org_id: Option<String>,
) -> Result<Opened, AuditError> {
    let dir = settings.keys.output_dir.clone();
    let output_error = |source| AuditError::Output {
        dir: dir.clone(),
        source,
    };
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
        earlier_run(settings, named, &stamp, unreadable).map_err(output_error)?
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
            cis_versions: settings
                .cis_versions
                .iter()
                .filter_map(|v| crate::record::CisVersion::parse(v))
                .collect(),
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
    Ok(Opened {
        writer,
        paths,
        resumed,
        stamp,
    })
}
