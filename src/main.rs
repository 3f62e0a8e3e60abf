//! `iam-audit`: parse the command line, run the audit, exit with the code of design §2.

mod cli;

/// glibc's malloc was a third of the auditor's CPU time (perf, 1,000 accounts: `_int_malloc`, `_int_free`,
/// `malloc_consolidate` and arena-lock futex waits): the SDK allocates a great deal per request, from
/// two threads at once. mimalloc's thread-local free lists take most of that away.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Give freed memory back at once instead of after 10 ms, and commit arena memory on demand: with the
/// defaults mimalloc kept ~18 MB more resident at 1,000 accounts (79 MB against glibc's 60 MB); with these,
/// 62 MB at 50% more API calls per CPU-second. Numbers from `mi_option_t` in libmimalloc-sys 0.1.49's
/// c_src/mimalloc/v3/include/mimalloc.h (the version is pinned in Cargo.toml).
fn tune_allocator() {
    const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: plain setters of mimalloc's global options and of this process's THP flag, called before
    // any thread is started.
    unsafe {
        #[cfg(target_os = "linux")]
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
}

use clap::Parser;

fn main() -> std::process::ExitCode {
    tune_allocator();
    let cli = cli::Cli::parse();
    // One thread: the auditor waits on quotas and the network, and its CPU work per call is ~100 µs.
    // Two worker threads spent a third of the CPU waking each other (futex and eventfd wake-ups in perf);
    // one thread did the same run with 30% fewer CPU-seconds per call (README: Performance).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = runtime.block_on(async move {
        match cli.command {
            Some(cli::Command::Audit(args)) => cli::audit(*args).await,
            Some(cli::Command::Check(args)) => cli::check(*args).await,
            #[cfg(feature = "sim")]
            Some(cli::Command::Demo(args)) => cli::demo(args).await,
            None => cli::audit(cli.audit).await,
        }
    });
    std::process::ExitCode::from(code as u8)
}
