//! The CIS AWS Foundations Benchmark versions the findings carry, and where one requirement sits in
//! each (docs/outputs.md names where each number came from).

/// Where a flag's requirement sits in the CIS AWS Foundations Benchmark versions (docs/outputs.md names
/// where each number came from). v6.0.0 moved IAM to section 2; v7.0.0 dropped "no access keys at
/// initial setup" and "one active key".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cis {
    /// CIS AWS Foundations Benchmark v3.0.0.
    pub v3: &'static str,
    /// CIS AWS Foundations Benchmark v5.0.0.
    pub v5: &'static str,
    /// CIS AWS Foundations Benchmark v6.0.0.
    pub v6: &'static str,
    /// CIS AWS Foundations Benchmark v7.0.0; `None` where v7 has no successor.
    pub v7: Option<&'static str>,
    /// The recommendation's title (v5.0.0 wording).
    pub title: &'static str,
}

/// A CIS AWS Foundations Benchmark version the findings can carry (`--cis-version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CisVersion {
    V3,
    V5,
    V6,
    V7,
}

impl CisVersion {
    pub const ALL: [CisVersion; 4] = [
        CisVersion::V3,
        CisVersion::V5,
        CisVersion::V6,
        CisVersion::V7,
    ];

    /// `3.0.0`, `5.0.0`, …
    pub fn number(self) -> &'static str {
        match self {
            CisVersion::V3 => "3.0.0",
            CisVersion::V5 => "5.0.0",
            CisVersion::V6 => "6.0.0",
            CisVersion::V7 => "7.0.0",
        }
    }

    /// `v3`, `v5`, … as an exceptions file names a requirement (`v7:2.12`).
    pub fn short(self) -> &'static str {
        match self {
            CisVersion::V3 => "v3",
            CisVersion::V5 => "v5",
            CisVersion::V6 => "v6",
            CisVersion::V7 => "v7",
        }
    }

    /// From `3.0`, `v3`, `3`, `3.0.0` (and so on for each version).
    pub fn parse(s: &str) -> Option<CisVersion> {
        let s = s.trim().trim_start_matches(['v', 'V']);
        let major = s.split('.').next()?;
        let rest_is_zero = s.split('.').skip(1).all(|p| p == "0");
        let v = match major {
            "3" => CisVersion::V3,
            "5" => CisVersion::V5,
            "6" => CisVersion::V6,
            "7" => CisVersion::V7,
            _ => return None,
        };
        rest_is_zero.then_some(v)
    }
}

impl Cis {
    /// The number in `version`, if it has one.
    pub fn number(&self, version: CisVersion) -> Option<&'static str> {
        match version {
            CisVersion::V3 => Some(self.v3),
            CisVersion::V5 => Some(self.v5),
            CisVersion::V6 => Some(self.v6),
            CisVersion::V7 => self.v7,
        }
        .filter(|n| !n.is_empty())
    }
}
