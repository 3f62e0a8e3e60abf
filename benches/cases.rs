//! The benchmark's scenarios (the shapes of docs/performance.md) and the quota floor each is measured
//! against.

use iam_audit::sim::SimOrg;

pub struct Case {
    pub name: &'static str,
    pub accounts: usize,
    pub users: usize,
    pub events: usize,
    pub latency_ms: u64,
    /// Uniform extra latency per answer, 0..=jitter_ms.
    pub jitter_ms: u64,
    /// How long a credential report takes to generate, milliseconds.
    pub report_ms: u64,
    /// The simulator serves at most this many requests at once (0: no limit), like a busy endpoint.
    pub serve_at_once: usize,
    /// Server quotas per account: IAM req/s, LookupEvents req/s (0 = none).
    pub quota: (f64, f64),
    pub concurrency: usize,
    /// `--strategy`: `api` (per-user calls) or `credential_report`.
    pub strategy: &'static str,
    /// Client flags beyond the defaults.
    pub flags: &'static [&'static str],
    /// The audit role has only the README's six actions (and the management identity two): every
    /// optional action is refused in every account.
    pub minimal: bool,
    /// The whole way out: the reports to the simulator's S3, `--security-hub`, and one alert to its
    /// webhook.
    pub out: bool,
}

/// The quota floor of design §6, for the strategy. Per account, IAM calls at `iam_rate`:
/// - `api`: 7 + 4U + K (GetAccountSummary, ListVirtualMFADevices, ListServiceSpecificCredentials, three
///   ListEntitiesForPolicy and ListUsers, then per user ListAccessKeys, ListMFADevices, GetLoginProfile and ListSigningCertificates,
///   and GetAccessKeyLastUsed per key);
/// - `minimal` (the six-action policy, whose refusals the run learns): 1 + 3U + K, the optional actions
///   gone;
/// - `credential_report` (and `auto`): the report's generation (`report_delay`), then GetCredentialReport,
///   ListAccessKeys per user with keys, ListSigningCertificates per user with a certificate and
///   ListMFADevices per user with both a virtual and another MFA device (the virtual MFA devices, the
///   summary and the service-specific credentials are read meanwhile).
///
/// Beside them, ceil(events of a name / 50) pages per event name at the LookupEvents rate. With enough
/// concurrency the org takes as long as its slowest account; with fewer slots than accounts, at least the
/// sum of the accounts' floors shared among the slots.
pub fn floor(
    org: &SimOrg,
    strategy: &str,
    report_delay: f64,
    iam_rate: f64,
    ct_rate: f64,
    concurrency: usize,
) -> Option<f64> {
    if iam_rate <= 0.0 || ct_rate <= 0.0 {
        return None;
    }
    let names = [
        "DeleteUser",
        "DeleteAccessKey",
        "DeleteLoginProfile",
        "CreateAccessKey",
        "CreateUser",
    ];
    let floors: Vec<f64> = org
        .accounts
        .iter()
        .filter(|a| a.status == "ACTIVE")
        .map(|a| {
            let u = a.users.len() as f64;
            let k: usize = a.users.iter().map(|u| u.keys.len()).sum();
            let keyed = a.users.iter().filter(|u| !u.keys.is_empty()).count() as f64;
            let mixed = a
                .users
                .iter()
                .filter(|u| {
                    u.mfa.iter().any(|s| s.contains(":mfa/"))
                        && u.mfa.iter().any(|s| !s.contains(":mfa/"))
                })
                .count() as f64;
            let certified = a
                .users
                .iter()
                .filter(|u| {
                    u.credentials
                        .iter()
                        .any(|c| c.kind == iam_audit::sim::SimCredentialKind::SigningCertificate)
                })
                .count() as f64;
            let iam = if strategy == "api" {
                (7.0 + 4.0 * u + k as f64) / iam_rate
            } else if strategy == "minimal" {
                (1.0 + 3.0 * u + k as f64) / iam_rate
            } else {
                report_delay + (1.0 + keyed + mixed + certified) / iam_rate
            };
            let pages: usize = names
                .iter()
                .map(|n| {
                    a.events
                        .iter()
                        .filter(|e| e.name == *n)
                        .count()
                        .div_ceil(50)
                        .max(1)
                })
                .sum();
            iam.max(pages as f64 / ct_rate)
        })
        .collect();
    let slowest = floors
        .iter()
        .cloned()
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))?;
    let shared = floors.iter().sum::<f64>() / concurrency.max(1) as f64;
    Some(slowest.max(shared))
}

/// No quotas on either side: what one core's worth of auditor costs, and how memory scales.
pub fn scale(name: &'static str, accounts: usize) -> Case {
    Case {
        name,
        accounts,
        users: 20,
        events: 10,
        latency_ms: 0,
        jitter_ms: 0,
        report_ms: 1000,
        serve_at_once: 0,
        quota: (0.0, 0.0),
        concurrency: 64,
        strategy: "api",
        flags: &[
            "--iam-rate",
            "100000",
            "--iam-burst",
            "1000",
            "--cloudtrail-rate",
            "100000",
            "--cloudtrail-burst",
            "1000",
        ],
        minimal: false,
        out: false,
    }
}

/// The scenarios `IAM_AUDIT_BENCH` selects (all thirteen default rows when unset), and whether
/// `compare-10k` runs after them.
pub fn selected() -> (Vec<Case>, bool) {
    let quota_bound = |name, concurrency, strategy| Case {
        name,
        accounts: 40,
        users: 12,
        events: 60,
        latency_ms: 15,
        jitter_ms: 0,
        report_ms: 1000,
        serve_at_once: 0,
        quota: (10.0, 2.0),
        concurrency,
        strategy,
        flags: &[],
        minimal: false,
        out: false,
    };
    // One account of 500 users at AWS's quotas: per-user calls against the credential report.
    let big = |name, strategy| Case {
        name,
        accounts: 1,
        users: 500,
        events: 60,
        latency_ms: 15,
        jitter_ms: 0,
        report_ms: 1000,
        serve_at_once: 0,
        quota: (10.0, 2.0),
        concurrency: 1,
        strategy,
        flags: &[],
        minimal: false,
        out: false,
    };
    // Most real organizations: many accounts of a few users each, audited with the default settings
    // against AWS's quotas (no latency: what the auditor's own cost per account is).
    let small = |name, accounts, concurrency| Case {
        name,
        accounts,
        users: 5,
        events: 10,
        latency_ms: 0,
        jitter_ms: 0,
        report_ms: 1000,
        serve_at_once: 0,
        quota: (10.0, 2.0),
        concurrency,
        strategy: "api",
        flags: &[],
        minimal: false,
        out: false,
    };
    let moonshot = |name, latency_ms, jitter_ms| Case {
        name,
        accounts: 10_000,
        users: 5,
        events: 10,
        latency_ms,
        jitter_ms,
        report_ms: 2000,
        serve_at_once: 0,
        quota: (10.0, 2.0),
        concurrency: 500,
        strategy: "auto",
        flags: &[],
        minimal: false,
        out: false,
    };
    let mut cases = vec![
        quota_bound("quota-bound", 64, "api"),
        // Far from us-east-1: IAM answers in 150 ms.
        Case {
            name: "far",
            accounts: 100,
            users: 12,
            events: 60,
            latency_ms: 150,
            jitter_ms: 0,
            report_ms: 1000,
            serve_at_once: 0,
            quota: (10.0, 2.0),
            concurrency: 100,
            strategy: "api",
            flags: &[],
            minimal: false,
            out: false,
        },
        small("small-300-c500", 300, 500),
        small("small-2k-c64", 2_000, 64),
        small("small-2k-c500", 2_000, 500),
        scale("scale-1k", 1_000),
        small("small-10k-c500", 10_000, 500),
        small("small-10k-c64", 10_000, 64),
        scale("scale-10k", 10_000),
        quota_bound("sequential", 1, "api"),
        // The moonshot (design §6): 10,000 accounts of 5 users far from us-east-1 (jittered latency), at
        // AWS's quotas, reports taking 2 s to generate, with the default strategy; and the same at 250 ms.
        moonshot("moonshot", 100, 20),
        moonshot("moonshot-250", 250, 50),
        // A slow server: the simulator serves 50 requests at once and queues the rest, as a busy endpoint
        // does; memory must not follow the queue.
        Case {
            name: "slow-server",
            accounts: 2_000,
            latency_ms: 50,
            jitter_ms: 10,
            serve_at_once: 50,
            ..moonshot("slow-server", 50, 10)
        },
        // Only by name, for profiling and for showing the growth curve.
        // The moonshot's shape on 2,000 accounts (by name: for profiling).
        Case {
            accounts: 2_000,
            ..moonshot("moonshot-2k", 100, 20)
        },
        scale("scale-100", 100),
        scale("scale-300", 300),
        scale("scale-3k", 3_000),
        small("small-600-c64", 600, 64),
        small("small-2k-c300", 2_000, 300),
        small("small-500-c500", 500, 500),
        // What --security-hub adds to small-2k-c500: the import into every account after the audit.
        Case {
            flags: &["--security-hub"],
            ..small("hub-2k-c500", 2_000, 500)
        },
        // The credential report (`IAM_AUDIT_BENCH=report`): the same shapes both ways.
        quota_bound("quota-bound-report", 64, "credential_report"),
        // The README's six-action policy on the quota-bound shape, with the default strategy: every
        // optional action refused (issue 25's A/B against e5b208c).
        Case {
            minimal: true,
            ..quota_bound("quota-bound-minimal", 64, "auto")
        },
        // The moonshot the whole way out (issue 25): the reports uploaded to S3, every account's findings
        // imported into its Security Hub, one alert; end to end.
        Case {
            out: true,
            ..moonshot("moonshot-out", 100, 20)
        },
        big("user-500-api", "api"),
        big("user-500-report", "credential_report"),
    ];
    let selection = std::env::var("IAM_AUDIT_BENCH").ok();
    let compare = match selection.as_deref() {
        None => true,
        Some(names) => names.split(',').any(|n| n == "compare-10k"),
    };
    match selection.as_deref() {
        None => cases.truncate(13),
        // The shapes of the targets, without the long 10,000-account and sequential runs.
        Some("quick") => cases.truncate(6),
        Some("report") => cases.retain(|c| {
            [
                "quota-bound",
                "quota-bound-report",
                "user-500-api",
                "user-500-report",
            ]
            .contains(&c.name)
        }),
        // IAM_AUDIT_BENCH=scale-10k,far: those scenarios alone.
        Some(names) => cases.retain(|c| names.split(',').any(|n| n == c.name)),
    }
    (cases, compare)
}
