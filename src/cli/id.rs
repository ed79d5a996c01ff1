//! `mule id`.

use std::path::PathBuf;

use crate::identity::Identity;

/// Options of `mule id`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(data_dir: PathBuf, args: Args) -> anyhow::Result<()> {
    let identity =
        tokio::task::spawn_blocking(move || Identity::load_or_create(&data_dir)).await??;
    let peer_id = identity.peer_id().to_string();
    let public_key = hex::encode(identity.public_key());
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "peer_id": peer_id, "public_key": public_key })
        );
    } else {
        println!("peer id:    {peer_id}\npublic key: {public_key}");
    }
    Ok(())
}
