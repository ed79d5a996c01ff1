//! The `mule` command line: one file per subcommand. Errors become `anyhow` here and nowhere else.

mod cert;
pub mod chat;
pub mod config;
mod group;
mod id;
mod messages;
mod node;
mod progress;
mod pull;
mod robot;
mod send;
mod status;
mod trust;

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Prints a line on stdout; a closed stdout (`mule list | head -1`) ends the command quietly
/// instead of panicking. Use it for every line a command prints on stdout.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::print_line(format_args!($($arg)*))?
    };
}
pub(crate) use out;

/// The reader of our stdout went away: not an error of ours, the command just stops.
#[derive(Debug, thiserror::Error)]
#[error("stdout was closed")]
pub struct StdoutClosed;

/// Writes one line to stdout (see [`out!`]).
pub(crate) fn print_line(args: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_fmt(args)
        .and_then(|()| stdout.write_all(b"\n"))
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        other => Ok(other?),
    }
}

/// How log lines look on stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Plain,
    /// One JSON object per event (for services and log collectors).
    Json,
}

/// mule: a delay-tolerant peer-to-peer messenger.
#[derive(Debug, Parser)]
#[command(name = "mule", version, about, long_about = None)]
pub struct Cli {
    /// Where the identity, the store and the control socket live
    /// [default: the platform data dir, e.g. ~/.local/share/mule].
    #[arg(long, global = true, env = crate::identity::DATA_DIR_ENV)]
    pub data_dir: Option<PathBuf>,
    /// Node settings file [default: <data-dir>/config.toml if it exists].
    // The doc comment is also the `--help` text, where `<data-dir>` reads right.
    #[allow(rustdoc::invalid_html_tags)]
    #[arg(long, global = true, env = "MULE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// No progress bars or spinners (they are drawn only when stderr is a terminal anyway).
    #[arg(long, short, global = true, env = "MULE_QUIET")]
    pub quiet: bool,
    /// Log format on stderr (`RUST_LOG` sets the level).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Plain)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node until Ctrl-C / SIGTERM.
    Node(node::Args),
    /// Chat in a terminal UI, running a node (a group's chat by default; /help inside).
    Chat(chat::Args),
    /// A headless node that answers pings and talks on `!talk` until `!hush` (demos, soak tests).
    Robot(robot::Args),
    /// Send a message (through the running node, or stored for it to relay when started).
    Send(send::Args),
    /// Messages addressed to this node or to everyone.
    Inbox(messages::InboxArgs),
    /// Every message this node holds (the relay view).
    List(messages::Args),
    /// Peers, selection, queues and counters of the running node.
    Status(status::Args),
    /// Pull what a peer (a data mule) carries and this node lacks.
    Pull(pull::Args),
    /// This node's peer id, public key and names (creating the identity if there is none).
    Id(id::Args),
    /// Trusted roots: the keys whose certificates give names this node believes.
    Trust(trust::Args),
    /// Certificates: name other nodes, and attach names to this one.
    Cert(cert::Args),
    /// Group keys: create a group, list them, invite a member.
    Group(group::Args),
    /// Node settings: `mule config show` prints the effective ones and their sources.
    Config(config::Args),
}

/// A parsed command line, with the config file applied (see [`config`]).
#[derive(Debug)]
pub struct Parsed {
    /// The command line.
    pub cli: Cli,
    /// The settings the config file supplied.
    pub from_file: Vec<String>,
    /// Clap's matches, to tell where each setting came from.
    pub matches: clap::ArgMatches,
}

/// Parses `std::env::args_os()` with the config file applied; exits on a usage error (code 2).
pub fn parse() -> Parsed {
    match config::parse(std::env::args_os().collect()) {
        Ok(parsed) => parsed,
        Err(e) => e.exit(),
    }
}

/// Runs the parsed command line.
pub async fn run(parsed: Parsed) -> anyhow::Result<()> {
    let Parsed {
        cli,
        from_file,
        matches,
    } = parsed;
    let data_dir = crate::identity::data_dir(cli.data_dir)?;
    match cli.command {
        Command::Config(config::Args {
            command: config::ConfigCommand::Show { json, .. },
        }) => {
            let node = matches
                .subcommand_matches("config")
                .and_then(|m| m.subcommand_matches("show"))
                .ok_or_else(|| anyhow::anyhow!("no settings to show"))?;
            config::show(node, &from_file, json)
        }
        Command::Node(args) => node::run(data_dir, args, cli.quiet).await,
        Command::Chat(args) => chat::run(data_dir, args).await,
        Command::Robot(args) => robot::run(data_dir, args).await,
        Command::Send(args) => send::run(data_dir, args, cli.quiet).await,
        Command::Inbox(args) => messages::inbox(data_dir, args).await,
        Command::List(args) => messages::run(data_dir, args, messages::Which::All).await,
        Command::Status(args) => status::run(data_dir, args).await,
        Command::Pull(args) => pull::run(data_dir, args, cli.quiet).await,
        Command::Id(args) => id::run(data_dir, args).await,
        Command::Trust(args) => trust::run(data_dir, args).await,
        Command::Cert(args) => cert::run(data_dir, args).await,
        Command::Group(args) => group::run(data_dir, args).await,
    }
}

/// The identity and store of a data dir, opened directly because no node is running there.
async fn open_offline(
    data_dir: &std::path::Path,
) -> anyhow::Result<(crate::identity::Identity, crate::store::Store)> {
    let dir = data_dir.to_owned();
    let identity =
        tokio::task::spawn_blocking(move || crate::identity::Identity::load_or_create(&dir))
            .await??;
    // The node's quota is not known here (it comes from its flags, environment or config
    // file): a default one could evict what a node with a larger quota keeps. So nothing is
    // evicted here; the node enforces its quota on the next message once it runs.
    let config = crate::store::Config {
        own_key: Some(identity.public_key()),
        max_bytes: u64::MAX,
        ..Default::default()
    };
    let store = crate::store::Store::open(data_dir.join("store"), config).await?;
    Ok((identity, store))
}
