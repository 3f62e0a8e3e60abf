//! The simulated Security Hub: `BatchImportFindings` (POST /findings/import), checked as AWS checks it
//! (1 to 100 findings, the required ASFF fields, a finding only for the caller's own account under the
//! default product ARN of the signature's region), its findings kept by account and `Id` for the tests
//! to read back. Accounts can have Security Hub off (`InvalidAccessException`) or deny the action.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde_json::{json, Value};

use super::Faults;

/// Every finding imported, by account then `Id` (an import of a known `Id` replaces it).
#[derive(Default)]
pub struct Hub {
    findings: Mutex<HashMap<String, BTreeMap<String, Value>>>,
}

/// The ASFF fields BatchImportFindings requires (the service model's `AwsSecurityFinding`).
const REQUIRED: [&str; 10] = [
    "SchemaVersion",
    "Id",
    "ProductArn",
    "GeneratorId",
    "AwsAccountId",
    "CreatedAt",
    "UpdatedAt",
    "Title",
    "Description",
    "Resources",
];

/// Why a whole call was refused: HTTP status, error code, message.
pub type Refusal = (u16, &'static str, String);

impl Hub {
    /// One BatchImportFindings call of `account`, signed for `region`.
    pub fn import(
        &self,
        faults: &Faults,
        account: &str,
        region: &str,
        body: &Value,
    ) -> Result<Value, Refusal> {
        // The input first, then the permission and the subscription: AWS does not document its order,
        // and this is the order in which an empty import proves nothing about either, so nothing in the
        // tool may lean on it (`check --security-hub` says "not proven").
        let Some(findings) = body.get("Findings").and_then(Value::as_array) else {
            return Err((400, "InvalidInputException", "Findings is required".into()));
        };
        if findings.is_empty() || findings.len() > 100 {
            return Err((
                400,
                "InvalidInputException",
                format!(
                    "Findings must hold 1 to 100 findings, not {}",
                    findings.len()
                ),
            ));
        }
        if faults.deny_security_hub.iter().any(|a| a == account) {
            return Err((
                403,
                "AccessDeniedException",
                format!("User: arn:aws:sts::{account}:assumed-role/IAMAuditRole/iam-audit is not authorized to perform: securityhub:BatchImportFindings"),
            ));
        }
        if faults.security_hub_disabled.iter().any(|a| a == account) {
            return Err((
                400,
                "InvalidAccessException",
                format!("Account {account} is not subscribed to AWS Security Hub"),
            ));
        }
        let product = format!("arn:aws:securityhub:{region}:{account}:product/{account}/default");
        let mut failed = Vec::new();
        let mut store = self.findings.lock().expect("hub");
        for f in findings {
            let id = f
                .get("Id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let problem = REQUIRED
                .iter()
                .find(|k| match f.get(**k) {
                    Some(Value::String(s)) => s.is_empty(),
                    Some(Value::Array(a)) => a.is_empty(),
                    Some(_) => false,
                    None => true,
                })
                .map(|k| format!("{k} is required"))
                .or_else(|| {
                    (f["AwsAccountId"] != account).then(|| {
                        format!(
                            "AwsAccountId {} is not the caller's account {account}",
                            f["AwsAccountId"]
                        )
                    })
                })
                .or_else(|| {
                    (f["ProductArn"] != product.as_str())
                        .then(|| format!("ProductArn must be {product}"))
                })
                .or_else(|| {
                    let label = f
                        .pointer("/FindingProviderFields/Severity/Label")
                        .or_else(|| f.pointer("/Severity/Label"));
                    label
                        .is_none()
                        .then(|| "a severity label is required".to_string())
                })
                .or_else(|| {
                    f["Resources"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|r| {
                            r["Type"].as_str().is_none_or(str::is_empty)
                                || r["Id"].as_str().is_none_or(str::is_empty)
                        })
                        .then(|| "every resource needs a Type and an Id".to_string())
                });
            match problem {
                Some(why) => failed.push(json!({
                    "Id": id, "ErrorCode": "InvalidInput", "ErrorMessage": why
                })),
                None => {
                    store
                        .entry(account.to_string())
                        .or_default()
                        .insert(id, f.clone());
                }
            }
        }
        Ok(json!({
            "FailedCount": failed.len(),
            "SuccessCount": findings.len() - failed.len(),
            "FailedFindings": failed,
        }))
    }

    /// Every account's findings, to carry into another simulator (the same organization a week later).
    pub fn all(&self) -> HashMap<String, BTreeMap<String, Value>> {
        self.findings.lock().expect("hub").clone()
    }

    pub fn restore(&self, all: HashMap<String, BTreeMap<String, Value>>) {
        *self.findings.lock().expect("hub") = all;
    }

    /// The findings imported into an account, by `Id`.
    pub fn findings(&self, account: &str) -> BTreeMap<String, Value> {
        self.findings
            .lock()
            .expect("hub")
            .get(account)
            .cloned()
            .unwrap_or_default()
    }
}
