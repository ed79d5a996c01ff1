//! `mule inbox` and `mule list`.

use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use crate::control::{client, views, MessageView, Request, Response};
use crate::node::relay::Me;

/// Options of `mule inbox` / `mule list`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Which messages.
#[derive(Debug, Clone, Copy)]
pub(super) enum Which {
    Inbox,
    All,
}

pub(super) async fn run(data_dir: PathBuf, args: Args, which: Which) -> anyhow::Result<()> {
    let request = match which {
        Which::Inbox => Request::Inbox,
        Which::All => Request::List,
    };
    let views = match client::call(&data_dir, &request).await {
        Ok(Response::Messages(v)) => v,
        Ok(Response::Error(e)) => anyhow::bail!("{e}"),
        Ok(other) => anyhow::bail!("unexpected answer from the node: {other:?}"),
        Err(client::Error::NotRunning(_)) => {
            // No node: read the store directly.
            let (identity, store) = super::open_offline(&data_dir).await?;
            let trust = crate::trust::Trust::load(&data_dir, &identity)?;
            let v = match which {
                Which::Inbox => {
                    let me = Me::named(&identity, &trust, crate::message::now_ms());
                    views::inbox(&store, &data_dir, &me, trust.roots()).await?
                }
                Which::All => views::list(&store, trust.roots()).await?,
            };
            store.close().await?;
            v
        }
        Err(e) => return Err(e.into()),
    };
    if args.json {
        super::out!("{}", serde_json::to_string_pretty(&views)?);
    } else if views.is_empty() {
        super::out!("no messages");
    } else {
        for v in &views {
            print_view(v)?;
        }
    }
    Ok(())
}

fn time(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

fn print_view(v: &MessageView) -> anyhow::Result<()> {
    super::out!(
        "{}  from {}  to {}  {}  {} bytes  {} hop{}",
        &v.id[..16],
        match v.sender_names.first() {
            Some(name) => format!("{name} ({})", v.sender),
            None => v.sender.clone(),
        },
        v.recipient,
        time(v.created_ms),
        v.length,
        v.hops.len(),
        if v.hops.len() == 1 { "" } else { "s" }
    );
    if let Some(text) = &v.text {
        for line in text.lines() {
            super::out!("    {line}");
        }
    }
    if let Some(file) = &v.file {
        super::out!("    saved to {file}");
    }
    Ok(())
}
