//! `mule group`: group keys for end-to-end encrypted group messages. A group key is an age
//! identity in `<data-dir>/groups/NAME.key`; members get it by an invite, a message sealed for
//! them alone, which their node installs on arrival.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::send::{deliver, Outgoing};
use crate::content::groups::{GroupName, Groups};

/// Options of `mule group`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: GroupCommand,
}

#[derive(Debug, clap::Subcommand)]
enum GroupCommand {
    /// Create a group with a fresh key; then invite its members.
    New {
        /// Its name: lower-case letters, digits, '-', '_', '.'.
        name: String,
    },
    /// The groups whose key this node holds.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send the group's key to a peer (or every key known to hold a name), sealed for them.
    Invite {
        /// The group.
        name: String,
        /// The invitee: a peer id or a name.
        #[arg(long)]
        to: String,
        /// A few words to go with it.
        #[arg(long)]
        text: Option<String>,
        /// How long the invite is worth carrying.
        #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
        lifespan: Duration,
    },
}

#[derive(Serialize)]
struct GroupView {
    name: String,
    recipient: String,
}

pub(super) async fn run(data_dir: PathBuf, args: Args) -> anyhow::Result<()> {
    let groups = Groups::at(&data_dir);
    match args.command {
        GroupCommand::New { name } => {
            let name: GroupName = name.parse()?;
            let group = groups.create(&name)?;
            super::out!("created group {name} ({})", group.recipient());
            super::out!("invite members with: mule group invite {name} --to PEER_ID|NAME");
        }
        GroupCommand::List { json } => {
            let views: Vec<GroupView> = groups
                .list()?
                .iter()
                .map(|g| GroupView {
                    name: g.name.to_string(),
                    recipient: g.recipient().to_string(),
                })
                .collect();
            if json {
                super::out!("{}", serde_json::to_string_pretty(&views)?);
            } else if views.is_empty() {
                super::out!("no groups: create one with `mule group new NAME`");
            } else {
                for v in views {
                    super::out!("{}  {}", v.name, v.recipient);
                }
            }
        }
        GroupCommand::Invite {
            name,
            to,
            text,
            lifespan,
        } => {
            let name: GroupName = name.parse()?;
            let text = text.or_else(|| Some(format!("an invite to group {name}")));
            let outgoing = Outgoing {
                to,
                text,
                file: None,
                group: None,
                invite: Some(name.to_string()),
                lifespan,
            };
            let posted = deliver(&data_dir, outgoing).await?;
            super::out!("{}", posted.id);
        }
    }
    Ok(())
}
