//! `mule status`.

use std::path::PathBuf;

use crate::control::{client, Request, Response};

/// Options of `mule status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(data_dir: PathBuf, args: Args) -> anyhow::Result<()> {
    let status = match client::call(&data_dir, &Request::Status).await? {
        Response::Status(s) => s,
        Response::Error(e) => anyhow::bail!("{e}"),
        other => anyhow::bail!("unexpected answer from the node: {other:?}"),
    };
    if args.json {
        super::out!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    super::out!("peer id:   {}", status.peer_id);
    for a in &status.listen_addrs {
        super::out!("listening: {a}");
    }
    super::out!("messages:  {}", status.messages);
    super::out!(
        "store:     {} of {} quota used",
        crate::store::Size(status.store_used),
        crate::store::Size(status.store_quota)
    );
    super::out!(
        "peers:     {} known, {} connected, {} selected",
        status.known_peers,
        status.connected_peers.len(),
        status.selected_peers.len()
    );
    for p in &status.selected_peers {
        let queued = status.queues.get(p).copied().unwrap_or(0);
        super::out!("  selected {p}  ({queued} queued)");
    }
    let c = &status.counters;
    super::out!(
        "sent:      {} messages, {} bytes\nreceived:  {} messages, {} bytes ({} transfers, {} duplicates)",
        c.messages_sent, c.bytes_sent, c.messages_received, c.bytes_received, c.content_transfers, c.duplicates
    );
    for (reason, n) in &c.rejections {
        super::out!("rejected:  {n} {reason}");
    }
    for t in &status.transfers {
        let way = match t.direction {
            crate::node::transfers::Direction::In => "from",
            crate::node::transfers::Direction::Out => "to",
        };
        let eta = t
            .eta_s
            .map_or_else(|| "-".to_owned(), |s| format!("{}s", s.ceil()));
        super::out!(
            "transfer:  {} {way} {}  {} of {} bytes  {:.0} B/s  eta {eta}",
            &t.id[..16.min(t.id.len())],
            t.peer,
            t.done,
            t.length,
            t.rate
        );
    }
    Ok(())
}
