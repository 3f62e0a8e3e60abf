//! The machinery behind the one definition of each setting (`config/mod.rs`): the `keys!` macro turns one
//! table line per key into the TOML file's `Config` (all `Option`s), the resolved `Keys` (defaults
//! applied), and a `Key` entry that the binary turns into a command-line flag and the tests check the
//! documents against: its name, help text, default, flag form and checks. The library itself never sees
//! clap; the binary reads `keys()`.

use std::path::PathBuf;

/// How a key's value is written on the command line and in TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A whole number (`--concurrency 64`).
    Int,
    /// A string or a path (`--region us-east-1`).
    Text,
    /// A comma-separated list (`--regions us-east-1,eu-west-1`).
    List,
    /// A flag without a value (`--all-event-sources`, `--no-ou-paths`).
    Switch,
}

/// A key's default as the documents show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultValue {
    /// As `--help` shows it: `[default: <help>]`.
    pub help: String,
    /// As config.example.toml writes it (`concurrency = 64`); `None` when the default is not a value
    /// (computed, or "unset").
    pub toml: Option<String>,
}

/// How a key is reached from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exposure {
    /// Only in the config file.
    FileOnly,
    /// A flag of `iam-audit audit`.
    Flag {
        /// `--long` (without the dashes): the key's name with `-` for `_`, or `no-…` for a switch that
        /// sets `false`.
        long: String,
        /// The placeholder of its value in `--help` (`N`, `SECS`, `R1,R2`).
        value_name: &'static str,
        /// A switch that sets `false` (`--no-ou-paths`); its own help text, since it says the opposite of
        /// the key's.
        negated: Option<&'static str>,
        /// Also a flag of `iam-audit check`.
        check: bool,
        /// Another key whose flag may not be given with this one.
        conflicts: Option<&'static str>,
        /// The only values accepted (checked by clap on the command line, by `Settings::resolve` in
        /// the file).
        choices: &'static [&'static str],
    },
}

/// What the table says of a key beyond its name, type, default and help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub exposure: Exposure,
    /// A default that is not a value, described (`[default: now]`).
    pub default_text: Option<&'static str>,
    /// Must be greater than 0 (an error naming the key otherwise).
    pub positive: bool,
}

/// A flag taking a value shown as `value_name` in `--help`.
pub fn flag(value_name: &'static str) -> Spec {
    Spec {
        exposure: Exposure::Flag {
            long: String::new(),
            value_name,
            negated: None,
            check: false,
            conflicts: None,
            choices: &[],
        },
        default_text: None,
        positive: false,
    }
}

/// A switch: `--name` sets the key to `true`.
pub fn switch() -> Spec {
    flag("")
}

/// A switch that sets the key to `false`, spelt `long` (`no-ou-paths`), with its own `help`.
pub fn negated(long: &'static str, help: &'static str) -> Spec {
    let mut s = flag("");
    if let Exposure::Flag {
        long: l, negated, ..
    } = &mut s.exposure
    {
        *l = long.to_string();
        *negated = Some(help);
    }
    s
}

/// A key of the config file only.
pub fn file_only() -> Spec {
    Spec {
        exposure: Exposure::FileOnly,
        default_text: None,
        positive: false,
    }
}

impl Spec {
    /// Also a flag of `iam-audit check`.
    pub fn check(mut self) -> Spec {
        if let Exposure::Flag { check, .. } = &mut self.exposure {
            *check = true;
        }
        self
    }

    pub fn conflicts(mut self, key: &'static str) -> Spec {
        if let Exposure::Flag { conflicts, .. } = &mut self.exposure {
            *conflicts = Some(key);
        }
        self
    }

    pub fn choices(mut self, values: &'static [&'static str]) -> Spec {
        if let Exposure::Flag { choices, .. } = &mut self.exposure {
            *choices = values;
        }
        self
    }

    pub fn default_text(mut self, text: &'static str) -> Spec {
        self.default_text = Some(text);
        self
    }

    pub fn positive(mut self) -> Spec {
        self.positive = true;
        self
    }
}

/// One setting: everything the command line, the file and the documents need to know of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// The TOML key (`user_concurrency`).
    pub name: &'static str,
    /// The help text: the table's doc comment, on one line.
    pub help: String,
    /// The flag's help, as `--help` shows it: `help` with its default, or a switch's own text.
    pub flag_help: String,
    pub kind: Kind,
    /// `None`: no default (required, or unset means "not used").
    pub default: Option<DefaultValue>,
    pub spec: Spec,
}

impl Key {
    /// Used by `keys!`: the doc lines joined, the flag's name filled in.
    pub fn new(
        name: &'static str,
        doc: &str,
        kind: Kind,
        value_default: Option<DefaultValue>,
        mut spec: Spec,
    ) -> Key {
        if let Exposure::Flag { long, .. } = &mut spec.exposure {
            if long.is_empty() {
                *long = name.replace('_', "-");
            }
        }
        let default = match spec.default_text {
            Some(text) => Some(DefaultValue {
                help: text.to_string(),
                toml: None,
            }),
            None => value_default,
        };
        let help = doc.split_whitespace().collect::<Vec<_>>().join(" ");
        let flag_help = match (&spec.exposure, &default) {
            (
                Exposure::Flag {
                    negated: Some(text),
                    ..
                },
                _,
            ) => text.to_string(),
            // A switch's default is that it is not given.
            (_, Some(d)) if kind != Kind::Switch => format!("{help} [default: {}]", d.help),
            _ => help.clone(),
        };
        Key {
            name,
            help,
            flag_help,
            kind,
            default,
            spec,
        }
    }

    /// The `--long` flag (without dashes), when the key has one.
    pub fn long(&self) -> Option<&str> {
        match &self.spec.exposure {
            Exposure::Flag { long, .. } => Some(long),
            Exposure::FileOnly => None,
        }
    }
}

/// The types a key may have, and how their values are shown.
pub trait KeyValue: Sized {
    const KIND: Kind;
    /// The literal a default is written as in the table.
    type Lit;
    fn from_lit(lit: Self::Lit) -> Self;
    /// As `--help` shows it.
    fn show(&self) -> String;
    /// As TOML writes it.
    fn toml(&self) -> String;
}

macro_rules! int_key {
    ($($t:ty),*) => {$(
        impl KeyValue for $t {
            const KIND: Kind = Kind::Int;
            type Lit = $t;
            fn from_lit(lit: $t) -> $t {
                lit
            }
            fn show(&self) -> String {
                self.to_string()
            }
            fn toml(&self) -> String {
                self.to_string()
            }
        }
        impl Count for $t {
            fn count(&self) -> Option<u64> {
                Some(*self as u64)
            }
        }
    )*};
}
int_key!(u32, u64, usize);

impl KeyValue for bool {
    const KIND: Kind = Kind::Switch;
    type Lit = bool;
    fn from_lit(lit: bool) -> bool {
        lit
    }
    fn show(&self) -> String {
        self.to_string()
    }
    fn toml(&self) -> String {
        self.to_string()
    }
}

impl KeyValue for String {
    const KIND: Kind = Kind::Text;
    type Lit = &'static str;
    fn from_lit(lit: &'static str) -> String {
        lit.to_string()
    }
    fn show(&self) -> String {
        self.clone()
    }
    fn toml(&self) -> String {
        format!("{self:?}")
    }
}

impl KeyValue for PathBuf {
    const KIND: Kind = Kind::Text;
    type Lit = &'static str;
    fn from_lit(lit: &'static str) -> PathBuf {
        PathBuf::from(lit)
    }
    fn show(&self) -> String {
        self.display().to_string()
    }
    fn toml(&self) -> String {
        format!("{:?}", self.display().to_string())
    }
}

impl KeyValue for Vec<String> {
    const KIND: Kind = Kind::List;
    type Lit = &'static [&'static str];
    fn from_lit(lit: &'static [&'static str]) -> Vec<String> {
        lit.iter().map(|s| s.to_string()).collect()
    }
    fn show(&self) -> String {
        self.join(", ")
    }
    fn toml(&self) -> String {
        let items: Vec<String> = self.iter().map(|s| format!("{s:?}")).collect();
        format!("[{}]", items.join(", "))
    }
}

/// A resolved key's value as a number, for the `positive` check (`None`: not a number, or unset).
pub trait Count {
    fn count(&self) -> Option<u64> {
        None
    }
}
impl Count for bool {}
impl Count for String {}
impl Count for PathBuf {}
impl Count for Vec<String> {}
impl<T: Count> Count for Option<T> {
    fn count(&self) -> Option<u64> {
        self.as_ref().and_then(Count::count)
    }
}

/// The resolved type of a key: its own type with a default, an `Option` without.
macro_rules! resolved_type {
    ($ty:ty) => { Option<$ty> };
    ($ty:ty, $default:expr) => { $ty };
}

/// The resolved value of a key.
macro_rules! resolved_value {
    ($v:expr, $ty:ty) => {
        $v
    };
    ($v:expr, $ty:ty, $default:expr) => {
        $v.unwrap_or_else(|| <$ty as $crate::config::key::KeyValue>::from_lit($default))
    };
}

/// A key's default value as the documents show it.
macro_rules! value_default {
    ($ty:ty) => {
        None
    };
    ($ty:ty, $default:expr) => {{
        let v = <$ty as $crate::config::key::KeyValue>::from_lit($default);
        Some($crate::config::key::DefaultValue {
            help: $crate::config::key::KeyValue::show(&v),
            toml: Some($crate::config::key::KeyValue::toml(&v)),
        })
    }};
}

/// The one definition of every setting. Each line:
///
/// ```text
/// /// Help text (the flag's, and the key's documentation).
/// name: Type = default, spec;
/// ```
///
/// where `= default` is optional (no default: the resolved key is an `Option`) and `spec` is an expression
/// building a `Spec` (`flag("N").check()`, `switch()`, `negated("no-ou-paths")`, `file_only()`, …).
macro_rules! keys {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident : $ty:ty $(= $default:expr)? , $spec:expr ;
    )*) => {
        /// Every tunable of an audit, as the TOML file and the command line give it: each is optional.
        /// Merged `cli.or(file)`, then resolved into `Settings`.
        #[derive(Debug, Clone, Default, serde::Deserialize, PartialEq)]
        #[serde(deny_unknown_fields)]
        pub struct Config {
            $( $(#[doc = $doc])* pub $name: Option<$ty>, )*
        }

        impl Config {
            /// Precedence: `self` (the command line) over `file`, key by key.
            pub fn or(self, file: Config) -> Config {
                Config { $( $name: self.$name.or(file.$name), )* }
            }
        }

        /// The keys with their defaults applied: a key with a default has its type, a key without one
        /// stays an `Option`.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Keys {
            $( $(#[doc = $doc])* pub $name: $crate::config::key::resolved_type!($ty $(, $default)?), )*
        }

        impl Keys {
            fn from_config(c: Config) -> Keys {
                Keys { $( $name: $crate::config::key::resolved_value!(c.$name, $ty $(, $default)?), )* }
            }

            /// Each key's value as a number, for the `positive` checks.
            fn counts(&self) -> Vec<(&'static str, Option<u64>)> {
                vec![ $( (stringify!($name), $crate::config::key::Count::count(&self.$name)), )* ]
            }
        }

        /// Every key, in the table's order: the binary's flags, and what the documents are checked against.
        /// Built once: the flags of three commands and the settings' checks all read it.
        pub fn keys() -> &'static [$crate::config::key::Key] {
            static KEYS: std::sync::OnceLock<Vec<$crate::config::key::Key>> =
                std::sync::OnceLock::new();
            KEYS.get_or_init(|| vec![ $(
                $crate::config::key::Key::new(
                    stringify!($name),
                    concat!($($doc, "\n"),*),
                    <$ty as $crate::config::key::KeyValue>::KIND,
                    $crate::config::key::value_default!($ty $(, $default)?),
                    $spec,
                ),
            )* ])
        }
    };
}

pub(crate) use {keys, resolved_type, resolved_value, value_default};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_show_as_help_and_as_toml() {
        let list = Vec::<String>::from_lit(&["a", "b"]);
        assert_eq!(
            (list.show(), list.toml()),
            ("a, b".into(), "[\"a\", \"b\"]".into())
        );
        let s = String::from_lit("us-east-1");
        assert_eq!(
            (s.show(), s.toml()),
            ("us-east-1".into(), "\"us-east-1\"".into())
        );
        assert_eq!(PathBuf::from_lit(".").toml(), "\".\"");
        assert_eq!(Some(3usize).count(), Some(3));
        assert_eq!(None::<u32>.count(), None);
    }

    #[test]
    fn a_key_names_its_flag_and_its_default() {
        let k = Key::new(
            "user_concurrency",
            " Users audited at once\n inside one account.\n",
            Kind::Int,
            Some(DefaultValue {
                help: "4".into(),
                toml: Some("4".into()),
            }),
            flag("N"),
        );
        assert_eq!(k.long(), Some("user-concurrency"));
        assert_eq!(
            k.flag_help,
            "Users audited at once inside one account. [default: 4]"
        );
        let n = Key::new(
            "ou_paths",
            " x",
            Kind::Switch,
            None,
            negated("no-ou-paths", "Do not"),
        );
        assert_eq!(
            (n.long(), n.flag_help.as_str()),
            (Some("no-ou-paths"), "Do not")
        );
        assert_eq!(
            Key::new("max_pages", "", Kind::Int, None, file_only()).long(),
            None
        );
    }
}
