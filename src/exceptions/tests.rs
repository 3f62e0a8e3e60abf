use super::*;
use crate::record::snapshot::{AccountSnapshot, KeySnapshot, UserSnapshot};
use crate::record::{Flag, Flags};

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 6).unwrap()
}

fn read(text: &str) -> Result<Exceptions, ExceptionsError> {
    parse("ex.yaml", text, &ReadOptions::new(today()))
}

fn err(text: &str) -> String {
    read(text).unwrap_err().to_string()
}

const SMALLEST: &str = "version: 1
rules:
  - id: legacy-ci
    owner: platform@example.com
    reason: CI user until the OIDC migration
    expires: 2027-06-30
    match: { accounts: [\"111122223333\"], users: [\"svc-ci\"], flags: [key_older_than_90d] }
";

fn account() -> AccountSnapshot {
    let flags = |f: &[Flag]| {
        let mut s = Flags::default();
        for x in f {
            s.insert(*x);
        }
        s
    };
    AccountSnapshot {
        id: "111122223333".into(),
        name: "ci-prod".into(),
        audit_status: "audited".into(),
        ou_path: "Root/Workloads/Prod".into(),
        users: vec![
            UserSnapshot {
                name: "svc-ci".into(),
                arn: "arn:aws:iam::111122223333:user/automation/svc-ci".into(),
                flags: flags(&[Flag::PasswordUnused]),
                ..UserSnapshot::default()
            },
            UserSnapshot {
                name: "alice".into(),
                arn: "arn:aws:iam::111122223333:user/alice".into(),
                ..UserSnapshot::default()
            },
        ],
        keys: vec![
            KeySnapshot {
                id: "AKIAAAAAAAAAAAAAAAA1".into(),
                user: "svc-ci".into(),
                flags: flags(&[Flag::KeyOlderThan90d, Flag::KeyUnused]),
                ..KeySnapshot::default()
            },
            KeySnapshot {
                id: "AKIAAAAAAAAAAAAAAAA2".into(),
                user: "alice".into(),
                flags: flags(&[Flag::KeyOlderThan90d]),
                ..KeySnapshot::default()
            },
        ],
        ..AccountSnapshot::default()
    }
}

/// The uid of each finding of the account a rule accepts, with the rule's id.
fn accepted(ex: &Exceptions, a: &AccountSnapshot, on: NaiveDate) -> Vec<(String, String)> {
    a.findings()
        .iter()
        .filter_map(|f| ex.rule_for(f, on).map(|r| (f.uid(), r.id.clone())))
        .collect()
}

#[test]
fn the_smallest_rule_accepts_one_keys_rotation_finding_until_it_expires() {
    let ex = read(SMALLEST).unwrap();
    let r = &ex.rules[0];
    assert_eq!(
        (
            r.id.as_str(),
            r.owner.as_str(),
            r.expires.to_string(),
            r.line
        ),
        ("legacy-ci", "platform@example.com", "2027-06-30".into(), 3)
    );
    let a = account();
    assert_eq!(
        accepted(&ex, &a, today()),
        [(
            "iam-audit/111122223333/key_older_than_90d/AKIAAAAAAAAAAAAAAAA1".to_string(),
            "legacy-ci".to_string()
        )]
    );
    // The last day holds; the day after, nothing does.
    assert_eq!(accepted(&ex, &a, r.expires).len(), 1);
    assert!(accepted(&ex, &a, r.expires.succ_opt().unwrap()).is_empty());
    assert_eq!(ex.expired(r.expires.succ_opt().unwrap()).count(), 1);
}

#[test]
fn fields_are_anded_entries_ored_and_except_carves_out() {
    let text = "version: 1
rules:
  - id: ou-wide
    owner: o@example.com
    reason: r
    expires: 2027-01-31
    match: { accounts: [\"Root/Workloads\"], users: [\"/automation/*\", alice], flags: [\"v5:1.11\"] }
  - id: pinned
    owner: o@example.com
    reason: r
    expires: 2027-01-31
    match: { access_keys: [AKIAAAAAAAAAAAAAAAA2] }
    except: { accounts: [\"ci-*\"] }
";
    let ex = read(text).unwrap();
    let got = accepted(&ex, &account(), today());
    // v5:1.11 is both unused flags: svc-ci's password and its key; alice has neither. The pinned key's
    // rule is carved out of ci-* accounts.
    assert_eq!(
        got,
        [
            (
                "iam-audit/111122223333/password_unused_45d/svc-ci".to_string(),
                "ou-wide".to_string()
            ),
            (
                "iam-audit/111122223333/key_unused_45d/AKIAAAAAAAAAAAAAAAA1".to_string(),
                "ou-wide".to_string()
            ),
        ]
    );
}

#[test]
fn every_bad_input_names_the_file_the_line_and_the_field() {
    let rule = |extra: &str| {
        format!(
            "version: 1\nrules:\n  - id: a\n    owner: o@example.com\n    reason: r\n    expires: 2027-01-31\n    match: {{ flags: [two_active_keys] }}\n{extra}"
        )
    };
    assert_eq!(
        err(&rule("    ownr: x\n")),
        "exceptions ex.yaml:8: unknown field `ownr`, expected one of id, owner, reason, expires, ticket, kind, expect, match, except (docs/exceptions.md has the format)"
    );
    assert_eq!(
        err(&rule("").replace("two_active_keys", "two_keys")),
        "exceptions ex.yaml:7: match.flags: 'two_keys' is neither a flag nor a CIS number here; use a flag code (docs/outputs.md, e.g. key_older_than_90d) or v3:N / v5:N / v6:N / v7:N (e.g. v5:1.13)"
    );
    assert_eq!(
        err(&rule("").replace("two_active_keys", "v5:9.99")),
        "exceptions ex.yaml:7: match.flags: 'v5:9.99' is neither a flag nor a CIS number here; use a flag code (docs/outputs.md, e.g. key_older_than_90d) or v3:N / v5:N / v6:N / v7:N (e.g. v5:1.13)"
    );
    assert_eq!(
        err(&rule("").replace("2027-01-31", "2027-02-30")),
        "exceptions ex.yaml:6: expires: '2027-02-30' is not a date; write YYYY-MM-DD (UTC), e.g. 2027-06-30"
    );
    assert_eq!(
        err(&rule("").replace("2027-01-31", "2028-01-31")),
        "exceptions ex.yaml:6: expires: 2028-01-31 is more than 365 days away (after 2027-12-06); accept it for less, or raise exceptions_horizon_days"
    );
    assert_eq!(
        err(&rule("").replace("    owner: o@example.com\n", "")),
        "exceptions ex.yaml:3: rule 'a': owner is required"
    );
    assert_eq!(
        err(&rule("").replace("    reason: r\n", "")),
        "exceptions ex.yaml:3: rule 'a': reason is required"
    );
    assert_eq!(
        err(&rule("").replace("    expires: 2027-01-31\n", "")),
        "exceptions ex.yaml:3: rule 'a': expires is required"
    );
    let twice = rule("") + &rule("").replace("version: 1\nrules:\n", "");
    assert_eq!(
        err(&twice),
        "exceptions ex.yaml:8: id: 'a' is already the id of the rule at line 3; give each rule its own id"
    );
    assert_eq!(
        err(&rule("").replace("version: 1", "version: 2")),
        "exceptions ex.yaml:1: version: 2 is not a version this build reads; write version: 1"
    );
    assert_eq!(
        err(&rule("").replace("{ flags: [two_active_keys] }", "{ accounts: [ou-ab12-34cd56ef] }")),
        "exceptions ex.yaml:7: match.accounts: 'ou-ab12-34cd56ef' is an OU id; the reports hold OU paths: write the OU's path (e.g. 'Root/Workloads/Prod')"
    );
    assert_eq!(
        err(&rule("").replace("{ flags: [two_active_keys] }", "{}")),
        "exceptions ex.yaml:3: rule 'a': match names nothing: name accounts, users, access_keys or flags"
    );
}

#[test]
fn a_prowler_mutelist_is_converted_with_the_owner_and_expiry_it_lacks() {
    let text = "Mutelist:
  Accounts:
    \"111122223333\":
      Checks:
        iam_rotate_access_key_90_days:
          Regions: [\"*\"]
          Resources: [\"svc-ci\"]
          Description: CI user until the OIDC migration
        iam_password_policy_minimum_length_14:
          Regions: [\"*\"]
          Resources: [\"*\"]
    \"*\":
      Checks:
        iam_disable_45_days_credentials:
          Regions: [\"*\"]
          Resources: [\".*\"]
          Description: unused credentials accepted while we migrate
          Exceptions:
            Accounts: [\"111122223333\"]
";
    let no_owner = read(text).unwrap_err().to_string();
    assert_eq!(
        no_owner,
        "exceptions ex.yaml:2: Mutelist: a Prowler mutelist has no owner; give it with --exceptions-owner EMAIL (every converted rule gets it)"
    );
    let options = ReadOptions {
        owner: Some("sec@example.com".into()),
        expires: NaiveDate::from_ymd_opt(2027, 3, 31),
        ..ReadOptions::new(today())
    };
    let ex = parse("ex.yaml", text, &options).unwrap();
    let ids: Vec<&str> = ex.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "prowler-111122223333-iam_rotate_access_key_90_days",
            "prowler-all-iam_disable_45_days_credentials"
        ]
    );
    assert_eq!(
        ex.notes,
        ["line 9: Prowler check iam_password_policy_minimum_length_14 has no flag here (docs/exceptions.md); its entry is left out"]
    );
    // The rotation rule takes svc-ci's old key; the account-wide one is carved out of this account.
    assert_eq!(
        accepted(&ex, &account(), today()),
        [(
            "iam-audit/111122223333/key_older_than_90d/AKIAAAAAAAAAAAAAAAA1".to_string(),
            "prowler-111122223333-iam_rotate_access_key_90_days".to_string()
        )]
    );
    let regex = text.replace("[\"svc-ci\"]", "[\"svc-.*\"]");
    assert_eq!(
        parse("ex.yaml", &regex, &options).unwrap_err().to_string(),
        "exceptions ex.yaml:5: Mutelist 111122223333 iam_rotate_access_key_90_days: Resources 'svc-.*' is a regular expression; write the names (or a glob in our format)"
    );
}

#[test]
fn a_break_glass_rule_names_users_asserts_what_it_expects_and_accepts_only_their_idle_password() {
    let glass = |extra: &str, matching: &str| {
        format!(
            "version: 1\nrules:\n  - id: glass\n    kind: break_glass\n    owner: o@example.com\n    reason: r\n    expires: 2027-01-31\n{extra}    match: {matching}\n"
        )
    };
    let ex = read(&glass("", "{ users: [svc-ci] }")).unwrap();
    assert_eq!(ex.rules[0].kind, RuleKind::BreakGlass);
    assert_eq!(ex.rules[0].expect, crate::risk::Seal::all());
    // Of svc-ci's findings it accepts the unused password only, never its keys' findings.
    assert_eq!(
        accepted(&ex, &account(), today()),
        [(
            "iam-audit/111122223333/password_unused_45d/svc-ci".to_string(),
            "glass".to_string()
        )]
    );
    let a = account();
    let guarded = |name: &str, arn: &str| {
        ex.break_glass((&a.id, &a.name, &a.ou_path), (name, arn), today())
            .map(|r| r.id.clone())
    };
    assert_eq!(
        guarded("svc-ci", "arn:aws:iam::111122223333:user/automation/svc-ci"),
        Some("glass".into())
    );
    assert_eq!(
        guarded("alice", "arn:aws:iam::111122223333:user/alice"),
        None
    );
    let some = read(&glass(
        "    expect: [hardware_mfa, not_used]\n",
        "{ users: [svc-ci] }",
    ))
    .unwrap();
    let seal = crate::risk::Seal {
        hardware_mfa: true,
        not_used: true,
        ..Default::default()
    };
    assert_eq!(some.rules[0].expect, seal);
    assert_eq!(
        err(&glass("    expect: [sealed]\n", "{ users: [svc-ci] }")),
        "exceptions ex.yaml:8: expect: 'sealed' is not an expectation; use any of hardware_mfa, no_access_keys, not_used, password, no_other_credentials"
    );
    assert_eq!(
        err(&glass("", "{ users: [svc-ci], flags: [two_active_keys] }")),
        "exceptions ex.yaml:3: rule 'glass': a break_glass rule names its users (match.users, and accounts if you like), not flags or access_keys: it asserts what must stay true of them (expect)"
    );
    assert_eq!(
        err(&glass("", "{ accounts: [\"111122223333\"] }")),
        "exceptions ex.yaml:3: rule 'glass': a break_glass rule names its users (match.users, and accounts if you like), not flags or access_keys: it asserts what must stay true of them (expect)"
    );
    assert_eq!(
        err(&glass("    expect: [password]\n", "{ users: [svc-ci] }").replace("    kind: break_glass\n", "")),
        "exceptions ex.yaml:7: expect: only a break_glass rule asserts expectations; add kind: break_glass or remove expect"
    );
}

// Story: a file written before the API-key flags were renamed still matches the findings they became.
#[test]
fn a_renamed_flags_old_code_still_matches() {
    let text = SMALLEST.replace(
        "flags: [key_older_than_90d]",
        "flags: [bedrock_api_key_without_expiry]",
    );
    let ex = read(&text).unwrap();
    let mut a = account();
    a.users[0].flags.insert(Flag::ApiKeyWithoutExpiry);
    assert_eq!(
        accepted(&ex, &a, today()),
        [(
            // The uid keeps the code the flag was first published under (`Flag::uid_code`).
            "iam-audit/111122223333/bedrock_api_key_without_expiry/svc-ci".to_string(),
            "legacy-ci".to_string()
        )]
    );
}
