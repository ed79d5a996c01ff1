//! The `mule` binary: parse, set up logging, run.
//!
//! Exit codes: 0 success (also when the reader of stdout went away), 1 an error (printed on
//! stderr), 2 a usage error (clap).

use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let parsed = mule::cli::parse();
    let default = match parsed.cli.command {
        mule::cli::Command::Node(_) => "info",
        _ => "warn",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match parsed.cli.log_format {
        mule::cli::LogFormat::Plain => logs.init(),
        mule::cli::LogFormat::Json => logs.json().init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mule: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(mule::cli::run(parsed)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // `mule list | head -1`: the reader had enough; like any Unix tool, stop quietly.
        Err(e) if e.is::<mule::cli::StdoutClosed>() => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mule: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
