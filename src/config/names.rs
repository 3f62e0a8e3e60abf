//! Names the settings are made of: roles and their ARNs, regions and partitions, and the globs of the
//! account and OU filters.

use super::{invalid, ConfigError};

/// The roles to try, in order: `roles` when set, else `role` alone. One is required.
pub(super) fn roles(
    role: Option<&str>,
    roles: Option<&[String]>,
) -> Result<Vec<String>, ConfigError> {
    let list: Vec<String> = match (roles, role.map(str::trim)) {
        (Some(list), _) => list.iter().map(|r| r.trim().to_string()).collect(),
        (None, Some(r)) if !r.is_empty() => vec![r.to_string()],
        _ => Vec::new(),
    };
    if list.is_empty() || list.iter().any(String::is_empty) {
        return Err(invalid(
            "role",
            "is required: pass --role NAME (e.g. IAMAuditRole or AWSControlTowerExecution), --roles A,B, or set role or roles in the config file",
        ));
    }
    if let Some(bad) = list
        .iter()
        .find(|r| r.contains(':') && !r.starts_with("arn:"))
    {
        return Err(invalid("role", format!("'{bad}' is not a role name")));
    }
    Ok(list)
}

/// A role's ARN in an account: a name takes the account's partition; a full ARN keeps its own.
pub(super) fn role_arn(role: &str, account_id: &str, partition: &str) -> String {
    if let Some(rest) = role.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        if let [given_partition, "iam", "", _, resource] = parts.as_slice() {
            return format!("arn:{given_partition}:iam::{account_id}:{resource}");
        }
    }
    format!("arn:{partition}:iam::{account_id}:role/{role}")
}

/// `*` and `?` glob, case-sensitive, over characters.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The AWS partition of a region.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else {
        "aws"
    }
}

/// The region where a partition's IAM (a global service) records its CloudTrail events.
pub fn iam_home_region(partition: &str) -> &'static str {
    match partition {
        "aws-cn" => "cn-north-1",
        "aws-us-gov" => "us-gov-west-1",
        "aws-iso" => "us-iso-east-1",
        "aws-iso-b" => "us-isob-east-1",
        _ => "us-east-1",
    }
}

/// The partition a region name belongs to, by the region patterns of the SDK's partition table
/// (`^(us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+$` for aws, `^cn-\w+-\d+$` for aws-cn, `^us-gov-\w+-\d+$`
/// for aws-us-gov, and the ISO partitions'); `None` for anything else. A region becomes part of host names
/// (`securityhub.REGION.amazonaws.com`), so nothing but a region's shape passes.
pub fn region_partition(r: &str) -> Option<&'static str> {
    let word = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    let number = |s: &str| !s.is_empty() && s.len() <= 3 && s.chars().all(|c| c.is_ascii_digit());
    let parts: Vec<&str> = r.split('-').collect();
    match parts.as_slice() {
        ["us", "gov", w, n] if word(w) && number(n) => Some("aws-us-gov"),
        ["us", "iso", w, n] if word(w) && number(n) => Some("aws-iso"),
        ["us", "isob", w, n] if word(w) && number(n) => Some("aws-iso-b"),
        ["us", "isof", w, n] if word(w) && number(n) => Some("aws-iso-f"),
        ["eu", "isoe", w, n] if word(w) && number(n) => Some("aws-iso-e"),
        ["cn", w, n] if word(w) && number(n) => Some("aws-cn"),
        [p, w, n]
            if ["us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx"].contains(p)
                && word(w)
                && number(n) =>
        {
            Some("aws")
        }
        _ => None,
    }
}

/// The CloudTrail regions of a run (`regions`, or the IAM home region of `region`'s partition, where IAM
/// records its events), once `region`, each of them and `security_hub_region` are regions of one
/// partition: one set of credentials reaches one partition, and a region becomes part of host names.
pub(super) fn checked_regions(
    region: &str,
    regions: Option<&[String]>,
    security_hub_region: Option<&str>,
) -> Result<Vec<String>, super::ConfigError> {
    use super::invalid;
    let Some(partition) = region_partition(region) else {
        return Err(invalid(
            "region",
            format!("'{region}' is not a region name (such as us-east-1)"),
        ));
    };
    let of_partition = |r: &str| region_partition(r) == Some(partition);
    let home = iam_home_region(partition);
    let regions = regions.map_or_else(|| vec![home.to_string()], <[String]>::to_vec);
    if regions.is_empty() || regions.iter().any(|r| !of_partition(r)) {
        return Err(invalid(
            "regions",
            format!("{regions:?} must be a non-empty list of region names of the {partition} partition (of --region {region}), such as {home}"),
        ));
    }
    if let Some(r) = security_hub_region.filter(|r| !of_partition(r)) {
        return Err(invalid(
            "security_hub_region",
            format!("'{r}' is not a region of the {partition} partition (of --region {region}), such as {home}"),
        ));
    }
    Ok(regions)
}

/// `root_audit`, which the file may spell wrong (the command line offers only its choices).
pub(super) fn check_root_audit(root_audit: &str) -> Result<(), super::ConfigError> {
    if ["auto", "role", "assume-root"].contains(&root_audit) {
        return Ok(());
    }
    Err(super::invalid(
        "root_audit",
        format!("'{root_audit}' is not a way to read the root users; use \"auto\", \"role\" or \"assume-root\""),
    ))
}

/// `cis_version`, checked: versions this build maps (`DEFAULT_CIS_VERSIONS`, written `3.0`, `v3`, `3` or
/// `3.0.0`), at least one, in the benchmark's order.
pub(super) fn cis_versions(names: &[String]) -> Result<Vec<String>, super::ConfigError> {
    use super::invalid;
    let mut versions: Vec<String> = Vec::new();
    for n in names {
        let t = n.trim().trim_start_matches(['v', 'V']);
        let mut parts = t.split('.');
        let major = parts.next().unwrap_or("");
        let version = format!("{major}.0");
        if !parts.all(|p| p == "0") || !super::DEFAULT_CIS_VERSIONS.contains(&version.as_str()) {
            return Err(invalid(
                "cis_version",
                format!("'{n}' is not a CIS AWS Foundations Benchmark version this build maps; use any of 3.0, 5.0, 6.0, 7.0"),
            ));
        }
        if !versions.contains(&version) {
            versions.push(version);
        }
    }
    if versions.is_empty() {
        return Err(invalid(
            "cis_version",
            "name at least one version (3.0, 5.0, 6.0, 7.0)",
        ));
    }
    versions.sort_by_key(|v| super::DEFAULT_CIS_VERSIONS.iter().position(|d| d == v));
    Ok(versions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_star_and_question_mark() {
        assert!(glob("*a*b?", "xxaYYbZ") && !glob("a*", "ba") && glob("*", ""));
        assert!(glob("prod-legacy?", "prod-legacy1") && !glob("prod-legacy?", "prod-legacy12"));
    }

    #[test]
    fn partitions() {
        assert_eq!(partition_of("us-east-1"), "aws");
        assert_eq!(partition_of("cn-north-1"), "aws-cn");
        assert_eq!(partition_of("us-gov-west-1"), "aws-us-gov");
    }

    #[test]
    fn only_region_names_are_regions() {
        for (r, p) in [
            ("us-east-1", "aws"),
            ("eu-central-2", "aws"),
            ("mx-central-1", "aws"),
            ("cn-northwest-1", "aws-cn"),
            ("us-gov-west-1", "aws-us-gov"),
            ("us-isob-east-1", "aws-iso-b"),
        ] {
            assert_eq!(region_partition(r), Some(p), "{r}");
        }
        for bad in [
            "",
            "us-east",
            "attacker.example",
            "127.attacker.example",
            "us-east-1.evil.com",
            "us-east-1#",
            "xx-east-1",
            "us-east-1/x",
            "US-EAST-1",
            "us--1",
        ] {
            assert_eq!(region_partition(bad), None, "{bad:?}");
        }
    }
}
