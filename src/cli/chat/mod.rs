//! `mule chat`: a terminal chat over a node run in-process (the node keeps serving the control
//! socket, so `mule status` and `mule send` work beside it).
//!
//! - [`scope`]: who the chat talks to (a group by default).
//! - [`command`]: what a typed line asks for (pure).
//! - [`app`]: the chat's state (pure: events in, commands out).
//! - [`render`]: draws the state with ratatui.
//! - `term`: the terminal threads (key reader, UI loop), so the node's tokio workers never wait
//!   for the terminal.
//! - `session`: the node side, on tokio: posts, pings, shares, arrivals, status.

pub mod app;
pub mod command;
pub mod render;
pub mod scope;
mod session;
mod term;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::content::groups::{GroupName, Groups};
use crate::control::{client, Request};
use scope::Scope;

/// Capacity of the UI's event channel (the session hands overflow to a blocking thread).
const UI_EVENTS: usize = 1024;
/// How long the chat waits for the node's first listen address before opening.
const LISTEN_WAIT: Duration = Duration::from_secs(5);
/// Capacity of the commands the UI hands to the session (a person types them).
const COMMANDS: usize = 64;

/// Options of `mule chat`.
#[derive(Debug, clap::Args)]
// Flattened beside `mule node`'s own `Args`: no group named after the struct.
#[group(skip)]
pub struct Args {
    /// Who the chat talks to.
    #[command(flatten)]
    scope: scope::Args,
    /// How long each message is worth carrying (e.g. 30m, 24h, 7d).
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    lifespan: Duration,
    /// The node's settings, as `mule node` takes them.
    #[command(flatten)]
    node: super::node::Args,
}

/// The chat's scope from `--to` / `--group` and the groups `data_dir` holds.
pub(super) async fn scope_of(data_dir: &Path, args: scope::Args) -> anyhow::Result<Scope> {
    let scope::Args { to, group } = args;
    let dir = data_dir.to_owned();
    let held = tokio::task::spawn_blocking(move || Groups::at(&dir).list()).await??;
    let names: Vec<GroupName> = held.into_iter().map(|g| g.name).collect();
    if let Some(g) = &group {
        anyhow::ensure!(
            names.contains(g),
            "this node holds no key for group {g}: `mule group new {g}`, or ask a member for an invite"
        );
    }
    Ok(Scope::choose(to, group, &names)?)
}

/// Refuses to start a second node on a data dir whose node runs already.
pub(super) async fn refuse_if_running(data_dir: &Path, what: &str) -> anyhow::Result<()> {
    match client::call(data_dir, &Request::Status).await {
        Err(client::Error::NotRunning(_)) => Ok(()),
        _ => anyhow::bail!(
            "a node already runs with data dir {}: stop it first, or start `mule {what}` with \
             another --data-dir",
            data_dir.display()
        ),
    }
}

pub(super) async fn run(data_dir: PathBuf, args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        std::io::stdout().is_terminal() && std::io::stdin().is_terminal(),
        "mule chat needs a terminal; in scripts use `mule send` and `mule inbox`, or `mule robot`"
    );
    refuse_if_running(&data_dir, "chat").await?;
    let scope = scope_of(&data_dir, args.scope).await?;
    let running = super::node::Running::start(&data_dir, args.node).await?;
    let node = running.node.clone();

    let mut app = app::App::new(scope.label());
    app.me = node.peer_id().to_string();
    app.info(format!(
        "you are {} · times are UTC · /help lists the commands",
        node.peer_id()
    ));
    // Addresses bound later show as they come (the session follows the node's events).
    node.wait_listening(LISTEN_WAIT).await;
    for addr in node.listen_addrs() {
        app.info(format!("listening on {addr}"));
    }
    if let Some(warning) = scope.warning() {
        app.warn(warning);
    }
    let (ui_tx, ui_rx) = std::sync::mpsc::sync_channel(UI_EVENTS);
    let (cmd_tx, cmd_rx) = tokio::sync::mpsc::channel(COMMANDS);
    let stop_keys = Arc::new(AtomicBool::new(false));
    let keys = {
        let (tx, stop) = (ui_tx.clone(), stop_keys.clone());
        std::thread::Builder::new()
            .name("chat-keys".into())
            .spawn(move || term::read_keys(tx, stop))
            .context("cannot start the key reader")?
    };
    let ui = std::thread::Builder::new()
        .name("chat-ui".into())
        .spawn(move || term::run(app, ui_rx, cmd_tx))
        .context("cannot start the chat UI")?;
    let session = session::Session {
        node,
        scope,
        lifespan: args.lifespan,
        ui: ui_tx,
    };
    let outcome = session.run(cmd_rx).await;
    tracing::info!("chat session ended");
    stop_keys.store(true, Ordering::Relaxed);
    let shown = tokio::task::spawn_blocking(move || {
        let shown = ui.join();
        tracing::info!("chat screen closed");
        let _ = keys.join();
        shown
    })
    .await?;
    tracing::info!("stopping the node");
    running.stop().await?;
    tracing::info!("node stopped");
    match shown {
        Ok(result) => result.context("terminal")?,
        Err(_) => anyhow::bail!("the chat UI thread panicked"),
    }
    outcome
}
