//! The uploads of `Remote`: each file as one object, or above `MULTIPART_ABOVE` as a multipart upload
//! that S3 assembles only at its end, in parts that grow past 10,000 of them; an upload that does not
//! complete is aborted, also when its future is dropped (`Pending`).

use std::path::{Path, PathBuf};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};

use super::{failure, other, Remote, RemoteError};

/// The size of each part (S3: at least 5 MiB, at most 10,000 parts).
pub(super) const PART_SIZE: usize = 8 * 1024 * 1024;
/// S3's limits of a multipart upload: parts, and the size of one part.
const MAX_PARTS: u64 = 10_000;
const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// The part size for a file of `size` bytes: `preferred`, or more (whole MiB) where 10,000 parts of it
/// would not hold the file; `None` past what S3 takes.
fn part_size_for(size: u64, preferred: u64) -> Option<u64> {
    const MIB: u64 = 1024 * 1024;
    let needed = size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
    let part = preferred.max(needed);
    (part <= MAX_PART_SIZE).then_some(part)
}

/// A multipart upload under way: aborted when dropped before it completed (a failed part, or the upload's
/// future dropped by a run that stops), so no parts are left billed in the bucket. The bucket's lifecycle
/// rule covers a process that is killed outright.
struct Pending {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    upload_id: String,
    owner: String,
    open: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        let abort = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .expected_bucket_owner(&self.owner);
        let key = self.key.clone();
        // Dropped on a runtime (always, here): the abort goes on after the upload's future is gone.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = abort.send().await {
                    tracing::warn!(
                        "the multipart upload of {key} could not be aborted ({}); the bucket's lifecycle rule for incomplete uploads removes its parts",
                        crate::aws::error_chain(&e)
                    );
                }
            });
        }
    }
}

impl Remote {
    /// Upload these files of the staging directory under the prefix, each under its own name, side by
    /// side. Every upload runs to its end (a failed one does not cut the others short, which would leave
    /// multipart uploads behind); the first failure is the answer.
    pub async fn upload(&self, files: &[PathBuf]) -> Result<Vec<String>, RemoteError> {
        let done = futures::future::join_all(files.iter().map(|f| self.upload_one(f))).await;
        done.into_iter().collect()
    }

    async fn upload_one(&self, path: &Path) -> Result<String, RemoteError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let url = self.location.url(&name);
        let key = self.location.key(&name);
        let local_error = |e: std::io::Error| other("PutObject", &url, "LocalIo", e);
        let size = std::fs::metadata(path).map_err(local_error)?.len();
        let (sse, kms) = self.encryption();
        if size <= self.multipart_above {
            let body = ByteStream::from_path(path)
                .await
                .map_err(|e| local_error(std::io::Error::other(e)))?;
            self.client
                .put_object()
                .bucket(&self.location.bucket)
                .key(&key)
                .expected_bucket_owner(&self.owner)
                .server_side_encryption(sse)
                .set_ssekms_key_id(kms)
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .body(body)
                .send()
                .await
                .map_err(|e| failure("PutObject", url.clone(), &e))?;
            return Ok(url);
        }
        // S3 takes at most 10,000 parts: a larger file gets larger parts (whole MiB).
        let part_size = part_size_for(size, self.part_size as u64).ok_or_else(|| {
            other(
                "CreateMultipartUpload",
                &url,
                "EntityTooLarge",
                format!("{size} bytes are more than S3's 10,000 parts of at most 5 GiB"),
            )
        })?;
        let started = self
            .client
            .create_multipart_upload()
            .bucket(&self.location.bucket)
            .key(&key)
            .expected_bucket_owner(&self.owner)
            .server_side_encryption(sse)
            .set_ssekms_key_id(kms)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .send()
            .await
            .map_err(|e| failure("CreateMultipartUpload", url.clone(), &e))?;
        // From here the upload is aborted however it ends but completed: failed, or its future dropped
        // (a run stopped mid-upload).
        let mut pending = Pending {
            client: self.client.clone(),
            bucket: self.location.bucket.clone(),
            key: key.clone(),
            upload_id: started.upload_id().unwrap_or_default().to_string(),
            owner: self.owner.clone(),
            open: true,
        };
        let parts = self
            .upload_parts(path, size, part_size, &pending, &url)
            .await?;
        self.client
            .complete_multipart_upload()
            .bucket(&self.location.bucket)
            .key(&key)
            .upload_id(&pending.upload_id)
            .expected_bucket_owner(&self.owner)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| failure("CompleteMultipartUpload", url.clone(), &e))?;
        pending.open = false;
        Ok(url)
    }

    async fn upload_parts(
        &self,
        path: &Path,
        size: u64,
        part_size: u64,
        pending: &Pending,
        url: &str,
    ) -> Result<Vec<CompletedPart>, RemoteError> {
        use tokio::io::AsyncReadExt;
        let local_error = |e: std::io::Error| other("UploadPart", url, "LocalIo", e);
        let mut file = tokio::fs::File::open(path).await.map_err(local_error)?;
        let mut parts = Vec::new();
        let mut sent = 0u64;
        for number in 1..=MAX_PARTS as i32 {
            let mut buf = Vec::with_capacity(part_size as usize);
            let mut taken = (&mut file).take(part_size);
            taken.read_to_end(&mut buf).await.map_err(local_error)?;
            if buf.is_empty() {
                break;
            }
            sent += buf.len() as u64;
            let part = self
                .client
                .upload_part()
                .bucket(&self.location.bucket)
                .key(&pending.key)
                .upload_id(&pending.upload_id)
                .part_number(number)
                .expected_bucket_owner(&self.owner)
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .body(ByteStream::from(buf))
                .send()
                .await
                .map_err(|e| failure("UploadPart", url.to_string(), &e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(part.e_tag().map(str::to_string))
                    .set_checksum_sha256(part.checksum_sha256().map(str::to_string))
                    .build(),
            );
        }
        // The file grew while it was read, past what the parts hold: never a short object.
        if sent != size || file.read_u8().await.is_ok() {
            return Err(other(
                "UploadPart",
                url,
                "LocalIo",
                format!("the file changed while it was uploaded ({sent} of {size} bytes sent)"),
            ));
        }
        Ok(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_grow_to_fit_ten_thousand() {
        const MIB: u64 = 1024 * 1024;
        assert_eq!(part_size_for(100 * MIB, 16 * MIB), Some(16 * MIB));
        // 160 GiB in 16 MiB parts would be 10,240 parts: the parts grow to 17 MiB.
        assert_eq!(part_size_for(160 * 1024 * MIB, 16 * MIB), Some(17 * MIB));
        assert_eq!(part_size_for(10_000 * 16 * MIB, 16 * MIB), Some(16 * MIB));
        assert_eq!(part_size_for(MAX_PARTS * MAX_PART_SIZE + 1, 16 * MIB), None);
    }
}
