//! iam-audit: audit IAM access keys, console passwords, MFA devices and IAM lifecycle events across every
//! account of an AWS Organization, concurrently and inside the API quotas.
//!
//! The rooms follow the data, and every arrow points down (docs/architecture.md draws them):
//!
//! - `run` (one audit, start to end; its `error` and `summary`) and `check` (permissions, no audit);
//! - `pool` (the bounded fan-out over accounts, the stopping rules, every account's closing row);
//! - `account` (one account: `iam` and `cloudtrail` side by side, within its budget);
//! - `iam` (the inventory by strategy) and `cloudtrail` (LookupEvents), which judge through `risk`;
//! - `session` (one account's credentials, paced clients, retries and tally), over `aws` (the base SDK
//!   config, one HTTP client, one STS client), `limits` (buckets, the in-flight cap), `retry`, `pages`,
//!   `stats`;
//! - `org` (the accounts and the OU tree), `sink` (where an account's rows go), `observe` (how the engine
//!   tells a watcher), `report` (the one writer and its outputs);
//! - `store` (reports to S3: a staging directory, the earlier run read back, the uploads);
//! - `send` (what leaves the machine once the files are safe: the Security Hub import and the alert);
//! - at the bottom, `record` (what auditors produce and outputs read) and `config`.

pub mod account;
pub mod aws;
pub mod check;
pub mod cloudtrail;
pub mod config;
pub mod error;
pub mod exceptions;
pub mod iam;
pub mod ledger;
pub mod limits;
pub mod observe;
pub mod org;
pub mod pages;
pub mod pool;
pub mod record;
pub mod report;
pub mod retry;
pub mod risk;
pub mod run;
pub mod send;
pub mod session;
#[cfg(feature = "sim")]
pub mod sim;
pub mod sink;
pub mod stats;
pub mod store;
pub mod summary;

pub use config::{Config, ConfigError, Settings};
pub use error::AuditError;
pub use observe::{Observer, Silent};
pub use pool::Shutdown;
pub use run::run;
pub use summary::Summary;
