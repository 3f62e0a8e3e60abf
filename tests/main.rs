//! The one integration test binary (one link, as ripgrep does). Each module is a story a user would notice.

mod alerts;
mod architecture;
mod cli;
mod credentials;
mod deploy;
mod exceptions;
mod findings;
mod lambda;
mod listing;
mod moto_org;
mod other_credentials;
mod policies;
mod root;
mod s3;
mod security_hub;
mod sim_engine;
mod support;
