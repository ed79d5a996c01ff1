//! `mule inbox` and `mule list`.

use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use crate::control::views::Sealed;
use crate::control::{client, views, MessageView, Request, Response};
use crate::node::relay::Me;

/// Options of `mule list`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Options of `mule inbox`.
#[derive(Debug, clap::Args)]
pub struct InboxArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Where attachments are saved (default `<data-dir>/inbox/`); names are sanitised and
    /// existing files never overwritten.
    #[arg(long, value_name = "DIR")]
    save_dir: Option<PathBuf>,
}

/// Which messages.
#[derive(Debug, Clone)]
pub(super) enum Which {
    /// Addressed to this node, opened; attachments saved here (`None`: the default).
    Inbox(Option<PathBuf>),
    All,
}

/// `mule inbox`.
pub(super) async fn inbox(data_dir: PathBuf, args: InboxArgs) -> anyhow::Result<()> {
    let save_dir = match args.save_dir {
        Some(d) => {
            std::fs::create_dir_all(&d).map_err(|e| anyhow::anyhow!("{}: {e}", d.display()))?;
            Some(std::fs::canonicalize(&d).map_err(|e| anyhow::anyhow!("{}: {e}", d.display()))?)
        }
        None => None,
    };
    run(data_dir, Args { json: args.json }, Which::Inbox(save_dir)).await
}

pub(super) async fn run(data_dir: PathBuf, args: Args, which: Which) -> anyhow::Result<()> {
    let request = match &which {
        Which::Inbox(save_dir) => Request::Inbox {
            save_dir: save_dir.clone(),
        },
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
                Which::Inbox(save_dir) => {
                    let me = Me::named(&identity, &trust, crate::message::now_ms());
                    let reader = views::Reader {
                        data_dir: &data_dir,
                        identity: &identity,
                        me: &me,
                        roots: trust.roots(),
                        save_dir,
                    };
                    views::inbox(&store, &reader).await
                }
                Which::All => views::list(&store, trust.roots())
                    .await
                    .map_err(views::Error::from),
            };
            store.close().await?;
            v?
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
    if let Some(sealed) = &v.sealed {
        super::out!("    [{}]", sealed_label(sealed));
    }
    if let Some(text) = &v.text {
        for line in text.lines() {
            super::out!("    {line}");
        }
    }
    if let Some(a) = &v.attachment {
        let place = match &a.saved_to {
            Some(p) => format!("saved to {p}"),
            None => "not saved".to_string(),
        };
        super::out!(
            "    attachment {:?} ({}, {} bytes) {place}",
            a.name,
            a.media_type,
            a.length
        );
    }
    if let Some(file) = &v.file {
        super::out!("    saved to {file}");
    }
    if let Some(note) = &v.note {
        super::out!("    {note}");
    }
    Ok(())
}

/// How a message was sealed, in words.
pub(super) fn sealed_label(sealed: &Sealed) -> String {
    match sealed {
        Sealed::ForMe => "encrypted for you".into(),
        Sealed::ForGroup(g) => format!("encrypted for group {g}"),
        Sealed::Open => "unencrypted: readable by every relay".into(),
        Sealed::Raw => "unencrypted, no envelope: readable by every relay".into(),
        Sealed::ForSomeoneElse => "encrypted for someone else".into(),
        Sealed::Unreadable(why) => format!("could not be opened: {why}"),
    }
}
