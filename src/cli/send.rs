//! `mule send`: a text and/or a file, sealed for the recipient (or a group), through the running
//! node or, when none runs, straight into the store for the node to relay when it starts.

use std::path::PathBuf;
use std::time::Duration;

use crate::control::{client, Request, Response};
use crate::message::{Limits, BROADCAST};
use crate::node::post::{Letter, Poster, Privacy, SealedFor};

/// Options of `mule send`.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("content").required(true).multiple(true).args(["text", "file"]))]
pub struct Args {
    /// Recipient: a peer id, a name (`campfire/bob`, encrypted for every key known to hold it),
    /// or `*` for everyone (readable by every relay unless --group is given).
    #[arg(long, default_value = BROADCAST)]
    to: String,
    /// Text to send.
    #[arg(long)]
    text: Option<String>,
    /// File to attach (any size; encrypted streaming, its name and media type travel with it).
    #[arg(long)]
    file: Option<PathBuf>,
    /// Encrypt for this group's members (see `mule group`), whatever the recipient.
    #[arg(long)]
    group: Option<String>,
    /// How long the message is worth carrying (e.g. 30m, 24h, 7d).
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    lifespan: Duration,
}

pub(super) async fn run(data_dir: PathBuf, args: Args, quiet: bool) -> anyhow::Result<()> {
    let file = match args.file {
        Some(f) => {
            Some(std::fs::canonicalize(&f).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?)
        }
        None => None,
    };
    let outgoing = Outgoing {
        to: args.to,
        text: args.text,
        file,
        group: args.group,
        invite: None,
        lifespan: args.lifespan,
    };
    // Sealing and storing a large file takes a while, and its bytes are read only by the node
    // (or by `deliver` when none runs): a spinner with the time it took so far.
    let spinner = match &outgoing.file {
        Some(f) => {
            let size = std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
            super::progress::spinner(
                quiet,
                format!(
                    "sealing and storing {} ({})",
                    f.file_name().unwrap_or_default().to_string_lossy(),
                    indicatif::HumanBytes(size)
                ),
            )
        }
        None => None,
    };
    let posted = deliver(&data_dir, outgoing).await;
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    let posted = posted?;
    if posted.sealed_for == SealedFor::Everyone {
        eprintln!(
            "note: sent unencrypted to everyone: every relay can read it (use --group to keep it within a group)"
        );
    }
    super::out!("{}", posted.id);
    Ok(())
}

/// A message to post, from `send` or `group invite`.
#[derive(Debug)]
pub(super) struct Outgoing {
    pub(super) to: String,
    pub(super) text: Option<String>,
    pub(super) file: Option<PathBuf>,
    pub(super) group: Option<String>,
    pub(super) invite: Option<String>,
    pub(super) lifespan: Duration,
}

/// Posts through the running node, or stores directly when no node runs.
pub(super) async fn deliver(
    data_dir: &std::path::Path,
    out: Outgoing,
) -> anyhow::Result<crate::node::Posted> {
    let request = Request::Send {
        to: out.to.clone(),
        text: out.text.clone(),
        file: out.file.clone(),
        group: out.group.clone(),
        invite: out.invite.clone(),
        lifespan_ms: u64::try_from(out.lifespan.as_millis()).unwrap_or(u64::MAX),
    };
    match client::call(data_dir, &request).await {
        Ok(Response::Sent(posted)) => Ok(posted),
        Ok(Response::Error(e)) => anyhow::bail!("{e}"),
        Ok(other) => anyhow::bail!("unexpected answer from the node: {other:?}"),
        Err(client::Error::NotRunning(_)) => {
            // No node: store it ourselves; the node relays it when it starts.
            let (identity, store) = super::open_offline(data_dir).await?;
            let trust = crate::trust::Trust::load(data_dir, &identity)?;
            let now = crate::message::now_ms();
            let letter = Letter::from_parts(data_dir, out.text, out.file, out.invite.as_deref())?;
            let privacy = Privacy::from_group(out.group.as_deref())?;
            let poster = Poster {
                identity: &identity,
                store: &store,
                data_dir,
                limits: &Limits::default(),
                roots: trust.roots(),
                chains: trust.header_chains(now),
                named: vec![crate::node::relay::Me::named(&identity, &trust, now).caller(now)],
            };
            let posted = poster.post(out.to, letter, &privacy, out.lifespan).await;
            store.close().await?;
            let (id, sealed_for) = posted?;
            eprintln!("no node running: message stored; it leaves when `mule node` starts");
            Ok(crate::node::Posted {
                id: id.to_string(),
                sealed_for,
            })
        }
        Err(e) => Err(e.into()),
    }
}
