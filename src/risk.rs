//! The rules: CIS AWS Foundations checks on one user's credentials (design §3), whichever strategy read
//! them. Pure functions of the credential facts, the run's start time and the configured thresholds; they
//! fill the `Flags` of the records (`record`) and know nothing of services or outputs.

use chrono::{DateTime, Utc};

use crate::config::Thresholds;
use crate::record::{Flag, Flags, LastUse, Mfa, OtherCredentials, Password};

/// What is known of one access key.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyFacts {
    pub active: bool,
    pub created: Option<DateTime<Utc>>,
    pub last_used: LastUse,
}

/// What is known of one user's credentials (an IAM user, or the root user).
#[derive(Debug, Clone, PartialEq)]
pub struct UserFacts {
    pub root: bool,
    pub created: Option<DateTime<Utc>>,
    pub password: Password,
    pub password_last_used: Option<DateTime<Utc>>,
    /// When the password was set (login profile creation, or the report's `password_last_changed`);
    /// the user's creation when unknown.
    pub password_set: Option<DateTime<Utc>>,
    /// `None`: unknown.
    pub mfa_active: Option<bool>,
    pub mfa: Mfa,
    /// Active keys, when the keys themselves are unknown (the root user): from the report's slots or
    /// the account summary.
    pub active_keys_without_ids: Option<u32>,
    /// The account's root credentials are managed centrally by the organization (member accounts only).
    pub centralized_root: bool,
    /// The management account's root user, in an organization that does not manage its members' root
    /// credentials centrally (ListOrganizationsFeatures: no RootCredentialsManagement).
    pub org_root_access_off: bool,
}

/// What a break-glass user must keep (an exceptions file's `kind: break_glass` rule, docs/exceptions.md).
/// Each expectation is checked on its own, and each broken one raises a flag of its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seal {
    /// A hardware MFA device (a TOTP token or a FIDO key).
    pub hardware_mfa: bool,
    /// No access key, active or not.
    pub no_access_keys: bool,
    /// Neither the console nor a key used in the CloudTrail window.
    pub not_used: bool,
    /// A console password, so that the glass can be broken.
    pub password: bool,
    /// No SSH public key, signing certificate or service-specific credential.
    pub no_other_credentials: bool,
}

impl Seal {
    /// The names an exceptions file writes under `expect:`, in this order.
    pub const NAMES: [&'static str; 5] = [
        "hardware_mfa",
        "no_access_keys",
        "not_used",
        "password",
        "no_other_credentials",
    ];

    /// Every expectation (what `expect:` means when left out).
    pub fn all() -> Seal {
        Seal {
            hardware_mfa: true,
            no_access_keys: true,
            not_used: true,
            password: true,
            no_other_credentials: true,
        }
    }

    /// The names of what it expects, in `NAMES` order.
    pub fn names(self) -> Vec<&'static str> {
        let on = [
            self.hardware_mfa,
            self.no_access_keys,
            self.not_used,
            self.password,
            self.no_other_credentials,
        ];
        Seal::NAMES
            .into_iter()
            .zip(on)
            .filter_map(|(n, on)| on.then_some(n))
            .collect()
    }

    /// Add the expectation of this name; `false` for a name it does not know.
    pub fn add(&mut self, name: &str) -> bool {
        let slot = match name {
            "hardware_mfa" => &mut self.hardware_mfa,
            "no_access_keys" => &mut self.no_access_keys,
            "not_used" => &mut self.not_used,
            "password" => &mut self.password,
            "no_other_credentials" => &mut self.no_other_credentials,
            _ => return false,
        };
        *slot = true;
        true
    }
}

/// The flags of a break-glass user's broken expectations. `since` is the start of the CloudTrail window;
/// `others` the user's other long-term credentials (`None`: not read). An unknown fact is no verdict.
pub fn break_glass_flags(
    seal: Seal,
    user: &UserFacts,
    keys: &[KeyFacts],
    others: Option<u32>,
    since: DateTime<Utc>,
) -> Flags {
    let mut f = Flags::default();
    let used = user.password_last_used.is_some_and(|t| t >= since)
        || keys
            .iter()
            .any(|k| k.last_used.date().is_some_and(|t| t >= since));
    if seal.not_used && used {
        f.insert(Flag::BreakGlassUsed);
    }
    if seal.hardware_mfa && user.mfa != Mfa::Hardware && user.mfa != Mfa::Unknown {
        f.insert(Flag::BreakGlassWithoutHardwareMfa);
    }
    let key_count = keys.len() as u32 + user.active_keys_without_ids.unwrap_or(0);
    if seal.no_access_keys && key_count > 0 {
        f.insert(Flag::BreakGlassAccessKey);
    }
    if seal.password && user.password == Password::NotConfigured {
        f.insert(Flag::BreakGlassWithoutPassword);
    }
    if seal.no_other_credentials && others.is_some_and(|n| n > 0) {
        f.insert(Flag::BreakGlassOtherCredential);
    }
    f
}

fn days(now: DateTime<Utc>, t: DateTime<Utc>) -> i64 {
    (now - t).num_days()
}

/// Unused for `limit` days: last used that long ago, or never used and the credential is that old.
fn idle(
    now: DateTime<Utc>,
    last_used: Option<DateTime<Utc>>,
    set: Option<DateTime<Utc>>,
    limit: i64,
) -> bool {
    match last_used {
        Some(t) => days(now, t) >= limit,
        None => set.is_some_and(|s| days(now, s) >= limit),
    }
}

/// The flags of one key (its own checks, not its user's).
pub fn key_flags(user: &UserFacts, key: &KeyFacts, now: DateTime<Utc>, t: Thresholds) -> Flags {
    let mut f = Flags::default();
    if !key.active {
        return f;
    }
    if key
        .created
        .is_some_and(|c| days(now, c) > t.key_max_age_days)
    {
        f.insert(Flag::KeyOlderThan90d);
    }
    // An unknown last use is no verdict.
    if key.last_used != LastUse::Unknown {
        if idle(now, key.last_used.date(), key.created, t.unused_days) {
            f.insert(Flag::KeyUnused);
        }
        // A key never used, of a user who signs in to the console: the root user always can.
        if key.last_used == LastUse::Never && (user.password == Password::Configured || user.root) {
            f.insert(Flag::KeyCreatedWithUser);
        }
    }
    f
}

/// `api_key_user`: an IAM user whose only long-term credentials are service-specific ones (the Bedrock and
/// CloudWatch consoles make such a user to hold an API key): at least one, no console password, no access
/// key (active or not), no signing certificate, and no SSH public key where those were listed. Judged only
/// where the password, the certificates and the service-specific credentials were read.
pub fn api_key_user(user: &UserFacts, keys: usize, others: OtherCredentials) -> bool {
    !user.root
        && user.password == Password::NotConfigured
        && user.active_keys_without_ids.unwrap_or(0) == 0
        && keys == 0
        && others.service_specific.is_some_and(|n| n > 0)
        && others.signing_certificates == Some(0)
        && others.ssh_public_keys.is_none_or(|n| n == 0)
}

/// The flags of the user itself (not of its keys).
pub fn user_flags(user: &UserFacts, keys: &[KeyFacts], now: DateTime<Utc>, t: Thresholds) -> Flags {
    let mut f = Flags::default();
    let active =
        keys.iter().filter(|k| k.active).count() as u32 + user.active_keys_without_ids.unwrap_or(0);
    if user.root {
        if active > 0 {
            f.insert(Flag::RootAccessKey);
        }
        if user.org_root_access_off {
            f.insert(Flag::RootAccessNotCentralized);
        }
        // Central management of root credentials removes none that exist: a member's root user with a
        // password (or one that may have one) or a key still needs MFA (CIS v6.0 2.4 passes on MFA or no
        // password). Only a root user known to have neither is left alone.
        let sealed =
            user.centralized_root && user.password == Password::NotConfigured && active == 0;
        if !sealed {
            match user.mfa_active {
                Some(false) => {
                    f.insert(Flag::RootWithoutMfa);
                    f.insert(Flag::RootWithoutHardwareMfa);
                }
                Some(true) if user.mfa == Mfa::Virtual => f.insert(Flag::RootWithoutHardwareMfa),
                _ => {}
            }
        }
        return f;
    }
    if user.password == Password::Configured {
        if user.mfa_active == Some(false) {
            f.insert(Flag::ConsoleWithoutMfa);
        }
        if idle(
            now,
            user.password_last_used,
            user.password_set.or(user.created),
            t.unused_days,
        ) {
            f.insert(Flag::PasswordUnused);
        }
    }
    if active >= 2 {
        f.insert(Flag::TwoActiveKeys);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::LastUsed;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 5, 15, 30, 22).unwrap()
    }
    fn ago(d: i64) -> Option<DateTime<Utc>> {
        Some(now() - chrono::Duration::days(d))
    }
    const T: Thresholds = Thresholds {
        unused_days: 45,
        key_max_age_days: 90,
        short_lived_days: 7,
    };
    fn console(mfa: Option<bool>) -> UserFacts {
        UserFacts {
            root: false,
            created: ago(400),
            password: Password::Configured,
            password_last_used: ago(1),
            password_set: ago(400),
            mfa_active: mfa,
            mfa: if mfa == Some(true) {
                Mfa::Virtual
            } else {
                Mfa::None
            },
            active_keys_without_ids: None,
            centralized_root: false,
            org_root_access_off: false,
        }
    }
    fn key(created: i64, used: Option<i64>) -> KeyFacts {
        KeyFacts {
            active: true,
            created: ago(created),
            last_used: match used {
                Some(d) => LastUse::Used(LastUsed {
                    date: ago(d).unwrap(),
                    service: "s3".into(),
                    region: "us-east-1".into(),
                    days_since: d,
                }),
                None => LastUse::Never,
            },
        }
    }

    // Story: the console made a user to hold one API key; a user who also signs in, holds a key or a
    // certificate, or whose credentials were not read, is not such a user.
    #[test]
    fn an_api_key_user_holds_service_specific_credentials_alone() {
        let keyless = UserFacts {
            password: Password::NotConfigured,
            password_last_used: None,
            ..console(None)
        };
        let one = OtherCredentials {
            service_specific: Some(1),
            ssh_public_keys: None,
            signing_certificates: Some(0),
        };
        assert!(api_key_user(&keyless, 0, one));
        assert!(!api_key_user(&keyless, 1, one), "an access key");
        assert!(!api_key_user(&console(None), 0, one), "a console password");
        let none = OtherCredentials {
            service_specific: Some(0),
            ..one
        };
        assert!(!api_key_user(&keyless, 0, none), "no credential at all");
        for other in [
            OtherCredentials {
                signing_certificates: Some(1),
                ..one
            },
            OtherCredentials {
                ssh_public_keys: Some(1),
                ..one
            },
            OtherCredentials {
                signing_certificates: None,
                ..one
            },
            OtherCredentials {
                service_specific: None,
                ..one
            },
        ] {
            assert!(!api_key_user(&keyless, 0, other), "{other:?}");
        }
        let unknown = UserFacts {
            password: Password::Unknown,
            ..keyless
        };
        assert!(!api_key_user(&unknown, 0, one), "the password unknown");
    }

    #[test]
    fn key_checks_count_never_used_once_the_key_is_old_enough() {
        let u = console(Some(true));
        assert_eq!(key_flags(&u, &key(10, Some(1)), now(), T).cell(), "");
        assert_eq!(
            key_flags(&u, &key(91, Some(1)), now(), T).cell(),
            "key_older_than_90d"
        );
        assert_eq!(key_flags(&u, &key(90, Some(1)), now(), T).cell(), "");
        assert_eq!(
            key_flags(&u, &key(100, Some(45)), now(), T).cell(),
            "key_unused_45d;key_older_than_90d"
        );
        // Never used: a console user's key set up with the user; unused once 45 days old.
        assert_eq!(
            key_flags(&u, &key(44, None), now(), T).cell(),
            "key_created_with_user"
        );
        assert_eq!(
            key_flags(&u, &key(45, None), now(), T).cell(),
            "key_created_with_user;key_unused_45d"
        );
        let mut programmatic = u.clone();
        programmatic.password = Password::NotConfigured;
        assert_eq!(
            key_flags(&programmatic, &key(45, None), now(), T).cell(),
            "key_unused_45d"
        );
        let mut inactive = key(400, None);
        inactive.active = false;
        assert_eq!(key_flags(&u, &inactive, now(), T).cell(), "");
        let mut unknown = key(10, None);
        unknown.last_used = LastUse::Unknown;
        assert_eq!(key_flags(&u, &unknown, now(), T).cell(), "");
    }

    #[test]
    fn user_checks() {
        assert_eq!(user_flags(&console(Some(true)), &[], now(), T).cell(), "");
        assert_eq!(
            user_flags(&console(Some(false)), &[], now(), T).cell(),
            "console_without_mfa"
        );
        assert_eq!(
            user_flags(&console(None), &[], now(), T).cell(),
            "",
            "unknown MFA is no verdict"
        );
        let mut idle = console(Some(true));
        idle.password_last_used = None;
        assert_eq!(
            user_flags(&idle, &[], now(), T).cell(),
            "password_unused_45d"
        );
        idle.password_set = ago(3);
        assert_eq!(
            user_flags(&idle, &[], now(), T).cell(),
            "",
            "a new password, not yet used"
        );
        let keys = [key(1, Some(1)), key(1, Some(1))];
        assert_eq!(
            user_flags(&console(Some(true)), &keys, now(), T).cell(),
            "two_active_keys"
        );
    }

    #[test]
    fn root_checks_and_centralized_root_access() {
        let mut root = UserFacts {
            root: true,
            created: None,
            password: Password::Unknown,
            password_last_used: None,
            password_set: None,
            mfa_active: Some(false),
            mfa: Mfa::None,
            active_keys_without_ids: Some(1),
            centralized_root: false,
            org_root_access_off: false,
        };
        assert_eq!(
            user_flags(&root, &[], now(), T).cell(),
            "root_access_key;root_without_mfa;root_without_hardware_mfa"
        );
        // Centralized root access removes no credential: a root user with a key still needs MFA …
        root.centralized_root = true;
        assert_eq!(
            user_flags(&root, &[], now(), T).cell(),
            "root_access_key;root_without_mfa;root_without_hardware_mfa"
        );
        // … and one with a password …
        root.active_keys_without_ids = Some(0);
        root.password = Password::Configured;
        assert_eq!(
            user_flags(&root, &[], now(), T).cell(),
            "root_without_mfa;root_without_hardware_mfa"
        );
        // … but one with neither has nothing to protect.
        root.password = Password::NotConfigured;
        assert_eq!(user_flags(&root, &[], now(), T).cell(), "");
        root.password = Password::Unknown;
        assert_eq!(
            user_flags(&root, &[], now(), T).cell(),
            "root_without_mfa;root_without_hardware_mfa",
            "a password that may be there is not proof of none"
        );
        root.centralized_root = false;
        root.active_keys_without_ids = Some(1);
        root.active_keys_without_ids = Some(0);
        root.mfa_active = Some(true);
        root.mfa = Mfa::Virtual;
        assert_eq!(
            user_flags(&root, &[], now(), T).cell(),
            "root_without_hardware_mfa"
        );
        root.mfa = Mfa::Hardware;
        assert_eq!(user_flags(&root, &[], now(), T).cell(), "");
        root.mfa_active = None;
        assert_eq!(
            user_flags(&root, &[], now(), T).cell(),
            "",
            "unknown is no verdict"
        );
    }

    // Story: a break-glass user kept sealed (a password never used, a FIDO key, nothing else) breaks no
    // expectation; once someone signs in, or a key appears and is used, each broken one is its own flag.
    #[test]
    fn break_glass_users_are_judged_on_each_expectation() {
        let mut sealed = console(Some(true));
        sealed.mfa = Mfa::Hardware;
        sealed.password_last_used = None;
        let since = now() - chrono::Duration::days(90);
        let judge = |u: &UserFacts, k: &[KeyFacts], o| {
            break_glass_flags(Seal::all(), u, k, o, since).cell()
        };
        assert_eq!(judge(&sealed, &[], Some(0)), "");
        assert_eq!(judge(&sealed, &[], None), "", "unread is no verdict");
        let mut used = sealed.clone();
        used.password_last_used = ago(3);
        assert_eq!(judge(&used, &[], Some(0)), "break_glass_used");
        used.password_last_used = ago(91);
        assert_eq!(judge(&used, &[], Some(0)), "", "used before the window");
        assert_eq!(
            judge(&sealed, &[key(10, Some(2))], Some(1)),
            "break_glass_used;break_glass_access_key;break_glass_other_credential"
        );
        let mut bare = sealed.clone();
        bare.password = Password::NotConfigured;
        bare.mfa = Mfa::Virtual;
        assert_eq!(
            judge(&bare, &[], Some(0)),
            "break_glass_without_hardware_mfa;break_glass_without_password"
        );
        bare.mfa = Mfa::Unknown;
        bare.password = Password::Unknown;
        assert_eq!(judge(&bare, &[], Some(0)), "");
        let mut only_mfa = Seal::default();
        assert!(only_mfa.add("hardware_mfa") && !only_mfa.add("sealed"));
        assert_eq!(
            break_glass_flags(only_mfa, &sealed, &[key(10, Some(2))], Some(1), since).cell(),
            ""
        );
    }

    // Story: the root user's keys are judged under every requirement they fail, as CIS's audit procedures
    // read the whole credential report: a 400-day-old root key never used fails 1.11, 1.12 and 1.14
    // besides 1.4 (which `user_flags` raises).
    #[test]
    fn root_keys_fail_every_requirement_they_fail() {
        let root = UserFacts {
            root: true,
            created: ago(1500),
            password: Password::Unknown,
            password_last_used: None,
            password_set: None,
            mfa_active: Some(true),
            mfa: Mfa::Hardware,
            active_keys_without_ids: Some(0),
            centralized_root: false,
            org_root_access_off: false,
        };
        assert_eq!(
            key_flags(&root, &key(400, None), now(), T).cell(),
            "key_created_with_user;key_unused_45d;key_older_than_90d"
        );
        assert_eq!(key_flags(&root, &key(10, Some(1)), now(), T).cell(), "");
        assert_eq!(
            user_flags(&root, &[key(400, None)], now(), T).cell(),
            "root_access_key"
        );
    }
}
