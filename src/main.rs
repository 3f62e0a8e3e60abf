//! `iam-audit`: parse the command line, run the audit, exit with the code of design §2.

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
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
