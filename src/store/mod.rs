//! Reports to S3 (`--output-dir s3://BUCKET/PREFIX/`). The run writes its files as always, in a private
//! local staging directory (0700, under the system's temporary directory); once they are final they are
//! uploaded, each as one object or a multipart upload that S3 assembles only at its end, so a crash never
//! leaves half an object under a report's name. Every request names the bucket's expected owner (so a
//! bucket of that name in someone else's account receives nothing) and asks for server-side encryption
//! (SSE-S3, or SSE-KMS with `--s3-kms-key`) and a SHA-256 checksum.
//!
//! The earlier run the comparison needs, and the interrupted run `--resume s3://…` continues, are read
//! back from the same prefix into the staging directory first, so everything else works on local files.
//! Only the caller's own credentials are used: the bucket is the caller's, never an audited account's.

use std::path::{Path, PathBuf};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ServerSideEncryption};
use aws_smithy_runtime_api::client::result::SdkError;

use crate::aws::Aws;
use crate::config::{S3Location, Settings};

mod upload;
use upload::PART_SIZE;

/// Files above this size go up in parts.
const MULTIPART_ABOVE: u64 = 64 * 1024 * 1024;
/// The claim object of a stamp (`Remote::claim_stamp`).
pub fn claim_name(stamp: &str) -> String {
    format!(".iam-audit-run-{stamp}.claim")
}

/// A name listed under the prefix that is a plain file name: it becomes a path in the staging directory,
/// so a key such as `PREFIX/..` or one with a backslash or a control character is never used.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control)
}

/// An S3 request that failed: which, on what, and AWS's code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("s3:{action} on {url} failed ({code}: {message})")]
pub struct RemoteError {
    pub action: &'static str,
    pub url: String,
    pub code: String,
    pub message: String,
}

/// Why the reports' S3 location could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// S3 refused or failed the first request.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// The local staging directory could not be made (a read-only or root-owned TMPDIR).
    #[error("cannot create a private staging directory in {} (TMPDIR): {source}", dir.display())]
    Staging {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// The run's S3 prefix, and the staging directory its files are written in.
pub struct Remote {
    client: aws_sdk_s3::Client,
    location: S3Location,
    owner: String,
    kms_key: Option<String>,
    staging: PathBuf,
    /// Files above this many bytes go up in parts of `part_size`.
    multipart_above: u64,
    part_size: usize,
}

fn failure<E, R>(action: &'static str, url: String, e: &SdkError<E, R>) -> RemoteError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let (code, message) = match e.as_service_error() {
        Some(se) => (
            se.code().unwrap_or("Unknown").to_string(),
            se.message().unwrap_or("").to_string(),
        ),
        None => ("DispatchFailure".to_string(), crate::aws::error_chain(e)),
    };
    RemoteError {
        action,
        url,
        code,
        message,
    }
}

/// A failure with no S3 answer behind it: the local disk (`LocalIo`) or a body cut short (`ResponseError`).
fn other(action: &'static str, url: &str, code: &str, e: impl std::fmt::Display) -> RemoteError {
    RemoteError {
        action,
        url: url.to_string(),
        code: code.to_string(),
        message: e.to_string(),
    }
}

/// The first request of a run: one key of the prefix (`ListObjectsV2` with `max-keys` 1), which a policy
/// scoped to the prefix allows (`s3:ListBucket` with an `s3:prefix` condition). `HeadBucket` would need
/// `s3:ListBucket` on the whole bucket: a request without a prefix never meets such a condition.
async fn probe(
    client: &aws_sdk_s3::Client,
    location: &S3Location,
    owner: &str,
) -> Result<
    aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output,
    SdkError<
        aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Error,
        aws_smithy_runtime_api::http::Response,
    >,
> {
    client
        .list_objects_v2()
        .bucket(&location.bucket)
        .prefix(&location.prefix)
        .max_keys(1)
        .expected_bucket_owner(owner)
        .send()
        .await
}

/// A private directory of our own for the run's files.
fn staging_dir() -> Result<PathBuf, OpenError> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("iam-audit-{}-{nanos:08x}", std::process::id()));
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(&dir).map_err(|source| OpenError::Staging {
        dir: std::env::temp_dir(),
        source,
    })?;
    Ok(dir)
}

impl Remote {
    /// Check the bucket (it exists, its owner is the expected one, the caller may list the prefix) and
    /// make the staging directory. A bucket in another region is followed there.
    pub async fn open(
        aws: &Aws,
        settings: &Settings,
        location: &S3Location,
    ) -> Result<Remote, OpenError> {
        let url = format!("s3://{}/{}", location.bucket, location.prefix);
        let owner = aws
            .expected_bucket_owner(settings)
            .await
            .map_err(|f| RemoteError {
                action: "GetCallerIdentity (sts)",
                url: url.clone(),
                code: f.code,
                message: f.message,
            })?;
        let mut client = aws.s3(None);
        if let Err(e) = probe(&client, location, &owner).await {
            // S3 answers a bucket of another region with a 301 that names the region.
            let region = e
                .raw_response()
                .and_then(|r| r.headers().get("x-amz-bucket-region"))
                .map(str::to_string);
            let status = e.raw_response().map(|r| r.status().as_u16());
            match (status, region) {
                (Some(301), Some(region)) => {
                    client = aws.s3(Some(region));
                    probe(&client, location, &owner)
                        .await
                        .map_err(|e| failure("ListObjectsV2", url.clone(), &e))?;
                }
                (status, _) => {
                    let mut err = failure("ListObjectsV2", url.clone(), &e);
                    // An answer without a body (a proxy, a redirect) says only its status.
                    if err.message.is_empty() || err.code == "Unknown" {
                        err.code = match status {
                            Some(404) => "NoSuchBucket".into(),
                            Some(403) => "AccessDenied".into(),
                            Some(s) => format!("HTTP {s}"),
                            None => err.code,
                        };
                    }
                    if err.code == "AccessDenied" {
                        err.message = format!(
                            "{}{}the caller may not list the bucket under {}, or it is not owned by {owner}",
                            err.message,
                            if err.message.is_empty() { "" } else { ": " },
                            if location.prefix.is_empty() { "its root" } else { &location.prefix }
                        );
                    }
                    return Err(err.into());
                }
            }
        }
        let staging = staging_dir()?;
        Ok(Remote {
            client,
            location: location.clone(),
            owner,
            kms_key: settings.keys.s3_kms_key.clone(),
            staging,
            multipart_above: MULTIPART_ABOVE,
            part_size: PART_SIZE,
        })
    }

    /// Upload files above `above` bytes in parts of `part` bytes (S3: at least 5 MiB but the last).
    pub fn with_parts(mut self, above: u64, part: usize) -> Remote {
        self.multipart_above = above;
        self.part_size = part;
        self
    }

    /// The local directory the run writes in.
    pub fn staging(&self) -> &Path {
        &self.staging
    }

    pub fn location(&self) -> &S3Location {
        &self.location
    }

    /// The names of the objects directly under the prefix.
    pub async fn names(&self) -> Result<Vec<String>, RemoteError> {
        let url = format!("s3://{}/{}", self.location.bucket, self.location.prefix);
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        // At most 10,000 pages of 1,000 names.
        for _ in 0..10_000 {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.location.bucket)
                .prefix(&self.location.prefix)
                .delimiter("/")
                .expected_bucket_owner(&self.owner)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| failure("ListObjectsV2", url.clone(), &e))?;
            for o in page.contents() {
                if let Some(name) = o.key().and_then(|k| k.strip_prefix(&self.location.prefix)) {
                    if plain_name(name) {
                        names.push(name.to_string());
                    } else {
                        tracing::warn!(
                            "{}: an object whose name is not a plain file name ({name:?}) is left alone",
                            url
                        );
                    }
                }
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated().unwrap_or(false) => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(names)
    }

    /// Download these objects of the prefix into the staging directory (private files).
    pub async fn fetch(&self, names: &[String]) -> Result<(), RemoteError> {
        use tokio::io::AsyncWriteExt;
        for name in names {
            let url = self.location.url(name);
            let object = self
                .client
                .get_object()
                .bucket(&self.location.bucket)
                .key(self.location.key(name))
                .expected_bucket_owner(&self.owner)
                .send()
                .await
                .map_err(|e| failure("GetObject", url.clone(), &e))?;
            let local_error = |e: std::io::Error| other("GetObject", &url, "LocalIo", e);
            let path = self.staging.join(name);
            let file = crate::report::create_private(&path).map_err(local_error)?;
            let mut file = tokio::fs::File::from_std(file);
            let mut body = object.body;
            while let Some(chunk) = body
                .try_next()
                .await
                .map_err(|e| other("GetObject", &url, "ResponseError", e))?
            {
                file.write_all(&chunk).await.map_err(local_error)?;
            }
            file.flush().await.map_err(local_error)?;
        }
        Ok(())
    }

    /// Read back what a run needs from the prefix: the files of the run `resume` continues (a failure
    /// stops the run), and the four tables of the latest run before `stamp` when it is compared with one
    /// (a failure is why that run is not compared, and its files are removed again).
    pub async fn fetch_for_run(
        &self,
        resume: Option<&str>,
        compare: bool,
        stamp: &str,
    ) -> Result<Option<crate::report::digest::NotCompared>, RemoteError> {
        use crate::report::files::{runs_among, stamp_before};
        use crate::report::RunFile;
        let names = self.names().await?;
        let runs = runs_among(&names);
        let mut resumed: Vec<String> = Vec::new();
        let history = crate::report::files::history_name;
        if let Some((s, f)) = resume.and_then(|r| runs.iter().find(|(s, _)| s == r)) {
            resumed.extend(
                RunFile::file_names(s, *f)
                    .into_iter()
                    .chain([history(s)])
                    .filter(|n| names.contains(n)),
            );
            self.fetch(&resumed).await?;
        }
        let earlier = runs.iter().find(|(s, _)| compare && stamp_before(s, stamp));
        let Some((s, f)) = earlier else {
            return Ok(None);
        };
        let wanted: Vec<String> = [
            RunFile::Keys,
            RunFile::Users,
            RunFile::Events,
            RunFile::Accounts,
        ]
        .iter()
        .map(|r| r.file_name(s, *f))
        // Its findings' history, where it left one (runs of older versions did not).
        .chain(Some(history(s)).filter(|n| names.contains(n)))
        .filter(|n| !resumed.contains(n))
        .collect();
        match self.fetch(&wanted).await {
            Ok(()) => Ok(None),
            Err(e) => {
                for n in &wanted {
                    let _ = std::fs::remove_file(self.staging.join(n));
                }
                Ok(Some(crate::report::digest::NotCompared {
                    label: s.clone(),
                    reason: e.to_string(),
                }))
            }
        }
    }

    /// The latest run under the prefix: its stamp and format (what `--resume s3://…` continues).
    pub async fn latest_run(&self) -> Result<Option<(String, crate::config::Format)>, RemoteError> {
        let names = self.names().await?;
        Ok(crate::report::files::runs_among(&names).into_iter().next())
    }

    /// A small object of the prefix as text (`None`: there is none). Ask only for a name `names` listed:
    /// S3 answers a missing key with 404 only to a caller allowed `s3:ListBucket` on the whole bucket
    /// (else 403), which a prefix-scoped policy is not.
    pub async fn get_text(&self, name: &str) -> Result<Option<String>, RemoteError> {
        let url = self.location.url(name);
        let answer = self
            .client
            .get_object()
            .bucket(&self.location.bucket)
            .key(self.location.key(name))
            .expected_bucket_owner(&self.owner)
            .send()
            .await;
        let object = match answer {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(failure("GetObject", url, &e)),
        };
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| other("GetObject", &url, "ResponseError", e))?;
        Ok(Some(
            String::from_utf8_lossy(&bytes.into_bytes()).into_owned(),
        ))
    }

    /// Write a small object of the prefix, encrypted like the reports.
    pub async fn put_text(&self, name: &str, text: &str) -> Result<(), RemoteError> {
        let (sse, kms) = self.encryption();
        self.client
            .put_object()
            .bucket(&self.location.bucket)
            .key(self.location.key(name))
            .expected_bucket_owner(&self.owner)
            .server_side_encryption(sse)
            .set_ssekms_key_id(kms)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .content_type("application/json")
            .body(ByteStream::from(text.as_bytes().to_vec()))
            .send()
            .await
            .map_err(|e| failure("PutObject", self.location.url(name), &e))?;
        Ok(())
    }

    fn encryption(&self) -> (ServerSideEncryption, Option<String>) {
        match &self.kms_key {
            Some(k) => (ServerSideEncryption::AwsKms, Some(k.clone())),
            None => (ServerSideEncryption::Aes256, None),
        }
    }

    /// Take the run's stamp under the prefix before anything is written: a small claim object created
    /// only where none exists (`If-None-Match: *`, S3's conditional write), so two runs that start in the
    /// same second never write the same keys. A stamp another run holds gives way to its next suffix
    /// (`_2`, `_3`, …), as two local runs in one directory do. The claim names the run (a random id and
    /// the host's process) and stays (it is a few bytes; the bucket's lifecycle rule expires it).
    pub async fn claim_stamp(&self, stamp: &str) -> Result<String, RemoteError> {
        let run_id = format!(
            "{:016x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
                ^ (u64::from(std::process::id()) << 32)
        );
        let (sse, kms) = self.encryption();
        for n in 1..=crate::report::files::MAX_STAMP_SUFFIX {
            let candidate = if n == 1 {
                stamp.to_string()
            } else {
                format!("{stamp}_{n}")
            };
            let name = claim_name(&candidate);
            let body =
                serde_json::json!({ "run": run_id, "stamp": candidate, "pid": std::process::id() });
            let put = self
                .client
                .put_object()
                .bucket(&self.location.bucket)
                .key(self.location.key(&name))
                .expected_bucket_owner(&self.owner)
                .if_none_match("*")
                .server_side_encryption(sse.clone())
                .set_ssekms_key_id(kms.clone())
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .content_type("application/json")
                .body(ByteStream::from(body.to_string().into_bytes()))
                .send()
                .await;
            match put {
                Ok(_) => return Ok(candidate),
                // Another run holds this stamp (412), or claims it this moment (409).
                Err(e)
                    if matches!(
                        e.raw_response().map(|r| r.status().as_u16()),
                        Some(412 | 409)
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(failure("PutObject", self.location.url(&name), &e)),
            }
        }
        Err(other(
            "PutObject",
            &self.location.url(&claim_name(stamp)),
            "StampTaken",
            format!(
                "the stamp {stamp} is held by other runs with every suffix up to _{}",
                crate::report::files::MAX_STAMP_SUFFIX
            ),
        ))
    }

    /// The run is uploaded: the staging directory goes.
    pub fn remove_staging(&self) {
        let _ = std::fs::remove_dir_all(&self.staging);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_become_local_files() {
        assert!(plain_name("accounts_20261206_050000.csv"));
        for bad in ["", ".", "..", "a/b", "..\\x", "x\ny", "x\u{7}"] {
            assert!(!plain_name(bad), "{bad:?}");
        }
    }
}
