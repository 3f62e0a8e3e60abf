//! The `api` strategy: ListUsers (every page), then per user ListAccessKeys, ListMFADevices,
//! GetLoginProfile and GetAccessKeyLastUsed per key, users side by side (`user_concurrency`); the root
//! user from GetAccountSummary. 3 + keys calls per user, always current; one ListSigningCertificates per
//! user besides, side by side with the others (it needs none of their answers, so it adds a call to the
//! user's quota but nothing to its chain of round trips), and ListSSHPublicKeys with `ssh_keys` (after
//! GetLoginProfile for `console`).

use futures::StreamExt;

use crate::pages::{PageError, Pager};
use crate::record::Source;
use crate::risk::{KeyFacts, UserFacts};
use crate::session::{utc, Part, Session};
use crate::sink::Sink;

use super::calls::{
    last_used, list_access_keys, login_profile, mfa_devices, ListedKeys, Summary, VirtualMfa,
};
use super::credentials::{Certs, Others};
use super::root;
use super::rows::{send_user, Audited, IamOutcome};

/// ListUsers page size: IAM's maximum. IAM may return fewer with IsTruncated still true.
const USERS_PAGE: i32 = 1000;

pub(crate) async fn inventory(
    session: &Session,
    sink: &Sink,
    summary: &Summary,
    virtual_mfa: &VirtualMfa,
    others: &Others,
) -> IamOutcome {
    // The root user's row waits for the account's key ledger (CloudTrail's key events, at 2 requests/s):
    // the users are read meanwhile, and their rows follow the root's.
    let (root_sent, sent) = tokio::sync::watch::channel(false);
    let root = async {
        let cells = root::from_summary(session, sink, summary, virtual_mfa, Source::Api).await;
        root_sent.send_replace(true);
        cells
    };
    let ((access, mfa), ()) = tokio::join!(root, users(session, sink, others, sent));
    IamOutcome {
        strategy: Some(Source::Api),
        credential_report_time: None,
        root_access_keys: access,
        root_mfa: mfa,
    }
}

/// ListUsers, every page, and each user audited; its rows go out once `root_sent` says the root user's
/// did.
async fn users(
    session: &Session,
    sink: &Sink,
    others: &Others,
    root_sent: tokio::sync::watch::Receiver<bool>,
) {
    let iam = session.iam();
    let mut pager = Pager::new(session.settings().keys.max_pages);
    let fetch = |marker: Option<String>| async move {
        iam.call("iam:ListUsers", |c, o| {
            c.list_users()
                .max_items(USERS_PAGE)
                .set_marker(marker.clone())
                .customize()
                .config_override(o)
                .send()
        })
        .await
        .map(|p| {
            let (more, next) = (p.is_truncated(), p.marker().map(str::to_string));
            (p, more, next)
        })
    };
    while let Some(page) = pager.next(fetch).await {
        let page = match page {
            Ok(page) => page,
            // Recorded by the call.
            Err(PageError::Failed(_)) => break,
            Err(e) => {
                session.fail(Part::Iam, "iam:ListUsers", &e.into_failure("ListUsers"));
                break;
            }
        };
        let users = page.users();
        sink.count_users(users.len() as u64);
        let alive = futures::stream::iter(users.iter().cloned())
            .map(|u| audit_user(session, sink, u, others, root_sent.clone()))
            .buffer_unordered(session.settings().keys.user_concurrency)
            .all(|sent| async move { sent })
            .await;
        if !alive {
            break;
        }
    }
}

/// Audit one user and send its rows. `false` when the writer is gone.
async fn audit_user(
    session: &Session,
    sink: &Sink,
    user: aws_sdk_iam::types::User,
    others: &Others,
    mut root_sent: tokio::sync::watch::Receiver<bool>,
) -> bool {
    let name = user.user_name();

    let keys_fut = async {
        let ListedKeys { keys, deleted, .. } = list_access_keys(session, name).await;
        let last_used = futures::future::join_all(
            keys.iter()
                .map(|k| last_used(session, k.access_key_id().unwrap_or_default())),
        )
        .await;
        (deleted, keys.into_iter().zip(last_used).collect::<Vec<_>>())
    };
    let mfa_fut = mfa_devices(session, name);
    let password_fut = login_profile(session, Some(name));
    // After GetLoginProfile: `--ssh-keys console` needs to know who signs in to the console.
    let password_then_ssh = async {
        let (password, set) = password_fut.await;
        (
            password,
            set,
            others.ssh_keys_of(session, name, password).await,
        )
    };
    let ((deleted, keys), (mfa, mfa_devices), (password, password_set, ssh), certs) = tokio::join!(
        keys_fut,
        mfa_fut,
        password_then_ssh,
        others.certificates_of(session, name, Certs::Unknown)
    );
    let other = others.assemble(session, name, certs, ssh);
    // The root user's row first (an error means its sender is gone: the root row went or never will).
    let _ = root_sent.wait_for(|sent| *sent).await;
    if deleted {
        // Listed, then deleted before its keys were read: no row (noted in the accounts report).
        return true;
    }

    let facts = UserFacts {
        root: false,
        created: utc(user.create_date()),
        password,
        password_last_used: user.password_last_used().and_then(utc),
        password_set,
        mfa_active: mfa_devices.map(|n| n > 0),
        mfa,
        active_keys_without_ids: None,
        centralized_root: false,
        org_root_access_off: false,
    };
    let keys = keys
        .into_iter()
        .map(|(k, last_used)| {
            let id = k.access_key_id().unwrap_or_default().to_string();
            let facts = KeyFacts {
                active: k.status().map(|s| s.as_str()) == Some("Active"),
                created: k.create_date().and_then(utc),
                last_used,
            };
            (Some(id), facts)
        })
        .collect();
    send_user(
        session,
        sink,
        Audited {
            name,
            arn: user.arn(),
            facts,
            keys,
            mfa_devices,
            source: Source::Api,
            note: String::new(),
            other: Some(other),
        },
    )
    .await
}
