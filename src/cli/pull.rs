//! `mule pull`: take what a data mule carries, through the running node or, when none runs, a
//! node started for the pull alone.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::control::{client, Request, Response};
use crate::node::pull::Source;
use crate::node::{Config, Node, PullOptions, PullProgress, PullReport};

/// Options of `mule pull`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The peer to pull from: a peer id the running node can reach, or an address ending in
    /// `/p2p/<peer id>` (dialled first).
    #[arg(long, value_name = "PEER|MULTIADDR")]
    from: Source,
    /// Only messages addressed to this node (its peer id, one of its names, or `*`).
    #[arg(long)]
    for_me: bool,
    /// Only messages created since this time: RFC 3339 (`2026-01-01T00:00:00Z`) or a duration
    /// ago (`2h`, `3d`).
    #[arg(long, value_name = "TIME", value_parser = parse_since)]
    since: Option<u64>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(data_dir: PathBuf, args: Args, quiet: bool) -> anyhow::Result<()> {
    let request = Request::Pull {
        from: args.from.to_string(),
        for_me: args.for_me,
        since_ms: args.since,
    };
    let spinner = super::progress::spinner(quiet, format!("pulling from {}", args.from));
    let answer = client::call(&data_dir, &request).await;
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    let report = match answer {
        Ok(Response::Pulled(report)) => report,
        Ok(Response::Error(e)) => anyhow::bail!("{e}"),
        Ok(other) => anyhow::bail!("unexpected answer from the node: {other:?}"),
        Err(client::Error::NotRunning(_)) => pull_in_process(data_dir, &args, quiet).await?,
        Err(e) => return Err(e.into()),
    };
    print(&report, args.json)
}

/// No node runs on the data dir: start one for the pull (loopback listener, no mDNS), then stop.
async fn pull_in_process(
    data_dir: PathBuf,
    args: &Args,
    quiet: bool,
) -> anyhow::Result<PullReport> {
    if let Source::Peer(peer) = &args.from {
        anyhow::bail!(
            "no node is running, so no address of {peer} is known: give --from as an address \
             ending in /p2p/{peer}, or start `mule node`"
        );
    }
    let mut config = Config::new(&data_dir);
    config.net.listen = vec!["/ip4/127.0.0.1/tcp/0".parse()?];
    config.net.mdns = false;
    let node = Node::start(config).await?;
    let (progress, watcher) = watch::channel(PullProgress::default());
    let shown = super::progress::pull(quiet, watcher);
    let options = PullOptions {
        for_me: args.for_me,
        since_ms: args.since,
        progress: Some(progress),
    };
    let pulled = node.pull_from(args.from.clone(), options).await;
    if let Some(bar) = shown {
        bar.finish();
    }
    node.shutdown().await?;
    Ok(pulled?)
}

fn print(report: &PullReport, json: bool) -> anyhow::Result<()> {
    if json {
        super::out!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    for skip in &report.skips {
        eprintln!("skipped {}: {}", skip.id, skip.reason);
    }
    super::out!(
        "pulled {} of {} messages ({} bytes) from {}; {} skipped",
        report.pulled,
        report.lacking.saturating_sub(report.filtered),
        report.bytes,
        report.peer,
        report.skipped
    );
    Ok(())
}

/// `--since`: an RFC 3339 time, or a duration before now; Unix milliseconds.
fn parse_since(text: &str) -> Result<u64, String> {
    since_at(text, SystemTime::now())
}

fn since_at(text: &str, now: SystemTime) -> Result<u64, String> {
    let at = match humantime::parse_rfc3339_weak(text) {
        Ok(at) => at,
        Err(_) => {
            let ago = humantime::parse_duration(text).map_err(|_| {
                format!("`{text}` is neither an RFC 3339 time nor a duration like 2h")
            })?;
            now.checked_sub(ago).unwrap_or(UNIX_EPOCH)
        }
    };
    let ms = at
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis();
    Ok(u64::try_from(ms).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_times_and_durations_ago() {
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        assert_eq!(since_at("2h", now), Ok(10_000_000 - 7_200_000));
        assert_eq!(since_at("1970-01-01T00:00:01Z", now), Ok(1_000));
        assert_eq!(since_at("99999d", now), Ok(0));
        assert_eq!(
            since_at("yesterday", now),
            Err("`yesterday` is neither an RFC 3339 time nor a duration like 2h".into())
        );
    }
}
