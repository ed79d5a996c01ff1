//! The `mule` binary: parse, set up logging, run.
//!
//! Exit codes: 0 success (also when the reader of stdout went away), 1 an error (printed on
//! stderr), 2 a usage error (clap).

use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::EnvFilter;

/// Where `mule chat` logs, inside the data dir: stderr is the chat's screen.
const CHAT_LOG: &str = "chat.log";

fn main() -> std::process::ExitCode {
    let parsed = mule::cli::parse();
    let default = match parsed.cli.command {
        mule::cli::Command::Node(_) => "info",
        _ => "warn",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let writer = match parsed.cli.command {
        mule::cli::Command::Chat(_) => chat_log(parsed.cli.data_dir.clone()),
        _ => BoxMakeWriter::new(std::io::stderr),
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(!matches!(parsed.cli.command, mule::cli::Command::Chat(_)))
        .with_writer(writer);
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

/// The chat's log file, `<data-dir>/chat.log` (appended); logs are dropped if it cannot be
/// opened (the chat itself reports what matters on screen).
fn chat_log(data_dir: Option<std::path::PathBuf>) -> BoxMakeWriter {
    let file = mule::identity::data_dir(data_dir).ok().and_then(|dir| {
        std::fs::create_dir_all(&dir).ok()?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(CHAT_LOG))
            .ok()
    });
    match file {
        Some(file) => BoxMakeWriter::new(std::sync::Mutex::new(file)),
        None => BoxMakeWriter::new(std::io::sink),
    }
}
