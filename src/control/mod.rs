//! The local control socket: how `mule send`, `inbox`, `list`, `status` and `pull` talk to a
//! running node.
//!
//! A Unix socket at `<data-dir>/control.sock`, owner-only (0600). One JSON request per
//! connection, one JSON line back. Only the owner of the data dir can connect, so the socket
//! carries no authentication of its own.

pub mod client;
pub mod server;
pub mod views;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::node::{PullReport, Status};
pub use views::MessageView;

/// Socket file name inside the data dir.
pub const SOCKET: &str = "control.sock";
/// Largest request line the server reads.
pub const MAX_REQUEST: u64 = 64 * 1024;
/// Largest response the client reads.
pub const MAX_RESPONSE: u64 = 256 << 20;

/// The socket path for a data dir.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET)
}

/// A control request.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    /// Seal, sign, store and relay a new message.
    Send {
        /// Recipient: a peer id, a name, or `*`.
        to: String,
        /// Text content.
        text: Option<String>,
        /// A file to attach (absolute path, read by the node).
        file: Option<PathBuf>,
        /// Seal for this group's members instead of following the recipient.
        #[serde(default)]
        group: Option<String>,
        /// A group whose key to hand to the recipient (`mule group invite`).
        #[serde(default)]
        invite: Option<String>,
        /// Lifespan in milliseconds.
        lifespan_ms: u64,
    },
    /// Every complete message held.
    List,
    /// Messages addressed to this node or to everyone, opened.
    Inbox {
        /// Where to save attachments (absolute); `None`: `<data-dir>/inbox/`.
        #[serde(default)]
        save_dir: Option<PathBuf>,
    },
    /// Peers and counters.
    Status,
    /// Pull from a peer's repository what this node lacks (`mule pull`).
    Pull {
        /// A peer id the node can reach, or an address ending in `/p2p/<peer id>`.
        from: String,
        /// Only messages addressed to this node.
        #[serde(default)]
        for_me: bool,
        /// Only messages created at or after this time (Unix milliseconds).
        #[serde(default)]
        since_ms: Option<u64>,
    },
}

/// A control response.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Response {
    /// The new message's id and who can read it.
    Sent(crate::node::Posted),
    /// Messages.
    Messages(Vec<MessageView>),
    /// Node status.
    Status(Box<Status>),
    /// What a pull did.
    Pulled(PullReport),
    /// The request failed.
    Error(String),
}
