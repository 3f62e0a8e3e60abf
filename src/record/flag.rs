//! The risk flag vocabulary (design §3): each flag's code, the CIS AWS Foundations requirements it
//! fails, its severity, its title and its remediation. The rules that raise flags are in `risk`; the
//! outputs (reports, findings, alerts) read this catalog, so a flag is described once.

use std::fmt;

use super::cis::{Cis, CisVersion};
use super::severity::Severity;

/// One risk flag (design §3). The order is the order of the codes in a `risk` cell and of the accounts
/// report's columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// CIS v3.0 1.4 / v5.0 1.3: the root user has an active access key.
    RootAccessKey,
    /// CIS v7.0 2.1.1: the organization does not manage its members' root credentials centrally (on the
    /// management account's root user).
    RootAccessNotCentralized,
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
    /// Not CIS: an active service-specific credential (a long-term API key, a Git or Cassandra password)
    /// older than the rotation threshold. Was `service_credential_older_than_90d`.
    ApiKeyOld,
    /// Not CIS: an active long-term API key (Bedrock, Claude Platform, CloudWatch, CloudWatch Logs) that
    /// never expires. Was `bedrock_api_key_without_expiry`, for Bedrock alone.
    ApiKeyWithoutExpiry,
    /// Not CIS: an IAM user whose only credentials are service-specific ones (the consoles make such a
    /// user to hold an API key).
    ApiKeyUser,
    /// Not CIS: AWS attached a compromised-key quarantine policy to the user (it found a key exposed).
    KeyQuarantinedByAws,
    /// Not CIS: a break-glass user (an exceptions file's `kind: break_glass`) signed in to the console
    /// or used a key within the CloudTrail window.
    BreakGlassUsed,
    /// Not CIS: a break-glass user without a hardware MFA device.
    BreakGlassWithoutHardwareMfa,
    /// Not CIS: a break-glass user with an access key.
    BreakGlassAccessKey,
    /// Not CIS: a break-glass user without a console password (the glass cannot be broken).
    BreakGlassWithoutPassword,
    /// Not CIS: a break-glass user with an SSH key, a signing certificate or a service-specific
    /// credential.
    BreakGlassOtherCredential,
}

impl Flag {
    pub const ALL: [Flag; 22] = [
        Flag::RootAccessKey,
        Flag::RootAccessNotCentralized,
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
        Flag::ApiKeyOld,
        Flag::ApiKeyWithoutExpiry,
        Flag::ApiKeyUser,
        Flag::KeyQuarantinedByAws,
        Flag::BreakGlassUsed,
        Flag::BreakGlassWithoutHardwareMfa,
        Flag::BreakGlassAccessKey,
        Flag::BreakGlassWithoutPassword,
        Flag::BreakGlassOtherCredential,
    ];
    pub const COUNT: usize = Flag::ALL.len();

    pub fn code(self) -> &'static str {
        match self {
            Flag::RootAccessKey => "root_access_key",
            Flag::RootAccessNotCentralized => "root_access_not_centralized",
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
            Flag::ApiKeyOld => "api_key_older_than_90d",
            Flag::ApiKeyWithoutExpiry => "api_key_without_expiry",
            Flag::ApiKeyUser => "api_key_user",
            Flag::KeyQuarantinedByAws => "key_quarantined_by_aws",
            Flag::BreakGlassUsed => "break_glass_used",
            Flag::BreakGlassWithoutHardwareMfa => "break_glass_without_hardware_mfa",
            Flag::BreakGlassAccessKey => "break_glass_access_key",
            Flag::BreakGlassWithoutPassword => "break_glass_without_password",
            Flag::BreakGlassOtherCredential => "break_glass_other_credential",
        }
    }

    /// The flag of a code, as written in a `risk` cell. The codes of renamed flags (`RENAMED`) are read
    /// too, so an earlier run's files and an exceptions file written before the rename still match.
    pub fn from_code(code: &str) -> Option<Flag> {
        Flag::ALL
            .into_iter()
            .find(|f| f.code() == code)
            .or_else(|| {
                Flag::RENAMED
                    .iter()
                    .find(|(old, _)| *old == code)
                    .map(|r| r.1)
            })
    }

    /// The code in the flag's finding uids (`iam-audit/ACCOUNT/CODE/RESOURCE`): the code it was first
    /// published under, so that a finding keeps its identity across a rename (in the changes report, the
    /// findings' history and Security Hub, whose finding Id it is).
    pub fn uid_code(self) -> &'static str {
        Flag::RENAMED
            .iter()
            .find(|(_, f)| *f == self)
            .map_or(self.code(), |(old, _)| old)
    }

    /// Codes that were renamed, with the flag each now is.
    pub const RENAMED: [(&'static str, Flag); 2] = [
        ("service_credential_older_than_90d", Flag::ApiKeyOld),
        ("bedrock_api_key_without_expiry", Flag::ApiKeyWithoutExpiry),
    ];

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
            Flag::RootAccessKey
            | Flag::RootAccessNotCentralized
            | Flag::RootWithoutMfa
            | Flag::RootWithoutHardwareMfa => Subject::Root,
            Flag::ConsoleWithoutMfa
            | Flag::PasswordUnused
            | Flag::TwoActiveKeys
            | Flag::ApiKeyUser
            | Flag::KeyQuarantinedByAws
            | Flag::BreakGlassUsed
            | Flag::BreakGlassWithoutHardwareMfa
            | Flag::BreakGlassAccessKey
            | Flag::BreakGlassWithoutPassword
            | Flag::BreakGlassOtherCredential => Subject::User,
            Flag::KeyCreatedWithUser
            | Flag::KeyUnused
            | Flag::KeyOlderThan90d
            | Flag::KeyCreatedForOtherUser
            | Flag::KeyCreatedByRoot => Subject::Key,
            Flag::KeyShortLived | Flag::ApiKeyOld | Flag::ApiKeyWithoutExpiry => {
                Subject::Credential
            }
        }
    }

    /// The CIS requirement the flag fails; `None` for the flags CIS has no requirement for (who created
    /// a key, and the other long-term credentials).
    pub fn cis(self) -> Option<Cis> {
        let ((v3, v5, v6, v7), title) = match self {
            Flag::RootAccessKey => (
                ("1.4", "1.3", "2.3", Some("2.4")),
                "Ensure no 'root' user account access key exists",
            ),
            // New in v7.0: no number before it.
            Flag::RootAccessNotCentralized => (
                ("", "", "", Some("2.1.1")),
                "Ensure centralized root access in AWS Organizations",
            ),
            Flag::RootWithoutMfa => (
                ("1.5", "1.4", "2.4", Some("2.5")),
                "Ensure MFA is enabled for the 'root' user account",
            ),
            Flag::RootWithoutHardwareMfa => (
                ("1.6", "1.5", "2.5", Some("2.6")),
                "Ensure hardware MFA is enabled for the 'root' user account",
            ),
            Flag::ConsoleWithoutMfa => (
                ("1.10", "1.9", "2.9", Some("2.10")),
                "Ensure multi-factor authentication (MFA) is enabled for all IAM users that have a console password",
            ),
            Flag::KeyCreatedWithUser => (
                ("1.11", "1.10", "2.10", None),
                "Do not create access keys during initial setup for IAM users with a console password",
            ),
            Flag::PasswordUnused | Flag::KeyUnused => (
                ("1.12", "1.11", "2.11", Some("2.11")),
                "Ensure credentials unused for 45 days or more are disabled",
            ),
            Flag::TwoActiveKeys => (
                ("1.13", "1.12", "2.12", None),
                "Ensure there is only one active access key for any single IAM user",
            ),
            Flag::KeyOlderThan90d => (
                ("1.14", "1.13", "2.13", Some("2.12")),
                "Ensure access keys are rotated every 90 days or less",
            ),
            Flag::KeyCreatedForOtherUser
            | Flag::KeyCreatedByRoot
            | Flag::KeyShortLived
            | Flag::ApiKeyOld
            | Flag::ApiKeyWithoutExpiry
            | Flag::ApiKeyUser
            | Flag::KeyQuarantinedByAws
            | Flag::BreakGlassUsed
            | Flag::BreakGlassWithoutHardwareMfa
            | Flag::BreakGlassAccessKey
            | Flag::BreakGlassWithoutPassword
            | Flag::BreakGlassOtherCredential => return None,
        };
        Some(Cis {
            v3,
            v5,
            v6,
            v7,
            title,
        })
    }

    /// The requirements a finding of this flag fails, in `versions` (in their order), as
    /// (version, number). On the root user, "unused credentials" is no requirement from v6.0.0 on: those
    /// versions exclude `<root_account>` from its audit.
    pub fn requirements(
        self,
        root: bool,
        versions: &[CisVersion],
    ) -> Vec<(CisVersion, &'static str)> {
        let Some(cis) = self.cis() else {
            return Vec::new();
        };
        versions
            .iter()
            .filter(|v| {
                !(root
                    && **v >= CisVersion::V6
                    && matches!(self, Flag::KeyUnused | Flag::PasswordUnused))
            })
            .filter_map(|v| cis.number(*v).map(|n| (*v, n)))
            .collect()
    }

    /// How serious it is (docs/outputs.md says why).
    pub fn severity(self) -> Severity {
        match self {
            Flag::RootAccessKey
            | Flag::RootWithoutMfa
            | Flag::BreakGlassUsed
            | Flag::KeyQuarantinedByAws => Severity::Critical,
            Flag::RootAccessNotCentralized => Severity::Medium,
            Flag::ConsoleWithoutMfa
            | Flag::KeyCreatedByRoot
            | Flag::BreakGlassWithoutHardwareMfa
            | Flag::BreakGlassAccessKey
            | Flag::BreakGlassOtherCredential => Severity::High,
            Flag::RootWithoutHardwareMfa
            | Flag::PasswordUnused
            | Flag::KeyUnused
            | Flag::KeyOlderThan90d
            | Flag::KeyCreatedForOtherUser
            | Flag::KeyShortLived
            | Flag::ApiKeyOld
            | Flag::ApiKeyWithoutExpiry
            | Flag::BreakGlassWithoutPassword => Severity::Medium,
            Flag::KeyCreatedWithUser | Flag::TwoActiveKeys | Flag::ApiKeyUser => Severity::Low,
        }
    }

    /// One line on what is wrong.
    pub fn title(self) -> &'static str {
        match self {
            Flag::RootAccessKey => "The root user has an access key",
            Flag::RootAccessNotCentralized => {
                "The organization does not manage its member accounts' root credentials centrally"
            }
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
            Flag::ApiKeyOld => {
                "An active service-specific credential or API key is older than the rotation threshold"
            }
            Flag::ApiKeyWithoutExpiry => "A long-term API key never expires",
            Flag::ApiKeyUser => "An IAM user exists only to hold service-specific credentials",
            Flag::KeyQuarantinedByAws => {
                "AWS quarantined an IAM user whose access key it found exposed"
            }
            Flag::BreakGlassUsed => "A break-glass user was used",
            Flag::BreakGlassWithoutHardwareMfa => "A break-glass user has no hardware MFA",
            Flag::BreakGlassAccessKey => "A break-glass user has an access key",
            Flag::BreakGlassWithoutPassword => "A break-glass user has no console password",
            Flag::BreakGlassOtherCredential => {
                "A break-glass user has another long-term credential"
            }
        }
    }

    /// What to do about it.
    pub fn remediation(self) -> &'static str {
        match self {
            Flag::RootAccessKey => "Delete the root user's access keys (IAM console, signed in as root: Security credentials); use IAM roles or users for programmatic access.",
            Flag::RootAccessNotCentralized => "In the management account's IAM console, Root access management: enable Root credentials management (and, if wanted, privileged root actions); then delete the member accounts' root passwords, keys and MFA devices centrally.",
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
            Flag::ApiKeyOld => "Rotate the credential: create a second one for the service (iam create-service-specific-credential), move its clients to it, then deactivate and delete the old one; delete it if unused.",
            Flag::ApiKeyWithoutExpiry => "Replace the key with one that expires (iam create-service-specific-credential --credential-age-days), or with short-term API keys where the service has them; then delete the old key.",
            Flag::ApiKeyUser => "Confirm the API key is still needed and who owns it; tag the user with its owner, or delete the user with its credentials. Prefer roles and short-term API keys.",
            Flag::KeyQuarantinedByAws => "Treat the key as compromised: deactivate and delete the user's exposed access keys, review what they did in CloudTrail (by access key id), then remove the quarantine policy only once the incident is closed (AWS support case).",
            Flag::BreakGlassUsed => "Confirm the use was a declared emergency (CloudTrail's ConsoleLogin events and the key's calls say what was done); then rotate the password, and reseal the user.",
            Flag::BreakGlassWithoutHardwareMfa => "Give the break-glass user a hardware MFA device or FIDO security key kept with its password, and remove any virtual device.",
            Flag::BreakGlassAccessKey => "Delete the break-glass user's access keys: an emergency needs the console, and a key is a standing way in.",
            Flag::BreakGlassWithoutPassword => "Set a console password for the break-glass user and keep it sealed, or remove the user from the break-glass rule.",
            Flag::BreakGlassOtherCredential => "Delete the break-glass user's SSH keys, signing certificates and service-specific credentials (the credentials report names them).",
        }
    }

    /// The AWS documentation the remediation rests on.
    pub fn reference(self) -> &'static str {
        match self {
            Flag::ApiKeyOld | Flag::ApiKeyUser => {
                return "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_service-specific-creds.html"
            }
            Flag::ApiKeyWithoutExpiry => {
                return "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_api_keys_for_aws_services.html"
            }
            Flag::KeyQuarantinedByAws => {
                return "https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSCompromisedKeyQuarantineV3.html"
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
        // Renamed codes still read, as the flag they became.
        assert_eq!(
            Flags::parse("service_credential_older_than_90d;bedrock_api_key_without_expiry").cell(),
            "api_key_older_than_90d;api_key_without_expiry"
        );
        // Their findings keep the uid code they were first published under.
        assert_eq!(
            Flag::ApiKeyWithoutExpiry.uid_code(),
            "bedrock_api_key_without_expiry"
        );
        assert_eq!(
            Flag::KeyQuarantinedByAws.uid_code(),
            "key_quarantined_by_aws"
        );
        assert!(Flags::default().is_empty());
    }

    #[test]
    fn every_flag_has_one_subject_and_a_cis_place_in_both_versions() {
        for f in Flag::ALL {
            if let Some(c) = f.cis().filter(|_| f != Flag::RootAccessNotCentralized) {
                assert!(c.v3.starts_with("1.") && c.v5.starts_with("1."), "{f:?}");
            }
            assert_eq!(Flag::from_code(f.code()), Some(f));
        }
        assert_eq!(Flag::ALL.iter().filter(|f| f.cis().is_some()).count(), 10);
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

    // Story: a team on CIS v7.0 sees v7's numbers, and no number for the two requirements v7 dropped; the
    // root user's unused key fails "unused credentials" in v3.0 and v5.0 only (v6.0 and v7.0 exclude the
    // root user from its audit).
    #[test]
    fn each_cis_version_has_its_own_numbers_and_rules() {
        let all = CisVersion::ALL;
        let numbers = |f: Flag, root: bool| -> Vec<String> {
            f.requirements(root, &all)
                .into_iter()
                .map(|(v, n)| format!("{}:{n}", v.short()))
                .collect()
        };
        assert_eq!(
            numbers(Flag::KeyOlderThan90d, false),
            ["v3:1.14", "v5:1.13", "v6:2.13", "v7:2.12"]
        );
        assert_eq!(
            numbers(Flag::RootAccessKey, true),
            ["v3:1.4", "v5:1.3", "v6:2.3", "v7:2.4"]
        );
        assert_eq!(
            numbers(Flag::ConsoleWithoutMfa, false),
            ["v3:1.10", "v5:1.9", "v6:2.9", "v7:2.10"]
        );
        assert_eq!(
            numbers(Flag::KeyCreatedWithUser, false),
            ["v3:1.11", "v5:1.10", "v6:2.10"]
        );
        assert_eq!(
            numbers(Flag::TwoActiveKeys, false),
            ["v3:1.13", "v5:1.12", "v6:2.12"]
        );
        assert_eq!(
            numbers(Flag::KeyUnused, false),
            ["v3:1.12", "v5:1.11", "v6:2.11", "v7:2.11"]
        );
        assert_eq!(numbers(Flag::KeyUnused, true), ["v3:1.12", "v5:1.11"]);
        assert!(numbers(Flag::KeyCreatedByRoot, false).is_empty());
        assert_eq!(
            Flag::TwoActiveKeys.requirements(false, &[CisVersion::V7]),
            []
        );
        for (s, v) in [
            ("7.0", Some(CisVersion::V7)),
            ("v6", Some(CisVersion::V6)),
            ("3.0.0", Some(CisVersion::V3)),
            ("5", Some(CisVersion::V5)),
            ("4.0", None),
            ("7.1", None),
            ("", None),
        ] {
            assert_eq!(CisVersion::parse(s), v, "{s:?}");
        }
    }
}
