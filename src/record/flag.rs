//! The risk flag vocabulary (design §3): each flag's code, the CIS AWS Foundations requirements it
//! fails, its severity, its title and its remediation. The rules that raise flags are in `risk`; the
//! outputs (reports, findings, alerts) read this catalog, so a flag is described once.

use std::fmt;

/// One risk flag (design §3). The order is the order of the codes in a `risk` cell and of the accounts
/// report's columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// CIS v3.0 1.4 / v5.0 1.3: the root user has an active access key.
    RootAccessKey,
    /// 1.5 / 1.4: the root user has no MFA (not a finding under centralized root access).
    RootWithoutMfa,
    /// 1.6 / 1.5: the root user has no hardware MFA (idem).
    RootWithoutHardwareMfa,
    /// 1.10 / 1.9: a console password and no MFA device.
    ConsoleWithoutMfa,
    /// 1.11 / 1.10: a console user's active key that was never used (set up with the user).
    KeyCreatedWithUser,
    /// 1.12 / 1.11: a console password unused (or never used) for the threshold's days.
    PasswordUnused,
    /// 1.12 / 1.11: an active key unused (or never used) for the threshold's days.
    KeyUnused,
    /// 1.13 / 1.12: two active keys.
    TwoActiveKeys,
    /// 1.14 / 1.13: an active key older than the rotation threshold.
    KeyOlderThan90d,
    /// Not CIS: an IAM user created this key for another user (CloudTrail's CreateAccessKey event).
    KeyCreatedForOtherUser,
    /// Not CIS: the root user created this key.
    KeyCreatedByRoot,
    /// Not CIS: a key of this user was created and deleted within `short_lived_days` (from the events
    /// alone: the key is gone from the inventory).
    KeyShortLived,
    /// Not CIS: an active service-specific credential older than the rotation threshold.
    ServiceCredentialOld,
    /// Not CIS: a long-term Amazon Bedrock API key that never expires.
    BedrockKeyWithoutExpiry,
}

impl Flag {
    pub const ALL: [Flag; 14] = [
        Flag::RootAccessKey,
        Flag::RootWithoutMfa,
        Flag::RootWithoutHardwareMfa,
        Flag::ConsoleWithoutMfa,
        Flag::KeyCreatedWithUser,
        Flag::PasswordUnused,
        Flag::KeyUnused,
        Flag::TwoActiveKeys,
        Flag::KeyOlderThan90d,
        Flag::KeyCreatedForOtherUser,
        Flag::KeyCreatedByRoot,
        Flag::KeyShortLived,
        Flag::ServiceCredentialOld,
        Flag::BedrockKeyWithoutExpiry,
    ];
    pub const COUNT: usize = Flag::ALL.len();

    pub fn code(self) -> &'static str {
        match self {
            Flag::RootAccessKey => "root_access_key",
            Flag::RootWithoutMfa => "root_without_mfa",
            Flag::RootWithoutHardwareMfa => "root_without_hardware_mfa",
            Flag::ConsoleWithoutMfa => "console_without_mfa",
            Flag::KeyCreatedWithUser => "key_created_with_user",
            Flag::PasswordUnused => "password_unused_45d",
            Flag::KeyUnused => "key_unused_45d",
            Flag::TwoActiveKeys => "two_active_keys",
            Flag::KeyOlderThan90d => "key_older_than_90d",
            Flag::KeyCreatedForOtherUser => "key_created_for_other_user",
            Flag::KeyCreatedByRoot => "key_created_by_root",
            Flag::KeyShortLived => "key_short_lived",
            Flag::ServiceCredentialOld => "service_credential_older_than_90d",
            Flag::BedrockKeyWithoutExpiry => "bedrock_api_key_without_expiry",
        }
    }

    /// The flag of a code, as written in a `risk` cell.
    pub fn from_code(code: &str) -> Option<Flag> {
        Flag::ALL.into_iter().find(|f| f.code() == code)
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// A set of flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags(u32);

impl Flags {
    pub fn insert(&mut self, f: Flag) {
        self.0 |= f.bit();
    }
    pub fn contains(self, f: Flag) -> bool {
        self.0 & f.bit() != 0
    }
    pub fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn iter(self) -> impl Iterator<Item = Flag> {
        Flag::ALL.into_iter().filter(move |f| self.contains(*f))
    }
    /// The `risk` cell: codes `;`-joined, in `Flag::ALL` order.
    pub fn cell(self) -> String {
        self.to_string()
    }

    /// The flags of a `risk` cell (codes it does not know are left out).
    pub fn parse(cell: &str) -> Flags {
        cell.split(';').filter_map(Flag::from_code).collect()
    }
}

/// The `risk` cell.
impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, flag) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            f.write_str(flag.code())?;
        }
        Ok(())
    }
}

impl FromIterator<Flag> for Flags {
    fn from_iter<I: IntoIterator<Item = Flag>>(iter: I) -> Flags {
        let mut f = Flags::default();
        for x in iter {
            f.insert(x);
        }
        f
    }
}

/// How serious a finding is, as OCSF and ASFF grade it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Informational,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// OCSF's `severity_id`.
    pub fn ocsf_id(self) -> u8 {
        match self {
            Severity::Informational => 1,
            Severity::Low => 2,
            Severity::Medium => 3,
            Severity::High => 4,
            Severity::Critical => 5,
        }
    }

    /// The name OCSF (`severity`) and ASFF (`Label`) use.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Informational => "Informational",
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
            Severity::Critical => "Critical",
        }
    }

    /// From a name, any case (`--notify-min-severity high`).
    pub fn from_name(name: &str) -> Option<Severity> {
        Severity::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a flag's requirement sits in the two CIS AWS Foundations Benchmark versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cis {
    /// CIS AWS Foundations Benchmark v3.0.0.
    pub v3: &'static str,
    /// CIS AWS Foundations Benchmark v5.0.0.
    pub v5: &'static str,
    /// The recommendation's title (v5.0.0 wording).
    pub title: &'static str,
}

/// What a flag is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// The account's root user.
    Root,
    /// An IAM user (its password, its MFA, its number of keys).
    User,
    /// One access key.
    Key,
    /// A credential without a row of its own in the user and key reports (a service-specific
    /// credential, or a key no longer in the inventory): its finding is about its user, and the
    /// credentials and key history files name it.
    Credential,
}

impl Flag {
    /// Whether the flag is judged from CloudTrail's events as well as the IAM inventory (who created a
    /// key, a short-lived key): it can be resolved only where both parts were read.
    pub fn needs_events(self) -> bool {
        matches!(
            self,
            Flag::KeyCreatedForOtherUser | Flag::KeyCreatedByRoot | Flag::KeyShortLived
        )
    }

    /// What the flag is about: a key flag is judged on each key, a user flag on the user.
    pub fn subject(self) -> Subject {
        match self {
            Flag::RootAccessKey | Flag::RootWithoutMfa | Flag::RootWithoutHardwareMfa => {
                Subject::Root
            }
            Flag::ConsoleWithoutMfa | Flag::PasswordUnused | Flag::TwoActiveKeys => Subject::User,
            Flag::KeyCreatedWithUser
            | Flag::KeyUnused
            | Flag::KeyOlderThan90d
            | Flag::KeyCreatedForOtherUser
            | Flag::KeyCreatedByRoot => Subject::Key,
            Flag::KeyShortLived | Flag::ServiceCredentialOld | Flag::BedrockKeyWithoutExpiry => {
                Subject::Credential
            }
        }
    }

    /// The CIS requirement the flag fails; `None` for the flags CIS has no requirement for (who created
    /// a key, and the other long-term credentials).
    pub fn cis(self) -> Option<Cis> {
        let (v3, v5, title) = match self {
            Flag::RootAccessKey => ("1.4", "1.3", "Ensure no 'root' user account access key exists"),
            Flag::RootWithoutMfa => ("1.5", "1.4", "Ensure MFA is enabled for the 'root' user account"),
            Flag::RootWithoutHardwareMfa => (
                "1.6",
                "1.5",
                "Ensure hardware MFA is enabled for the 'root' user account",
            ),
            Flag::ConsoleWithoutMfa => (
                "1.10",
                "1.9",
                "Ensure multi-factor authentication (MFA) is enabled for all IAM users that have a console password",
            ),
            Flag::KeyCreatedWithUser => (
                "1.11",
                "1.10",
                "Do not create access keys during initial setup for IAM users with a console password",
            ),
            Flag::PasswordUnused | Flag::KeyUnused => (
                "1.12",
                "1.11",
                "Ensure credentials unused for 45 days or more are disabled",
            ),
            Flag::TwoActiveKeys => (
                "1.13",
                "1.12",
                "Ensure there is only one active access key for any single IAM user",
            ),
            Flag::KeyOlderThan90d => (
                "1.14",
                "1.13",
                "Ensure access keys are rotated every 90 days or less",
            ),
            Flag::KeyCreatedForOtherUser
            | Flag::KeyCreatedByRoot
            | Flag::KeyShortLived
            | Flag::ServiceCredentialOld
            | Flag::BedrockKeyWithoutExpiry => return None,
        };
        Some(Cis { v3, v5, title })
    }

    /// How serious it is (docs/outputs.md says why).
    pub fn severity(self) -> Severity {
        match self {
            Flag::RootAccessKey | Flag::RootWithoutMfa => Severity::Critical,
            Flag::ConsoleWithoutMfa | Flag::KeyCreatedByRoot => Severity::High,
            Flag::RootWithoutHardwareMfa
            | Flag::PasswordUnused
            | Flag::KeyUnused
            | Flag::KeyOlderThan90d
            | Flag::KeyCreatedForOtherUser
            | Flag::KeyShortLived
            | Flag::ServiceCredentialOld
            | Flag::BedrockKeyWithoutExpiry => Severity::Medium,
            Flag::KeyCreatedWithUser | Flag::TwoActiveKeys => Severity::Low,
        }
    }

    /// One line on what is wrong.
    pub fn title(self) -> &'static str {
        match self {
            Flag::RootAccessKey => "The root user has an access key",
            Flag::RootWithoutMfa => "The root user has no MFA",
            Flag::RootWithoutHardwareMfa => "The root user has no hardware MFA",
            Flag::ConsoleWithoutMfa => "An IAM user with a console password has no MFA",
            Flag::KeyCreatedWithUser => {
                "An access key was set up with a console user and never used"
            }
            Flag::PasswordUnused => "A console password has not been used for the unused threshold",
            Flag::KeyUnused => "An active access key has not been used for the unused threshold",
            Flag::TwoActiveKeys => "An IAM user has two active access keys",
            Flag::KeyOlderThan90d => "An active access key is older than the rotation threshold",
            Flag::KeyCreatedForOtherUser => "An IAM user created an access key for another user",
            Flag::KeyCreatedByRoot => "The root user created an access key",
            Flag::KeyShortLived => "An access key was created and deleted within days",
            Flag::ServiceCredentialOld => {
                "An active service-specific credential is older than the rotation threshold"
            }
            Flag::BedrockKeyWithoutExpiry => "A long-term Amazon Bedrock API key never expires",
        }
    }

    /// What to do about it.
    pub fn remediation(self) -> &'static str {
        match self {
            Flag::RootAccessKey => "Delete the root user's access keys (IAM console, signed in as root: Security credentials); use IAM roles or users for programmatic access.",
            Flag::RootWithoutMfa => "Enable MFA for the root user, preferably a hardware or FIDO security key, or manage root credentials centrally with AWS Organizations.",
            Flag::RootWithoutHardwareMfa => "Replace the root user's virtual MFA device with a hardware TOTP token or a FIDO security key.",
            Flag::ConsoleWithoutMfa => "Assign an MFA device to the user, or remove the console password if the user does not sign in to the console.",
            Flag::KeyCreatedWithUser => "Delete the access key if it is not needed; create keys only when a program needs them, not at user setup.",
            Flag::PasswordUnused => "Remove the console password (delete the login profile) of a user who no longer signs in.",
            Flag::KeyUnused => "Deactivate, then delete, the unused access key.",
            Flag::TwoActiveKeys => "Keep one active access key per user: deactivate the key that is no longer used after rotating.",
            Flag::KeyOlderThan90d => "Rotate the access key: create a new key, move the program to it, then deactivate and delete the old key.",
            Flag::KeyCreatedForOtherUser => "Confirm with the creator and the key's owner that the key is expected (CloudTrail's CreateAccessKey event names both); if not, deactivate and delete it, and review what the creator did.",
            Flag::KeyCreatedByRoot => "Confirm why the root user was used; move the work to an IAM role or user, and review the root user's other actions in CloudTrail.",
            Flag::KeyShortLived => "Review what the key did between its creation and deletion (CloudTrail events by its access key id): a key made and removed quickly is how an intruder avoids an inventory.",
            Flag::ServiceCredentialOld => "Reset the service-specific credential (iam reset-service-specific-credential), move its clients to the new password, or delete it if unused.",
            Flag::BedrockKeyWithoutExpiry => "Replace the key with short-term Bedrock API keys, or delete it and create one with an expiry (iam create-service-specific-credential --credential-age-days).",
        }
    }

    /// The AWS documentation the remediation rests on.
    pub fn reference(self) -> &'static str {
        match self {
            Flag::ServiceCredentialOld => {
                return "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_service-specific-creds.html"
            }
            Flag::BedrockKeyWithoutExpiry => {
                return "https://docs.aws.amazon.com/bedrock/latest/userguide/api-keys.html"
            }
            _ => {}
        }
        match self.subject() {
            Subject::Root => "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_root-user.html",
            Subject::User => {
                "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_mfa.html"
            }
            Subject::Key | Subject::Credential => {
                "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_access-keys.html"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_risk_cell_lists_codes_in_flag_order() {
        let f: Flags = [Flag::KeyOlderThan90d, Flag::RootAccessKey]
            .into_iter()
            .collect();
        assert_eq!(f.cell(), "root_access_key;key_older_than_90d");
        assert_eq!(
            Flag::from_code("two_active_keys"),
            Some(Flag::TwoActiveKeys)
        );
        assert_eq!(Flag::from_code("nope"), None);
        assert!(Flags::default().is_empty());
    }

    #[test]
    fn every_flag_has_one_subject_and_a_cis_place_in_both_versions() {
        for f in Flag::ALL {
            if let Some(c) = f.cis() {
                assert!(c.v3.starts_with("1.") && c.v5.starts_with("1."), "{f:?}");
            }
            assert_eq!(Flag::from_code(f.code()), Some(f));
        }
        assert_eq!(Flag::ALL.iter().filter(|f| f.cis().is_some()).count(), 9);
        let keys: Vec<Flag> = Flag::ALL
            .into_iter()
            .filter(|f| f.subject() == Subject::Key)
            .collect();
        assert_eq!(
            keys,
            [
                Flag::KeyCreatedWithUser,
                Flag::KeyUnused,
                Flag::KeyOlderThan90d,
                Flag::KeyCreatedForOtherUser,
                Flag::KeyCreatedByRoot,
            ]
        );
        assert_eq!(Severity::from_name("high"), Some(Severity::High));
        assert!(Severity::Critical > Severity::High);
    }
}
