//! The deployment recipes as a user deploys them: each passes a linter nobody here wrote (cfn-lint and
//! checkov for the CloudFormation, kubernetes-validate for the CronJob, GitHub's workflow schema, hadolint
//! for the Dockerfile), grants only what the audit calls, and the image CI builds is the Dockerfile's.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::support::*;

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(path)
        .to_string_lossy()
        .to_string()
}

/// Run a linter of the lint venv; its output, and a failure with it when it complains.
fn lint(tool: &str, args: &[&str]) -> String {
    let out = Command::new(lint_venv().join("bin").join(tool))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{tool} {args:?} complains:\n{text}");
    text
}

#[test]
fn recipes_pass_their_linters() {
    lint(
        "cfn-lint",
        &[
            "deploy/aws/iam-audit-ecs.yaml",
            "deploy/aws/member-role-stackset.yaml",
        ],
    );
    let checkov = lint(
        "checkov",
        &[
            "-d",
            "deploy/aws",
            "--framework",
            "cloudformation",
            "--quiet",
            "--compact",
            "--skip-download",
        ],
    );
    assert!(checkov.contains("Failed checks: 0"), "{checkov}");
    lint("kubernetes-validate", &["deploy/kubernetes/cronjob.yaml"]);
    lint(
        "check-jsonschema",
        &[
            "--builtin-schema",
            "vendor.github-workflows",
            "deploy/github/iam-audit.yml",
        ],
    );
    lint(
        "hadolint",
        &["Dockerfile", "deploy/container/Containerfile.runtime"],
    );
}

/// CI builds deploy/container/Containerfile.runtime from a binary built the Dockerfile's way: it must be
/// the Dockerfile's runtime stage, but for where the files come from.
#[test]
fn the_image_ci_runs_is_the_dockerfiles_runtime_stage() {
    let runtime = |path: &str| -> Vec<String> {
        let text = std::fs::read_to_string(repo(path)).unwrap();
        let at = text
            .find("FROM scratch AS runtime")
            .expect("a runtime stage");
        text[at..]
            .lines()
            .filter(|l| !l.starts_with("COPY "))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        runtime("deploy/container/Containerfile.runtime"),
        runtime("Dockerfile")
    );
    let dockerfile = std::fs::read_to_string(repo("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("USER 10001:10001")
            && dockerfile.contains("ENTRYPOINT [\"/iam-audit\"]")
    );
}

/// The ECS task role and the Lambda function's role hold the audit's management-side actions and the
/// bucket's, nothing more; the member
/// role the README's audit actions and the optional read-only ones, and the Security Hub import only in
/// its opt-in policy; the CronJob outlives the shutdown grace and runs as a non-root user on a read-only
/// root with a writable /tmp.
#[test]
fn recipes_grant_what_the_audit_calls() {
    let out = Command::new(lint_venv().join("bin").join("python"))
        .arg(repo("tests/tools/recipe_facts.py"))
        .args([
            repo("deploy/aws/iam-audit-ecs.yaml"),
            repo("deploy/aws/member-role-stackset.yaml"),
            repo("deploy/kubernetes/cronjob.yaml"),
            repo("deploy/aws/iam-audit-lambda.yaml"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let facts: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let set = |v: &serde_json::Value| -> BTreeSet<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    };
    let task = set(&facts["ecs"]["TaskRole"]);
    let management: BTreeSet<String> = [
        "organizations:ListAccounts",
        "organizations:ListRoots",
        "organizations:ListOrganizationalUnitsForParent",
        "organizations:ListAccountsForParent",
        "iam:ListOrganizationsFeatures",
        "sts:AssumeRole",
    ]
    .iter()
    .chain(CALLER_STORAGE.iter())
    .map(|s| s.to_string())
    .collect();
    assert_eq!(task, management, "the task role");
    assert_eq!(
        set(&facts["lambda"]["FunctionRole"]),
        management,
        "the function's role"
    );
    let member = set(&facts["member"]["AuditRole"]);
    assert!(
        member.iter().all(|a| ALLOWED.contains(&a.as_str())),
        "{member:?}"
    );
    for needed in [
        "iam:ListUsers",
        "iam:ListAccessKeys",
        "iam:GetAccessKeyLastUsed",
        "iam:ListMFADevices",
        "iam:GetLoginProfile",
        "cloudtrail:LookupEvents",
    ] {
        assert!(member.contains(needed), "the member role lacks {needed}");
    }
    assert_eq!(
        set(&facts["member"]["SecurityHubImport"]),
        BTreeSet::from(["securityhub:BatchImportFindings".to_string()])
    );
    let cron = &facts["cronjob"];
    assert_eq!(cron["concurrencyPolicy"], "Forbid");
    let grace = iam_audit::config::keys()
        .iter()
        .find(|k| k.name == "shutdown_grace_secs")
        .and_then(|k| k.default.as_ref())
        .map(|d| d.help.parse::<u64>().unwrap())
        .unwrap();
    assert!(cron["terminationGracePeriodSeconds"].as_u64().unwrap() > grace + 60);
    assert_eq!(
        (
            &cron["readOnlyRootFilesystem"],
            &cron["runAsNonRoot"],
            &cron["tmp"]
        ),
        (
            &serde_json::json!(true),
            &serde_json::json!(true),
            &serde_json::json!(true)
        )
    );
    let args: Vec<&str> = cron["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.windows(2)
            .any(|w| w[0] == "--output-dir" && w[1].starts_with("s3://")),
        "the CronJob writes to S3: {args:?}"
    );
}
