//! `mule id`.

use std::path::PathBuf;

/// Options of `mule id`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(data_dir: PathBuf, args: Args) -> anyhow::Result<()> {
    let (identity, trust) =
        tokio::task::spawn_blocking(move || super::trust::load(&data_dir)).await??;
    let peer_id = identity.peer_id().to_string();
    let public_key = hex::encode(identity.public_key());
    let names: Vec<String> = trust
        .names(crate::message::now_ms())
        .into_iter()
        .map(|v| v.name.to_string())
        .collect();
    if args.json {
        super::out!(
            "{}",
            serde_json::json!({ "peer_id": peer_id, "public_key": public_key, "names": names })
        );
    } else {
        let names = if names.is_empty() {
            "(none)".to_owned()
        } else {
            names.join(", ")
        };
        super::out!("peer id:    {peer_id}\npublic key: {public_key}\nnames:      {names}");
    }
    Ok(())
}
