//! Signing a request with AWS Signature Version 4 (the SDK's own `aws-sigv4`), for the two AWS calls
//! sent without a service crate: `sns:Publish` (an alert) and `securityhub:BatchImportFindings`. Each is
//! one small POST; a whole service crate each (Security Hub's is among the SDK's largest) would cost the
//! build minutes for two operations.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use super::http::Request;

/// Sign `req` for `service` in `region`: its `x-amz-date`, `x-amz-security-token` and `authorization`
/// headers are added. The URL must be absolute.
pub fn sign_request(
    req: &mut Request,
    credentials: &Credentials,
    service: &str,
    region: &str,
) -> Result<(), String> {
    let identity: Identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("cannot sign the request: {e}"))?
        .into();
    let host = super::http::host_of(&req.url);
    if !req
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("host"))
    {
        req.headers.push(("host".into(), host));
    }
    let signable = SignableRequest::new(
        req.method,
        req.url.as_str(),
        req.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(&req.body),
    )
    .map_err(|e| format!("cannot sign the request: {e}"))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| format!("cannot sign the request: {e}"))?
        .into_parts();
    let (headers, _query) = instructions.into_parts();
    for h in headers {
        req.headers
            .push((h.name().to_string(), h.value().to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_request_carries_the_signature_headers_and_no_secret_key() {
        let mut req = Request {
            method: "POST",
            url: "https://sns.eu-west-1.amazonaws.com/".into(),
            headers: vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            body: bytes::Bytes::from_static(b"Action=Publish"),
        };
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI",
            Some("TOKEN".into()),
            None,
            "t",
        );
        sign_request(&mut req, &creds, "sns", "eu-west-1").unwrap();
        let names: Vec<&str> = req.headers.iter().map(|(k, _)| k.as_str()).collect();
        for n in [
            "host",
            "x-amz-date",
            "authorization",
            "x-amz-security-token",
        ] {
            assert!(names.contains(&n), "{names:?}");
        }
        let auth = &req
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .unwrap()
            .1;
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"));
        assert!(auth.contains("/eu-west-1/sns/aws4_request"));
        assert!(!req.headers.iter().any(|(_, v)| v.contains("wJalrXUtnFEMI")));
    }
}
