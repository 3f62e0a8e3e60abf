//! The settings as a user sets them: defaults, precedence, and errors that name the key.

use super::*;
use chrono::TimeZone;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 5, 15, 30, 22).unwrap()
}

fn base() -> Config {
    Config {
        role: Some("IAMAuditRole".into()),
        ..Config::default()
    }
}

#[test]
fn ou_filters_need_the_ou_tree() {
    let c = Config {
        include_ous: Some(vec!["Root/Prod".into()]),
        ou_paths: Some(false),
        ..base()
    };
    let e = Settings::resolve(c, now()).unwrap_err().to_string();
    assert_eq!(e, "ou_paths: the OU filters (include_ous, exclude_ous) need the OU tree: drop --no-ou-paths (ou_paths = false) or filter by account");
    let c = Config {
        exclude_ous: Some(vec![" ".into()]),
        ..base()
    };
    let e = Settings::resolve(c, now()).unwrap_err().to_string();
    assert_eq!(e, "exclude_ous: entries must not be empty");
    let s = Settings::resolve(base(), now()).unwrap();
    assert!(s.keys.ou_paths && s.keys.max_pages == 100_000);
    let c = Config {
        max_pages: Some(0),
        ..base()
    };
    let e = Settings::resolve(c, now()).unwrap_err().to_string();
    assert_eq!(e, "max_pages: must be greater than 0, got 0");
}

#[test]
fn strategy_and_thresholds() {
    let s = Settings::resolve(base(), now()).unwrap();
    assert_eq!(s.strategy, Strategy::Auto);
    assert_eq!(
        (s.thresholds.unused_days, s.thresholds.key_max_age_days),
        (45, 90)
    );
    let c = Config {
        strategy: Some("credential_report".into()),
        unused_days: Some(30),
        ..base()
    };
    let s = Settings::resolve(c, now()).unwrap();
    assert_eq!(s.strategy, Strategy::CredentialReport);
    assert_eq!(s.thresholds.unused_days, 30);
    let bad = Config {
        strategy: Some("report".into()),
        ..base()
    };
    assert_eq!(
        Settings::resolve(bad, now()).unwrap_err().to_string(),
        "strategy: 'report' is not a strategy; use \"auto\", \"api\" or \"credential_report\""
    );
    let zero = Config {
        key_max_age_days: Some(0),
        ..base()
    };
    assert_eq!(
        Settings::resolve(zero, now()).unwrap_err().to_string(),
        "key_max_age_days: must be greater than 0, got 0"
    );
}

#[test]
fn default_window_is_lookupevents_history() {
    let s = Settings::resolve(base(), now()).unwrap();
    assert_eq!(s.end, now());
    assert_eq!(s.start, now() - ChronoDuration::days(90));
    assert_eq!(s.stamp(), "20260305_153022");
}

#[test]
fn start_and_end_dates_are_utc_days_with_inclusive_end() {
    let (start, end) = resolve_window(Some("2026-02-18"), Some("2026-02-20"), None, now()).unwrap();
    assert_eq!(start.to_rfc3339(), "2026-02-18T00:00:00+00:00");
    assert_eq!(end.to_rfc3339(), "2026-02-21T00:00:00+00:00");
}

#[test]
fn end_date_today_is_capped_at_now() {
    let (_, end) = resolve_window(Some("2026-02-18"), Some("2026-03-05"), None, now()).unwrap();
    assert_eq!(end, now());
}

#[test]
fn days_conflicts_with_start_date() {
    let err = resolve_window(Some("2026-02-18"), None, Some(7), now()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "days: conflicts with start_date: give either a start date or a number of days"
    );
}

#[test]
fn bad_dates_name_the_key_and_the_format() {
    let err = resolve_window(Some("18/02/2026"), None, None, now()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "start_date: '18/02/2026' is not a date; use YYYY-MM-DD (UTC), e.g. 2026-03-05"
    );
    let err = resolve_window(Some("2026-02-30"), None, None, now()).unwrap_err();
    assert!(err
        .to_string()
        .starts_with("start_date: '2026-02-30' is not a date"));
}

#[test]
fn empty_or_future_windows_are_errors() {
    let err = resolve_window(Some("2026-03-10"), None, None, now()).unwrap_err();
    assert_eq!(err.to_string(), "start_date: 2026-03-10 is in the future");
    let err = resolve_window(Some("2026-03-01"), Some("2026-02-01"), None, now()).unwrap_err();
    assert!(err.to_string().starts_with("end_date: the window is empty"));
    assert!(resolve_window(None, None, Some(0), now()).is_err());
}

#[test]
fn days_counts_back_from_end() {
    let (start, end) = resolve_window(None, None, Some(7), now()).unwrap();
    assert_eq!(end - start, ChronoDuration::days(7));
}

#[test]
fn cli_wins_over_file_which_wins_over_default() {
    let cli = Config {
        concurrency: Some(3),
        ..Config::default()
    };
    let file = Config {
        concurrency: Some(9),
        iam_rate: Some(4),
        role: Some("FromFile".into()),
        ..Config::default()
    };
    let s = Settings::resolve(cli.or(file), now()).unwrap();
    assert_eq!(s.keys.concurrency, 3);
    assert_eq!(s.keys.iam_rate, 4);
    assert_eq!(s.role(), "FromFile");
    assert_eq!(s.keys.cloudtrail_rate, 2);
    assert_eq!(s.keys.user_concurrency, 4);
}

#[test]
fn unknown_keys_are_named() {
    let err = Config::from_toml("role = \"R\"\nconcurency = 3\n").unwrap_err();
    assert!(err.contains("unknown field `concurency`"), "{err}");
}

#[test]
fn bad_values_are_named() {
    let err = Config::from_toml("concurrency = \"many\"").unwrap_err();
    assert!(err.contains("concurrency"), "{err}");
    let c = Config {
        concurrency: Some(0),
        ..base()
    };
    assert_eq!(
        Settings::resolve(c, now()).unwrap_err().to_string(),
        "concurrency: must be greater than 0, got 0"
    );
    let c = Config {
        legacy_values: Some("fr".into()),
        ..base()
    };
    assert!(Settings::resolve(c, now())
        .unwrap_err()
        .to_string()
        .starts_with("legacy_values: 'fr' is not supported"));
}

#[test]
fn debug_output_redacts_the_secret_key() {
    let mut s = Settings::resolve(base(), now()).unwrap();
    s.endpoint_override = Some(EndpointOverride {
        url: "http://127.0.0.1:1".into(),
        access_key_id: "AKIAEXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG".into(),
    });
    let text = format!("{s:?}");
    assert!(!text.contains("wJalrXUtnFEMI"), "{text}");
    assert!(
        text.contains("secret_access_key: \"** redacted **\""),
        "{text}"
    );
}

#[test]
fn role_is_required() {
    let err = Settings::resolve(Config::default(), now()).unwrap_err();
    assert!(err.to_string().starts_with("role: is required"));
}

#[test]
fn role_arn_uses_partition_and_accepts_a_full_arn() {
    let s = Settings::resolve(base(), now()).unwrap();
    assert_eq!(
        s.role_arns("222222222222", "aws")[0],
        "arn:aws:iam::222222222222:role/IAMAuditRole"
    );
    let c = Config {
        role: Some("arn:aws:iam::111111111111:role/path/Audit".into()),
        ..Config::default()
    };
    let s = Settings::resolve(c, now()).unwrap();
    assert_eq!(
        s.role_arns("222222222222", "aws")[0],
        "arn:aws:iam::222222222222:role/path/Audit"
    );
    // A full ARN keeps its partition.
    let c = Config {
        role: Some("arn:aws-us-gov:iam::111111111111:role/Audit".into()),
        ..Config::default()
    };
    let s = Settings::resolve(c, now()).unwrap();
    assert_eq!(
        s.role_arns("222222222222", "aws")[0],
        "arn:aws-us-gov:iam::222222222222:role/Audit"
    );
    // A name takes the account's partition.
    assert_eq!(
        Settings::resolve(base(), now())
            .unwrap()
            .role_arns("222222222222", "aws-cn")[0],
        "arn:aws-cn:iam::222222222222:role/IAMAuditRole"
    );
}

#[test]
fn cloudtrail_defaults_to_the_partitions_iam_home_region() {
    let region = |r: &str| {
        Settings::resolve(
            Config {
                region: Some(r.into()),
                ..base()
            },
            now(),
        )
        .unwrap()
        .regions
    };
    assert_eq!(region("us-east-1"), ["us-east-1"]);
    assert_eq!(region("cn-northwest-1"), ["cn-north-1"]);
    assert_eq!(region("us-gov-east-1"), ["us-gov-west-1"]);
}

#[test]
fn cis_versions_are_read_in_any_spelling_and_kept_in_order() {
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        super::names::cis_versions(&names(&["v7", "3.0.0", "5", "7.0"])).unwrap(),
        ["3.0", "5.0", "7.0"]
    );
    assert!(super::names::cis_versions(&names(&["4.0"]))
        .unwrap_err()
        .to_string()
        .contains("'4.0' is not a CIS AWS Foundations Benchmark version this build maps"));
    assert!(super::names::cis_versions(&names(&[])).is_err());
    assert!(super::names::check_root_audit("rolle")
        .unwrap_err()
        .to_string()
        .contains("'rolle' is not a way to read the root users"));
}
