//! SIGINT and SIGTERM, wired to the run's `Shutdown`: the first stops starting accounts and gives the
//! running ones the grace period; the second ends the grace (they are closed as partial, the files still
//! flushed); a third exits at once. On Unix both signals are watched; elsewhere Ctrl-C stands for SIGINT.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Exit code of a run stopped by SIGINT (design §2).
pub const EXIT_SIGINT: i32 = 130;
/// Exit code of a run stopped by SIGTERM.
pub const EXIT_SIGTERM: i32 = 143;

/// SIGINT and SIGTERM, watched from before the run starts (a signal before the watch would kill the
/// process with nothing flushed).
struct Signals {
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn watch() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Signals {
                int: signal(SignalKind::interrupt()).ok(),
                term: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The next SIGINT or SIGTERM, as its exit code.
    #[cfg(unix)]
    async fn next(&mut self) -> i32 {
        async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            _ = recv(&mut self.int) => EXIT_SIGINT,
            _ = recv(&mut self.term) => EXIT_SIGTERM,
        }
    }

    /// The next Ctrl-C (no SIGTERM outside Unix).
    #[cfg(not(unix))]
    async fn next(&mut self) -> i32 {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        EXIT_SIGINT
    }
}

/// Watch the signals for the run of `shutdown`; the returned cell holds the first signal's exit code
/// (0 while none came).
pub fn watch(shutdown: iam_audit::Shutdown, grace: Duration) -> Arc<AtomicI32> {
    let signalled = Arc::new(AtomicI32::new(0));
    let code = signalled.clone();
    let mut signals = Signals::watch();
    tokio::spawn(async move {
        let first = signals.next().await;
        code.store(first, Ordering::SeqCst);
        let name = if first == EXIT_SIGTERM {
            "SIGTERM"
        } else {
            "SIGINT"
        };
        tracing::warn!(
            "{name}: no new accounts are started; running ones get {} s to finish, then are closed as partial; the reports are flushed (signal again to stop them now)",
            grace.as_secs()
        );
        shutdown.stop_starting.cancel();
        tokio::select! {
            _ = tokio::time::sleep(grace) => {}
            _ = signals.next() => {
                tracing::warn!("second signal: running accounts are closed as partial now; the reports are flushed (a third signal quits without flushing)");
            }
        }
        shutdown.abort.cancel();
        signals.next().await;
        std::process::exit(first);
    });
    signalled
}
