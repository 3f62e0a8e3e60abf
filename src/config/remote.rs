//! `--output-dir s3://BUCKET/PREFIX/`: where in S3 a run's reports go, checked as S3 names buckets.

/// A bucket and a key prefix (empty, or ending with `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    pub prefix: String,
}

impl S3Location {
    /// `s3://BUCKET/PREFIX/` as given (`None`: not an S3 URL). A bad bucket name is an error naming
    /// the rule it breaks.
    pub fn parse(s: &str) -> Option<Result<S3Location, String>> {
        let rest = s.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let ok_chars = bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        let ends_ok = bucket
            .bytes()
            .next()
            .zip(bucket.bytes().last())
            .is_some_and(|(a, z)| a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric());
        if !(3..=63).contains(&bucket.len()) || !ok_chars || !ends_ok || bucket.contains("..") {
            return Some(Err(format!(
                "'{bucket}' is not an S3 bucket name (3 to 63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit); write s3://BUCKET/PREFIX/"
            )));
        }
        let prefix = prefix.trim_start_matches('/');
        let prefix = if prefix.is_empty() || prefix.ends_with('/') {
            prefix.to_string()
        } else {
            format!("{prefix}/")
        };
        Some(Ok(S3Location {
            bucket: bucket.to_string(),
            prefix,
        }))
    }

    /// The key of a file of the run.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// `s3://BUCKET/PREFIX/NAME`.
    pub fn url(&self, name: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.key(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_are_buckets_and_prefixes() {
        assert_eq!(S3Location::parse("./reports"), None);
        let l = S3Location::parse("s3://audit-reports/org-a/weekly")
            .unwrap()
            .unwrap();
        assert_eq!(
            (l.bucket.as_str(), l.prefix.as_str()),
            ("audit-reports", "org-a/weekly/")
        );
        assert_eq!(l.url("x.csv"), "s3://audit-reports/org-a/weekly/x.csv");
        let root = S3Location::parse("s3://audit-reports").unwrap().unwrap();
        assert_eq!(root.key("x.csv"), "x.csv");
        assert!(S3Location::parse("s3://Audit_Reports/x/")
            .unwrap()
            .unwrap_err()
            .contains("is not an S3 bucket name"));
    }
}
