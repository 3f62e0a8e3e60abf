//! The simulator's S3, path-style (as a custom endpoint is addressed): the calls the reports' upload and
//! read-back make. ListObjectsV2 (prefix, max-keys, continuation), PutObject (`If-None-Match: *` answered
//! 412 where the key exists), GetObject, and a multipart upload's create, part, complete and abort, with
//! the objects in memory. Every request must name the management account as the bucket's expected owner
//! (403 otherwise, as S3 answers a bucket owned by someone else). Bodies sent `aws-chunked` (the SDK's
//! streaming checksums) are unwrapped. Also `/webhook`, where an alert is answered 200 and counted: the
//! bench's end-to-end run sends its alert there.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;

/// A multipart upload under way: its "bucket/key" and its parts by number.
type Upload = (String, BTreeMap<i32, Bytes>);

/// The buckets' objects and the multipart uploads under way.
#[derive(Default)]
pub struct Store {
    /// "bucket/key" → body.
    objects: Mutex<BTreeMap<String, Bytes>>,
    /// Upload id → ("bucket/key", parts by number).
    uploads: Mutex<HashMap<String, Upload>>,
    next_upload: AtomicU64,
    /// Alerts received at `/webhook`.
    pub webhooks: AtomicU64,
}

/// An answer: status, headers, body; and the action and outcome for the call log.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
    pub action: &'static str,
    pub outcome: String,
}

/// A body stored (an object or a part): 200 with its ETag.
fn stored(tag: String, action: &'static str) -> Answer {
    Answer {
        status: 200,
        headers: vec![("etag", tag)],
        body: Bytes::new(),
        action,
        outcome: "ok".into(),
    }
}

fn xml_error(status: u16, code: &str, message: &str, action: &'static str) -> Answer {
    Answer {
        status,
        headers: vec![("content-type", "application/xml".into())],
        body: Bytes::from(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message><RequestId>sim</RequestId></Error>"
        )),
        action,
        outcome: code.to_string(),
    }
}

fn xml_ok(body: String, action: &'static str) -> Answer {
    Answer {
        status: 200,
        headers: vec![("content-type", "application/xml".into())],
        body: Bytes::from(format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>{body}")),
        action,
        outcome: "ok".into(),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The payload of an `aws-chunked` body: `SIZE[;chunk-signature=…]\r\nDATA\r\n` … `0…\r\n` then
/// trailers, which are dropped.
fn unchunk(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let end = rest.windows(2).position(|w| w == b"\r\n")?;
        let line = std::str::from_utf8(&rest[..end]).ok()?;
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

/// One S3 request, as `METHOD /bucket/key?query` with its headers and body.
pub fn serve(
    store: &Store,
    owner: &str,
    method: &str,
    path_and_query: &str,
    headers: &HashMap<String, String>,
    body: Bytes,
) -> Answer {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let query: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let path = percent_decode(path.trim_start_matches('/'));
    let (bucket, key) = path.split_once('/').unwrap_or((path.as_str(), ""));
    let action: &'static str = match (method, key.is_empty()) {
        ("GET", true) => "ListObjectsV2",
        ("GET", false) => "GetObject",
        ("PUT", false) if query.contains_key("uploadId") => "UploadPart",
        ("PUT", false) => "PutObject",
        ("POST", false) if query.contains_key("uploads") => "CreateMultipartUpload",
        ("POST", false) if query.contains_key("uploadId") => "CompleteMultipartUpload",
        ("DELETE", false) if query.contains_key("uploadId") => "AbortMultipartUpload",
        _ => return xml_error(400, "NotImplemented", "not simulated", "Unknown"),
    };
    if headers
        .get("x-amz-expected-bucket-owner")
        .map(String::as_str)
        != Some(owner)
    {
        return xml_error(403, "AccessDenied", "Access Denied", action);
    }
    let body = match headers.get("content-encoding").map(String::as_str) {
        Some(e) if e.contains("aws-chunked") => match unchunk(&body) {
            Some(b) => Bytes::from(b),
            None => return xml_error(400, "IncompleteBody", "bad aws-chunked body", action),
        },
        _ => body,
    };
    let full = format!("{bucket}/{key}");
    let etag = |b: &[u8]| format!("\"{:016x}{:016x}\"", b.len(), fnv(b));
    match action {
        "ListObjectsV2" => {
            let prefix = query.get("prefix").cloned().unwrap_or_default();
            let max: usize = query
                .get("max-keys")
                .and_then(|m| m.parse().ok())
                .unwrap_or(1000)
                .min(1000);
            let after = query.get("continuation-token").cloned().unwrap_or_default();
            let objects = store.objects.lock().expect("s3 lock");
            let start = format!("{bucket}/{prefix}");
            let mut listed = Vec::new();
            let mut truncated = false;
            for (k, v) in objects.range(start.clone()..) {
                let Some(name) = k.strip_prefix(&format!("{bucket}/")) else {
                    break;
                };
                if !k.starts_with(&start) {
                    break;
                }
                if !after.is_empty() && name <= after.as_str() {
                    continue;
                }
                if listed.len() == max {
                    truncated = true;
                    break;
                }
                listed.push((name.to_string(), v.len()));
            }
            let mut xml = format!(
                "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>{}</Name><Prefix>{}</Prefix><KeyCount>{}</KeyCount><MaxKeys>{max}</MaxKeys><IsTruncated>{truncated}</IsTruncated>",
                escape(bucket),
                escape(&prefix),
                listed.len()
            );
            if truncated {
                if let Some((last, _)) = listed.last() {
                    xml.push_str(&format!(
                        "<NextContinuationToken>{}</NextContinuationToken>",
                        escape(last)
                    ));
                }
            }
            for (name, size) in &listed {
                xml.push_str(&format!(
                    "<Contents><Key>{}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>\"sim\"</ETag><Size>{size}</Size><StorageClass>STANDARD</StorageClass></Contents>",
                    escape(name)
                ));
            }
            xml.push_str("</ListBucketResult>");
            xml_ok(xml, action)
        }
        "GetObject" => match store.objects.lock().expect("s3 lock").get(&full) {
            Some(b) => Answer {
                status: 200,
                headers: vec![
                    ("content-type", "application/octet-stream".into()),
                    ("etag", etag(b)),
                ],
                body: b.clone(),
                action,
                outcome: "ok".into(),
            },
            None => xml_error(
                404,
                "NoSuchKey",
                "The specified key does not exist.",
                action,
            ),
        },
        "PutObject" => {
            let mut objects = store.objects.lock().expect("s3 lock");
            if headers.get("if-none-match").map(String::as_str) == Some("*")
                && objects.contains_key(&full)
            {
                return xml_error(
                    412,
                    "PreconditionFailed",
                    "At least one of the pre-conditions you specified did not hold",
                    action,
                );
            }
            let tag = etag(&body);
            objects.insert(full, body);
            stored(tag, action)
        }
        "CreateMultipartUpload" => {
            let id = format!(
                "sim-upload-{}",
                store.next_upload.fetch_add(1, Ordering::Relaxed)
            );
            store
                .uploads
                .lock()
                .expect("s3 lock")
                .insert(id.clone(), (full, BTreeMap::new()));
            xml_ok(
                format!(
                    "<InitiateMultipartUploadResult><Bucket>{}</Bucket><Key>{}</Key><UploadId>{id}</UploadId></InitiateMultipartUploadResult>",
                    escape(bucket),
                    escape(key)
                ),
                action,
            )
        }
        "UploadPart" => {
            let id = query.get("uploadId").cloned().unwrap_or_default();
            let number: i32 = query
                .get("partNumber")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let mut uploads = store.uploads.lock().expect("s3 lock");
            let Some((_, parts)) = uploads.get_mut(&id) else {
                return xml_error(
                    404,
                    "NoSuchUpload",
                    "The specified upload does not exist.",
                    action,
                );
            };
            let tag = etag(&body);
            parts.insert(number, body);
            stored(tag, action)
        }
        "CompleteMultipartUpload" => {
            let id = query.get("uploadId").cloned().unwrap_or_default();
            let Some((target, parts)) = store.uploads.lock().expect("s3 lock").remove(&id) else {
                return xml_error(
                    404,
                    "NoSuchUpload",
                    "The specified upload does not exist.",
                    action,
                );
            };
            let mut whole = Vec::with_capacity(parts.values().map(Bytes::len).sum());
            for p in parts.values() {
                whole.extend_from_slice(p);
            }
            let tag = etag(&whole);
            store
                .objects
                .lock()
                .expect("s3 lock")
                .insert(target, Bytes::from(whole));
            xml_ok(
                format!(
                    "<CompleteMultipartUploadResult><Bucket>{}</Bucket><Key>{}</Key><ETag>{}</ETag></CompleteMultipartUploadResult>",
                    escape(bucket),
                    escape(key),
                    escape(&tag)
                ),
                action,
            )
        }
        _ => {
            let id = query.get("uploadId").cloned().unwrap_or_default();
            match store.uploads.lock().expect("s3 lock").remove(&id) {
                Some(_) => Answer {
                    status: 204,
                    headers: Vec::new(),
                    body: Bytes::new(),
                    action,
                    outcome: "ok".into(),
                },
                None => xml_error(
                    404,
                    "NoSuchUpload",
                    "The specified upload does not exist.",
                    action,
                ),
            }
        }
    }
}

/// A cheap content hash for ETags.
fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, x| {
        (h ^ u64::from(*x)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Store {
    /// The object `bucket/key`, if stored.
    pub fn object(&self, bucket: &str, key: &str) -> Option<Bytes> {
        self.objects
            .lock()
            .expect("s3 lock")
            .get(&format!("{bucket}/{key}"))
            .cloned()
    }

    /// The keys under `bucket/prefix`.
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let start = format!("{bucket}/{prefix}");
        self.objects
            .lock()
            .expect("s3 lock")
            .range(start.clone()..)
            .take_while(|(k, _)| k.starts_with(&start))
            .map(|(k, _)| k[bucket.len() + 1..].to_string())
            .collect()
    }

    /// Multipart uploads neither completed nor aborted.
    pub fn open_uploads(&self) -> usize {
        self.uploads.lock().expect("s3 lock").len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_chunked_bodies_are_unwrapped() {
        let body =
            b"5;chunk-signature=ab\r\nhello\r\n3\r\n wo\r\n0\r\nx-amz-checksum-sha256:abc\r\n\r\n";
        assert_eq!(unchunk(body).unwrap(), b"hello wo");
        assert_eq!(unchunk(b"5\r\nhel"), None);
    }

    #[test]
    fn a_conditional_write_of_an_existing_key_is_refused_and_a_listing_pages() {
        let s = Store::default();
        let h = |extra: &[(&str, &str)]| {
            let mut m: HashMap<String, String> =
                HashMap::from([("x-amz-expected-bucket-owner".into(), "111".into())]);
            for (k, v) in extra {
                m.insert(k.to_string(), v.to_string());
            }
            m
        };
        let put = |key: &str, cond: bool| {
            let hs = if cond {
                h(&[("if-none-match", "*")])
            } else {
                h(&[])
            };
            serve(
                &s,
                "111",
                "PUT",
                &format!("/b/p/{key}"),
                &hs,
                Bytes::from("x"),
            )
            .status
        };
        assert_eq!(put("a", true), 200);
        assert_eq!(put("a", true), 412);
        assert_eq!(put("b", false), 200);
        assert_eq!(
            serve(&s, "222", "PUT", "/b/p/c", &h(&[]), Bytes::new()).status,
            403,
            "another owner"
        );
        let list = serve(
            &s,
            "111",
            "GET",
            "/b?list-type=2&prefix=p%2F&max-keys=1",
            &h(&[]),
            Bytes::new(),
        );
        let text = String::from_utf8_lossy(&list.body).to_string();
        assert!(
            text.contains("<Key>p/a</Key>") && text.contains("<IsTruncated>true</IsTruncated>")
        );
        let next = serve(
            &s,
            "111",
            "GET",
            "/b?list-type=2&prefix=p%2F&continuation-token=p%2Fa",
            &h(&[]),
            Bytes::new(),
        );
        let text = String::from_utf8_lossy(&next.body).to_string();
        assert!(
            text.contains("<Key>p/b</Key>") && !text.contains("<Key>p/a</Key>"),
            "{text}"
        );
    }
}
