//! The deployment recipes as a user deploys them: each passes a linter nobody here wrote (cfn-lint and
//! checkov for every CloudFormation template, kubernetes-validate for the CronJob, GitHub's workflow schema,
//! hadolint for the Dockerfile); the image is built with a Rust toolchain the locked crates accept, from a
//! base pinned by digest, and declares the /tmp that Fargate mounts; the templates keep the reports' key as
//! long as the bucket and tell someone of a failed run; the workflow builds before it takes credentials and
//! pins every action by commit. (What each role may do is judged by an IAM policy evaluator:
//! tests/policies.rs.)

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

/// Every CloudFormation template the docs name.
fn templates() -> Vec<String> {
    let mut t: Vec<String> = std::fs::read_dir(repo("deploy/aws"))
        .unwrap()
        .map(|e| format!("deploy/aws/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|p| p.ends_with(".yaml"))
        .collect();
    t.sort();
    t
}

#[test]
fn recipes_pass_their_linters() {
    let templates = templates();
    assert_eq!(
        templates,
        [
            "deploy/aws/auditor-role.yaml",
            "deploy/aws/iam-audit-ecs.yaml",
            "deploy/aws/iam-audit-lambda.yaml",
            "deploy/aws/member-role-stackset.yaml"
        ]
    );
    let args: Vec<&str> = templates.iter().map(String::as_str).collect();
    lint("cfn-lint", &args);
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
    // Four templates scanned: a template checkov cannot parse is skipped silently.
    let passed: usize = checkov
        .split("Passed checks: ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(passed >= 60, "{checkov}");
    lint("kubernetes-validate", &["deploy/kubernetes/cronjob.yaml"]);
    lint(
        "check-jsonschema",
        &[
            "--builtin-schema",
            "vendor.github-workflows",
            "deploy/github/iam-audit.yml",
        ],
    );
    lint("hadolint", &["Dockerfile"]);
}

/// The facts of the recipes (tests/tools/recipe_facts.py).
fn facts() -> serde_json::Value {
    let out = Command::new(lint_venv().join("bin").join("python"))
        .arg(repo("tests/tools/recipe_facts.py"))
        .arg(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn version(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// `docker build` fails when the builder's rustc is older than a locked crate's `rust-version` (the
/// Dockerfile said 1.85 while aws-smithy-* needed 1.94.1). The builder is pinned by digest, and the image
/// declares the /tmp that the ECS task definition mounts, so Fargate copies the image's writable /tmp into
/// the task volume instead of mounting it root-owned (ECS developer guide: bind mounts).
#[test]
fn the_image_builds_with_the_toolchain_the_locked_crates_need() {
    // Only this platform's crates: a fresh machine's registry holds those alone (what the build fetched),
    // and the image is built for Linux on this architecture too.
    let rustc = Command::new("rustc").arg("-vV").output().unwrap();
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .expect("rustc -vV names the host");
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (needed, by) = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| Some((version(p["rust_version"].as_str()?), p["name"].as_str()?)))
        .max()
        .unwrap();
    let dockerfile = std::fs::read_to_string(repo("Dockerfile")).unwrap();
    let from = dockerfile
        .lines()
        .find(|l| l.starts_with("FROM rust:"))
        .expect("a FROM rust:… build stage");
    let tag = from["FROM rust:".len()..].split('-').next().unwrap();
    assert!(
        version(tag) >= needed,
        "the Dockerfile builds with Rust {tag}, but {by} needs {needed:?}"
    );
    let digest = from
        .split("@sha256:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or("");
    assert!(
        digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit()),
        "the builder is pinned by digest: {from}"
    );
    let manifest = std::fs::read_to_string(repo("Cargo.toml")).unwrap();
    let declared = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .unwrap()
        .trim_matches('"');
    assert!(
        version(declared) >= needed,
        "Cargo.toml claims rust-version {declared}, but {by} needs {needed:?}"
    );
    // What Fargate is told and what the image declares agree.
    let facts = facts();
    let task = &facts["templates"]["iam-audit-ecs.yaml"]["tasks"]["TaskDefinition"];
    assert_eq!(task["readonly_root"], true);
    assert_eq!(task["mounts"], serde_json::json!(["/tmp"]));
    let user = task["user"].as_str().unwrap();
    assert!(dockerfile.contains(&format!("\nUSER {user}\n")), "{user}");
    assert!(dockerfile.contains("\nVOLUME [\"/tmp\"]\n"));
    assert!(dockerfile.contains("chmod 1777 /out/tmp"));
}

/// Deleting or replacing a stack keeps the bucket and the key its reports are encrypted with; a run that
/// fails tells someone: the ECS task's non-zero exit (or a task that never started) through an EventBridge
/// rule, the function's errors through an alarm, a schedule that could not start either through an alarm.
#[test]
fn the_templates_keep_the_reports_readable_and_tell_of_a_failed_run() {
    let facts = facts();
    let t = &facts["templates"];
    for (name, template) in t.as_object().unwrap() {
        assert_eq!(template["buckets_kept"], true, "{name}");
        for (key, kept) in template["bucket_keys"].as_object().unwrap() {
            assert_eq!(
                kept,
                &serde_json::json!(true),
                "{name}: {key} outlives its bucket"
            );
        }
    }
    assert_eq!(
        t["iam-audit-ecs.yaml"]["bucket_keys"],
        serde_json::json!({"ReportsKey": true})
    );
    let rules = t["iam-audit-ecs.yaml"]["task_stopped_rules"]
        .as_array()
        .unwrap();
    assert_eq!(rules.len(), 1, "{rules:?}");
    let detail = &rules[0]["detail"];
    assert_eq!(detail["lastStatus"], serde_json::json!(["STOPPED"]));
    assert_eq!(
        detail["$or"][0]["containers"]["exitCode"],
        serde_json::json!([{"anything-but": [0]}])
    );
    assert_eq!(
        t["iam-audit-ecs.yaml"]["alarms"],
        serde_json::json!(["AWS/Scheduler/InvocationDroppedCount"])
    );
    assert_eq!(
        t["iam-audit-lambda.yaml"]["alarms"],
        serde_json::json!(["AWS/Lambda/Errors", "AWS/Scheduler/InvocationDroppedCount"])
    );
}

/// The workflow builds the tool from a pinned commit before any AWS credential is in the job (a build runs
/// hundreds of crates' build scripts), and every action is pinned by a full commit SHA, not a tag.
#[test]
fn the_workflow_builds_first_and_pins_every_action() {
    let facts = facts();
    let steps = facts["workflow"]["steps"].as_array().unwrap();
    for s in steps {
        let uses = s["uses"].as_str().unwrap();
        if uses.is_empty() {
            continue;
        }
        let sha = uses.split('@').nth(1).unwrap_or("");
        assert!(
            sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()),
            "{uses} is not pinned by commit"
        );
    }
    let index = |pred: &dyn Fn(&serde_json::Value) -> bool| {
        steps
            .iter()
            .position(pred)
            .unwrap_or_else(|| panic!("{steps:?}"))
    };
    let build = index(&|s| s["run"].as_str().unwrap().contains("cargo +"));
    let credentials = index(&|s| {
        s["uses"]
            .as_str()
            .unwrap()
            .starts_with("aws-actions/configure-aws-credentials@")
    });
    let audit = index(&|s| {
        s["run"]
            .as_str()
            .unwrap()
            .contains("iam-audit-bin/iam-audit")
    });
    assert!(build < credentials && credentials < audit, "{steps:?}");
    // The secret reaches only the step that needs it.
    assert_eq!(
        facts["workflow"]["env"],
        serde_json::json!(["IAM_AUDIT_COMMIT", "IAM_AUDIT_REPOSITORY"])
    );
    for (i, s) in steps.iter().enumerate() {
        let has_secret = s["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "IAM_AUDIT_NOTIFY");
        assert_eq!(has_secret, i == audit, "{s}");
    }
}

/// The CronJob outlives the shutdown grace and runs as a non-root user on a read-only root with a writable
/// /tmp, writing to S3.
#[test]
fn the_cronjob_stops_in_time_as_a_non_root_user() {
    let facts = facts();
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
