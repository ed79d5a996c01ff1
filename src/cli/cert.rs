//! `mule cert issue|add|list`: give names to other nodes, and attach names to this one.
//!
//! Works on the data dir directly; a running node reads its chains at start.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context;
use clap::Subcommand;

use crate::identity::key_label;
use crate::message::{now_ms, Limits};
use crate::trust::chain::{self, MAX_ENCODED_CHAIN_LEN};
use crate::trust::{issue, Certificate, Grant, Name, Restrictions, Segment, Trust};

/// Options of `mule cert`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sign a certificate naming another node, and write the chain it needs to a file.
    Issue(IssueArgs),
    /// Attach a chain naming this node (refused unless it names this node and verifies now).
    Add {
        /// The chain file, as `mule cert issue` writes it.
        file: PathBuf,
    },
    /// The chains this node holds, with their names and status.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
struct IssueArgs {
    /// The node to name: its peer id (or 64 hex digits of its public key).
    #[arg(long)]
    subject: String,
    /// The name extension to grant, one segment (a-z, 0-9, '-', '_', '.'), e.g. alice.
    #[arg(long)]
    name: String,
    /// How long the certificate is valid (e.g. 30d, 12h). It starts 5 minutes in the past so
    /// that peers whose clocks lag a little accept it at once.
    #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
    valid: Duration,
    /// Issue under a name this node holds (e.g. campfire/alice): the subject gets
    /// campfire/alice/NAME. Without it this node signs as a root.
    #[arg(long)]
    under: Option<String>,
    /// Largest message content the subject may send, in bytes (the `max-message-size` caveat).
    #[arg(long)]
    max_message_size: Option<u64>,
    /// Where to write the chain [default: NAME.chain in the current directory].
    #[arg(long)]
    out: Option<PathBuf>,
}

pub(super) async fn run(data_dir: PathBuf, args: Args) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || {
        let (identity, mut trust) = super::trust::load(&data_dir)?;
        match args.command {
            Command::Issue(args) => issue_chain(&identity, &trust, args),
            Command::Add { file } => add(&mut trust, &file),
            Command::List { json } => {
                list(&trust, json)?;
                Ok(())
            }
        }
    })
    .await?
}

fn issue_chain(
    identity: &crate::identity::Identity,
    trust: &Trust,
    args: IssueArgs,
) -> anyhow::Result<()> {
    let subject = super::trust::read_key(&args.subject)?;
    let segment: Segment = args.name.parse()?;
    let now = now_ms();
    let (parent, prefix) = match &args.under {
        Some(under) => {
            let name: Name = under.parse()?;
            let chain = trust.chain_for(&name, now).with_context(|| {
                format!("this node holds no valid chain for {under}; `mule cert list` shows what it holds")
            })?;
            (chain.clone(), name.to_string())
        }
        // The root name is each verifier's choice; show ours if we trust ourselves as a root.
        None => (
            Vec::new(),
            trust
                .roots()
                .name_of(&identity.public_key())
                .map_or_else(|| "<root name>".to_owned(), ToString::to_string),
        ),
    };
    let grant = Grant {
        subject,
        name: segment,
        not_before_ms: now.saturating_sub(Limits::DEFAULT_CLOCK_SKEW.as_millis() as u64),
        not_after_ms: now.saturating_add(args.valid.as_millis() as u64),
        restrictions: Restrictions {
            max_message_size: args.max_message_size,
        },
    };
    let not_after = grant.not_after_ms;
    let chain = issue(identity, grant, &parent)?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("{}.chain", args.name)));
    std::fs::write(&out, chain::encode_chain(&chain)?)
        .with_context(|| format!("writing {}", out.display()))?;
    super::out!(
        "wrote {}: {prefix}/{} for {}, valid until {}",
        out.display(),
        args.name,
        key_label(&subject),
        format_ms(not_after)
    );
    Ok(())
}

fn add(trust: &mut Trust, file: &Path) -> anyhow::Result<()> {
    let bytes = super::trust::read_bounded(file, MAX_ENCODED_CHAIN_LEN as u64)?;
    let verified = trust
        .add_chain(&bytes, now_ms())
        .with_context(|| format!("refusing {}", file.display()))?;
    super::out!(
        "this node is now {} (valid until {})",
        verified.name,
        format_ms(verified.not_after_ms)
    );
    Ok(())
}

/// One held chain as `mule cert list` shows it.
#[derive(Debug, serde::Serialize)]
struct Row {
    name: Option<String>,
    issuer: Option<String>,
    not_after_ms: Option<u64>,
    valid_until: Option<String>,
    status: String,
    file: String,
}

fn list(trust: &Trust, json: bool) -> anyhow::Result<()> {
    let rows: Vec<Row> = trust
        .held(now_ms())
        .into_iter()
        .map(|(held, verified)| {
            let leaf = held.chain.first().and_then(|c| Certificate::decode(c).ok());
            let not_after_ms = verified.as_ref().ok().map(|v| v.not_after_ms).or_else(|| {
                held.chain
                    .iter()
                    .filter_map(|c| Certificate::decode(c).ok())
                    .map(|c| c.not_after_ms)
                    .min()
            });
            Row {
                name: match &verified {
                    Ok(v) => Some(v.name.to_string()),
                    Err(_) => leaf.as_ref().map(|c| format!("?/{}", c.name)),
                },
                issuer: leaf.as_ref().map(|c| key_label(&c.issuer)),
                not_after_ms,
                valid_until: not_after_ms.map(format_ms),
                status: match &verified {
                    Ok(_) => "valid".to_owned(),
                    Err(e) => e.to_string(),
                },
                file: held.file.display().to_string(),
            }
        })
        .collect();
    if json {
        super::out!("{}", serde_json::to_value(&rows)?);
    } else if rows.is_empty() {
        super::out!("no chains (attach one with `mule cert add FILE`)");
    } else {
        for r in rows {
            super::out!(
                "{}\tissued by {}\tuntil {}\t{}",
                r.name.as_deref().unwrap_or("?"),
                r.issuer.as_deref().unwrap_or("?"),
                r.valid_until.as_deref().unwrap_or("?"),
                r.status
            );
        }
    }
    Ok(())
}

/// Unix ms as an RFC 3339 time, for people.
pub(super) fn format_ms(ms: u64) -> String {
    UNIX_EPOCH
        .checked_add(Duration::from_millis(ms))
        .map(|t| humantime::format_rfc3339_seconds(t).to_string())
        .unwrap_or_else(|| "never".to_owned())
}
