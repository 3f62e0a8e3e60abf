//! A finding of the OCSF file as Security Hub's ASFF (`SchemaVersion` 2018-10-08): the same `Id` (the
//! OCSF `uid`, stable across runs), the CIS control as `GeneratorId`, severity and types through
//! `FindingProviderFields`, the resource with its `Details`, `Compliance` and `Remediation`. A closed
//! OCSF finding (resolved since the earlier run) becomes `RecordState` ARCHIVED, `Compliance.Status`
//! PASSED. Everything comes from the OCSF line, which the tests validate on their own.

use serde_json::{json, Map, Value};

/// Security Hub's limits on the fields filled here (AWS Security Finding Format).
const TITLE_MAX: usize = 256;
const DESCRIPTION_MAX: usize = 1024;
const RECOMMENDATION_MAX: usize = 512;
const OTHER_VALUE_MAX: usize = 1024;

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Milliseconds since the epoch as ASFF's timestamps (RFC 3339, UTC, milliseconds).
fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The account a finding belongs to.
pub fn account_of(ocsf: &Value) -> &str {
    s(ocsf, "/cloud/account/uid")
}

/// `v5.0.0 1.13` → (`5.0.0`, `1.13`).
fn requirement(r: &str) -> Option<(&str, &str)> {
    let (version, number) = r.split_once(' ')?;
    Some((version.strip_prefix('v')?, number))
}

/// The ASFF document of one OCSF finding, imported with the default product ARN of its own account in
/// `region`.
pub fn from_ocsf(ocsf: &Value, region: &str) -> Result<Value, String> {
    let account = account_of(ocsf);
    let uid = s(ocsf, "/finding_info/uid");
    if account.len() != 12 || uid.is_empty() {
        return Err(format!(
            "a findings line without an account or a uid ({account:?}, {uid:?})"
        ));
    }
    let partition = ocsf
        .pointer("/resources/0/cloud_partition")
        .and_then(Value::as_str)
        .unwrap_or("aws");
    // OCSF Finding activities: 1 Create, 2 Update, 3 Close.
    let closed = ocsf["activity_id"] == 3;
    let code = uid.split('/').nth(2).unwrap_or("");
    let code = crate::record::Flag::from_code(code).map_or(code, |f| f.code());
    let requirements: Vec<&str> = ocsf
        .pointer("/compliance/requirements")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let cis: Vec<(&str, &str)> = requirements.iter().filter_map(|r| requirement(r)).collect();
    // The control in Security Hub's own CIS standard (v5.0.0), named as it names its generators; the
    // newest version carried when v5.0.0 is not.
    let generator = match cis.iter().find(|(v, _)| *v == "5.0.0").or(cis.last()) {
        Some((version, number)) => format!("cis-aws-foundations-benchmark/v/{version}/{number}"),
        None => format!("iam-audit/{code}"),
    };
    let related: Vec<String> = if cis.is_empty() {
        requirements.iter().map(|r| r.to_string()).collect()
    } else {
        cis.iter()
            .map(|(v, n)| format!("CIS AWS Foundations Benchmark v{v}/{n}"))
            .collect()
    };
    let time = ocsf["time"].as_i64().unwrap_or(0);
    let first_seen = ocsf
        .pointer("/finding_info/first_seen_time")
        .and_then(Value::as_i64)
        .unwrap_or(time);
    let severity = s(ocsf, "/severity");
    let label = severity.to_ascii_uppercase();
    let types: Vec<Value> = ocsf
        .pointer("/finding_info/types")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let resource = &ocsf["resources"][0];
    let data = resource.get("data").and_then(Value::as_object);
    let fact = |k: &str| {
        data.and_then(|d| d.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let other: Map<String, Value> = data
        .map(|d| {
            d.iter()
                .filter_map(|(k, v)| {
                    v.as_str()
                        .map(|v| (k.clone(), json!(clip(v, OTHER_VALUE_MAX))))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut details = Map::new();
    let (kind, id) = match s(resource, "/type") {
        "AwsIamAccessKey" => {
            let mut key = json!({
                "AccessKeyId": fact("access_key_id"),
                "Status": fact("status"),
                "PrincipalName": fact("user_name"),
                "PrincipalType": "IAMUser",
                "AccountId": account,
            });
            if !fact("created").is_empty() {
                key["CreatedAt"] = json!(fact("created"));
            }
            details.insert("AwsIamAccessKey".into(), key);
            ("AwsIamAccessKey", s(resource, "/uid").to_string())
        }
        "AwsIamUser" => {
            details.insert(
                "AwsIamUser".into(),
                json!({ "UserName": s(resource, "/name") }),
            );
            ("AwsIamUser", s(resource, "/uid").to_string())
        }
        _ => ("AwsAccount", format!("AWS::::Account:{account}")),
    };
    if !other.is_empty() {
        details.insert("Other".into(), Value::Object(other));
    }
    let mut remediation = json!({
        "Recommendation": { "Text": clip(s(ocsf, "/remediation/desc"), RECOMMENDATION_MAX) }
    });
    if let Some(url) = ocsf
        .pointer("/remediation/references/0")
        .and_then(Value::as_str)
    {
        remediation["Recommendation"]["Url"] = json!(url);
    }
    let mut compliance = json!({ "Status": if closed { "PASSED" } else { "FAILED" } });
    if !related.is_empty() {
        compliance["RelatedRequirements"] = json!(related);
    }
    Ok(json!({
        "SchemaVersion": "2018-10-08",
        "Id": uid,
        "ProductArn": format!("arn:{partition}:securityhub:{region}:{account}:product/{account}/default"),
        "ProductName": "iam-audit",
        "CompanyName": "iam-audit",
        "GeneratorId": generator,
        "AwsAccountId": account,
        "Region": region,
        "Types": types,
        "CreatedAt": iso(first_seen),
        "UpdatedAt": iso(time),
        "FirstObservedAt": iso(first_seen),
        "LastObservedAt": iso(time),
        "Severity": { "Label": label, "Original": severity },
        "FindingProviderFields": {
            "Severity": { "Label": label, "Original": severity },
            "Types": types,
        },
        "Title": clip(s(ocsf, "/finding_info/title"), TITLE_MAX),
        "Description": clip(s(ocsf, "/finding_info/desc"), DESCRIPTION_MAX),
        "Remediation": remediation,
        "ProductFields": {
            "iam-audit/flag": code,
            "iam-audit/run": s(ocsf, "/metadata/uid").rsplit('@').next().unwrap_or(""),
        },
        "Resources": [{
            "Type": kind,
            "Id": id,
            "Partition": partition,
            "Region": region,
            "Details": details,
        }],
        "Compliance": compliance,
        "RecordState": if closed { "ARCHIVED" } else { "ACTIVE" },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_finding(activity: u8) -> Value {
        json!({
            "activity_id": activity,
            "time": 1796105944692i64,
            "severity": "Medium",
            "cloud": { "account": { "uid": "100000000003" } },
            "compliance": { "requirements": ["v3.0.0 1.14", "v5.0.0 1.13"] },
            "finding_info": {
                "uid": "iam-audit/100000000003/key_older_than_90d/AKIA0000000300000001",
                "title": "An active access key is older than the rotation threshold",
                "desc": "d",
                "first_seen_time": 1792563544000i64,
                "types": ["Software and Configuration Checks/Industry and Regulatory Standards/CIS AWS Foundations Benchmark"]
            },
            "metadata": { "uid": "iam-audit/100000000003/key_older_than_90d/AKIA0000000300000001@20261201_061904" },
            "remediation": { "desc": "Rotate the access key", "references": ["https://docs.aws.amazon.com/x"] },
            "resources": [{
                "cloud_partition": "aws",
                "type": "AwsIamAccessKey",
                "uid": "AKIA0000000300000001",
                "name": "AKIA0000000300000001",
                "data": { "access_key_id": "AKIA0000000300000001", "status": "Active",
                          "created": "2026-07-23T06:19:04Z", "user_name": "user-000", "age_days": "131" }
            }]
        })
    }

    #[test]
    fn a_key_finding_becomes_an_asff_access_key_finding() {
        let a = from_ocsf(&key_finding(1), "eu-west-1").unwrap();
        assert_eq!(
            a["Id"],
            "iam-audit/100000000003/key_older_than_90d/AKIA0000000300000001"
        );
        assert_eq!(
            a["ProductArn"],
            "arn:aws:securityhub:eu-west-1:100000000003:product/100000000003/default"
        );
        assert_eq!(
            a["GeneratorId"],
            "cis-aws-foundations-benchmark/v/5.0.0/1.13"
        );
        // When the finding first held: the key turned 90 days old (OCSF first_seen_time).
        assert_eq!(a["CreatedAt"], "2026-10-21T06:19:04.000Z");
        assert_eq!(a["UpdatedAt"], "2026-12-01T06:19:04.692Z");
        assert_eq!(a["FindingProviderFields"]["Severity"]["Label"], "MEDIUM");
        assert_eq!(
            a["Compliance"],
            json!({ "Status": "FAILED", "RelatedRequirements": [
                "CIS AWS Foundations Benchmark v3.0.0/1.14", "CIS AWS Foundations Benchmark v5.0.0/1.13"] })
        );
        let r = &a["Resources"][0];
        assert_eq!(r["Type"], "AwsIamAccessKey");
        assert_eq!(r["Details"]["AwsIamAccessKey"]["PrincipalName"], "user-000");
        assert_eq!(r["Details"]["Other"]["age_days"], "131");
        assert_eq!(a["RecordState"], "ACTIVE");
        assert_eq!(a["ProductFields"]["iam-audit/run"], "20261201_061904");
    }

    #[test]
    fn a_closed_finding_is_archived_and_passed() {
        let a = from_ocsf(&key_finding(3), "eu-west-1").unwrap();
        assert_eq!(
            (
                a["RecordState"].as_str(),
                a["Compliance"]["Status"].as_str()
            ),
            (Some("ARCHIVED"), Some("PASSED"))
        );
        let mut bad = key_finding(1);
        bad["cloud"]["account"]["uid"] = json!("");
        assert!(from_ocsf(&bad, "eu-west-1").is_err());
        assert_eq!(clip("abcdef", 4), "abc…");
    }
}
