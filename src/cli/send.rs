//! `mule send`.

use std::path::PathBuf;
use std::time::Duration;

use crate::control::{client, Request, Response};
use crate::message::{Limits, BROADCAST};
use crate::node::send::{store_new, Envelope};
use crate::node::Content;

/// Options of `mule send`.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("content").required(true).args(["text", "file"]))]
pub struct Args {
    /// Recipient: a peer id, a name, or `*` for everyone.
    #[arg(long, default_value = BROADCAST)]
    to: String,
    /// Text to send.
    #[arg(long)]
    text: Option<String>,
    /// File to send.
    #[arg(long)]
    file: Option<PathBuf>,
    /// How long the message is worth carrying (e.g. 30m, 24h, 7d).
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    lifespan: Duration,
}

pub(super) async fn run(data_dir: PathBuf, args: Args) -> anyhow::Result<()> {
    let file = match args.file {
        Some(f) => {
            Some(std::fs::canonicalize(&f).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?)
        }
        None => None,
    };
    let request = Request::Send {
        to: args.to.clone(),
        text: args.text.clone(),
        file: file.clone(),
        lifespan_ms: args.lifespan.as_millis() as u64,
    };
    match client::call(&data_dir, &request).await {
        Ok(Response::Sent(id)) => {
            super::out!("{id}");
            Ok(())
        }
        Ok(Response::Error(e)) => anyhow::bail!("{e}"),
        Ok(other) => anyhow::bail!("unexpected answer from the node: {other:?}"),
        Err(client::Error::NotRunning(_)) => {
            // No node: store it ourselves; the node relays it when it starts.
            let (identity, store) = super::open_offline(&data_dir).await?;
            let content = match (args.text, file) {
                (Some(t), None) => Content::Bytes(t.into_bytes()),
                (None, Some(f)) => Content::File(f),
                _ => anyhow::bail!("give exactly one of --text and --file"),
            };
            let trust = crate::trust::Trust::load(&data_dir, &identity)?;
            let envelope = Envelope {
                recipient: args.to,
                lifespan: args.lifespan,
                chains: trust.header_chains(crate::message::now_ms()),
            };
            let stored =
                store_new(&identity, &store, &Limits::default(), envelope, content).await?;
            store.close().await?;
            eprintln!("no node running: message stored; it leaves when `mule node` starts");
            super::out!("{}", stored.header.id);
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
