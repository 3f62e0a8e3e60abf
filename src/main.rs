//! `iam-audit`: parse the command line, run the command, exit with the code of design §2.

mod cli;

/// glibc's malloc was a third of the auditor's CPU time (perf, 1,000 accounts: `_int_malloc`, `_int_free`,
/// `malloc_consolidate` and arena-lock futex waits): the SDK allocates a great deal per request, from
/// two threads at once. mimalloc's thread-local free lists take most of that away.
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(all(mimalloc_options, not(feature = "system-alloc")))]
extern "C" {
    /// Sets mimalloc's options by their names in mimalloc.h (src/mimalloc_options.c, built by build.rs).
    fn iam_audit_tune_mimalloc();
}

/// Give freed memory back at once, and commit arena memory on demand: for the same CPU, 14-16% less memory
/// stays resident (docs/performance.md). Transparent huge pages are off: mimalloc's `no_thp` feature stops
/// it asking for them, and the process opts out where the system grants them to every mapping.
fn tune_allocator() {
    // SAFETY: two setters of mimalloc's global options and this process's THP flag, called before any
    // other thread exists.
    unsafe {
        #[cfg(target_os = "linux")]
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        #[cfg(all(mimalloc_options, not(feature = "system-alloc")))]
        iam_audit_tune_mimalloc();
    }
}

use clap::Parser;
use cli::args::{Cli, Command};

fn main() -> std::process::ExitCode {
    tune_allocator();
    // In AWS Lambda (provided.al2023) the invocations say what to do, not the command line.
    #[cfg(feature = "lambda")]
    if let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .init();
        let code = runtime.block_on(cli::lambda::serve(api));
        return std::process::ExitCode::from(code as u8);
    }
    let cli = Cli::parse();
    // One thread: the auditor waits on quotas and the network, and its CPU work per call is ~100 µs.
    // Two worker threads spent a third of the CPU waking each other (futex and eventfd wake-ups in perf);
    // one thread did the same run with 30% fewer CPU-seconds per call (docs/performance.md). The writer
    // has a thread of its own.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = runtime.block_on(async move {
        match cli.command {
            Some(Command::Audit(args)) => cli::audit(*args).await,
            Some(Command::Check(args)) => cli::check(*args).await,
            #[cfg(feature = "sim")]
            Some(Command::Demo(args)) => cli::demo::demo(args).await,
            Some(Command::Diff(args)) => cli::diff(args),
            Some(Command::Exceptions(cli::args::ExceptionsCommand::Check(args))) => {
                cli::exceptions::check(&args)
            }
            Some(Command::Completions { shell }) => cli::completions(shell),
            Some(Command::Man) => cli::man(),
            None => cli::audit(cli.audit).await,
        }
    });
    std::process::ExitCode::from(code as u8)
}
