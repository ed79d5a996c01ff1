//! `mule trust add|list|remove`: the roots whose certificates this node believes.
//!
//! Works on the data dir directly; a running node reads the roots at start.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;

use crate::identity::Identity;
use crate::trust::{roots, Segment, Trust};

/// Options of `mule trust`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Trust a key as a root: chains it issues give names under NAME.
    Add {
        /// The root's name, one segment (a-z, 0-9, '-', '_', '.'), e.g. campfire.
        name: String,
        /// The root's key: a peer id, 64 hex digits of its public key, or a file holding one
        /// (e.g. the output of `mule id --json` on the root).
        key: String,
    },
    /// The trusted roots.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop trusting a root.
    Remove {
        /// The root's name.
        name: String,
    },
}

/// Largest key file read by `mule trust add`.
const MAX_KEY_FILE: u64 = 64 * 1024;

pub(super) async fn run(data_dir: PathBuf, args: Args) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || run_blocking(&data_dir, args.command)).await?
}

/// The identity and trust state of a data dir (creating the identity if there is none).
pub(super) fn load(data_dir: &Path) -> anyhow::Result<(Identity, Trust)> {
    let identity = Identity::load_or_create(data_dir)?;
    let trust = Trust::load(data_dir, &identity).context("reading the trust state")?;
    Ok((identity, trust))
}

fn run_blocking(data_dir: &Path, command: Command) -> anyhow::Result<()> {
    let (_, mut trust) = load(data_dir)?;
    match command {
        Command::Add { name, key } => {
            let segment: Segment = name.parse()?;
            let key = read_key(&key)?;
            trust.add_root(segment, key)?;
            super::out!("trusting {} as {name}", crate::identity::key_label(&key));
        }
        Command::List { json } => list(&trust, json)?,
        Command::Remove { name } => {
            let segment: Segment = name.parse()?;
            if trust.remove_root(&segment)?.is_none() {
                anyhow::bail!("no root is named {name:?}; `mule trust list` shows them");
            }
            super::out!("no longer trusting {name}");
        }
    }
    Ok(())
}

fn list(trust: &Trust, json: bool) -> anyhow::Result<()> {
    let rows: Vec<(String, String, String)> = trust
        .roots()
        .iter()
        .map(|(name, key)| {
            (
                name.to_string(),
                crate::identity::key_label(key),
                hex::encode(key),
            )
        })
        .collect();
    if json {
        let rows: Vec<_> = rows
            .iter()
            .map(|(name, peer, key)| {
                serde_json::json!({ "name": name, "peer_id": peer, "public_key": key })
            })
            .collect();
        super::out!("{}", serde_json::Value::Array(rows));
    } else if rows.is_empty() {
        super::out!("no trusted roots (add one with `mule trust add NAME KEY`)");
    } else {
        for (name, peer, _) in rows {
            super::out!("{name}\t{peer}");
        }
    }
    Ok(())
}

/// A key given as text, or the path of a file holding one (text, or `mule id --json`).
pub(super) fn read_key(arg: &str) -> anyhow::Result<[u8; 32]> {
    if let Ok(key) = roots::parse_key(arg) {
        return Ok(key);
    }
    let path = Path::new(arg);
    if !path.is_file() {
        anyhow::bail!("{arg:?} is neither a peer id, 64 hex digits of an ed25519 public key, nor a file holding one");
    }
    let text = read_bounded(path, MAX_KEY_FILE)?;
    let text = String::from_utf8(text).with_context(|| format!("{arg}: not text"))?;
    if let Ok(key) = roots::parse_key(&text) {
        return Ok(key);
    }
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|_| {
        anyhow::anyhow!("{arg}: holds neither a peer id, a hex key nor `mule id --json` output")
    })?;
    let field = json["peer_id"].as_str().or(json["public_key"].as_str());
    roots::parse_key(field.unwrap_or_default()).with_context(|| arg.to_owned())
}

/// Reads at most `max` bytes of a file, refusing larger files.
pub(super) fn read_bounded(path: &Path, max: u64) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(max + 1).read_to_end(&mut bytes))
        .with_context(|| format!("reading {}", path.display()))?;
    anyhow::ensure!(
        bytes.len() as u64 <= max,
        "{} is over {max} bytes",
        path.display()
    );
    Ok(bytes)
}
