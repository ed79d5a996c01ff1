//! Pulling from a peer's repository (`/mule/repo/1`, client side): an islander that never gets
//! pushed to (it does not relay, or no mule selects it) takes what a passing data mule carries.
//!
//! [`Node::pull`] pages through the peer's manifest in its order (creation time, then id),
//! keeps the headers this node lacks and the options want, admits each one exactly as a pushed
//! header would be admitted, pulls its content in ranges of at most [`repo::MAX_PULL`] into a
//! store transfer (resuming from bytes already held) and announces the stored message so sync
//! passes it on. Spec: `protocols/repo.md` section 4.
//!
//! Modules: [`choose`] (pure: which listed headers to take, and the header as it arrives),
//! `fetch` (the network and store work), `connect` (reaching a peer by address), [`Source`]
//! (a peer id or an address, as the CLI names it).

pub mod choose;
mod connect;
mod fetch;
pub(crate) mod scheduled;
mod source;

pub use source::{ParseSourceError, Source};

use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::Instrument;

use super::auth::Denied;
use super::relay::Refusal;
use super::Node;
use crate::message::{MessageId, ValidationError};
use crate::net::RequestError;
use crate::protocol::{repo, WireError};
use crate::store;

/// How long [`Node::connect`] waits for a dialled peer to connect.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Most skipped messages a report names one by one (the count is always complete).
pub const MAX_SKIPS_LISTED: usize = 64;
/// Most manifest pages one pull reads: a repository cannot keep a client paging forever.
pub const MAX_PAGES: u64 = 1 << 16;

/// What to pull.
#[derive(Clone, Debug, Default)]
pub struct PullOptions {
    /// Only messages addressed to this node (its peer id, one of its names, or `*`).
    pub for_me: bool,
    /// Only messages created at or after this time (Unix milliseconds).
    pub since_ms: Option<u64>,
    /// Where to publish progress while the pull runs (the CLI shows it).
    pub progress: Option<watch::Sender<PullProgress>>,
}

/// How far a pull is. Totals grow while the manifest is being paged through: the repository is
/// read page by page, so memory stays bounded however much it carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullProgress {
    /// Messages stored so far.
    pub messages_done: u64,
    /// Content bytes received so far.
    pub bytes_done: u64,
    /// Messages chosen for pulling so far.
    pub messages_total: u64,
    /// Their content bytes.
    pub bytes_total: u64,
}

/// What a pull did, for the CLI and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullReport {
    /// The peer pulled from.
    pub peer: String,
    /// Headers the peer listed.
    pub listed: u64,
    /// Of those, the ones this node did not hold complete.
    pub lacking: u64,
    /// Lacking ones the options left out (not addressed to this node, older than `since`).
    pub filtered: u64,
    /// Messages pulled and stored.
    pub pulled: u64,
    /// Content bytes received.
    pub bytes: u64,
    /// Messages chosen but not stored (refused header, refused or failed pull, bad content).
    pub skipped: u64,
    /// Why, for the first [`MAX_SKIPS_LISTED`] of them.
    pub skips: Vec<Skipped>,
}

/// A message chosen for pulling that was not stored, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// The message id (hex).
    pub id: String,
    /// Why, in words.
    pub reason: String,
}

/// Why a pull stopped, or (for the per-message variants) why one message was skipped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PullError {
    /// The request got no answer: the peer is unreachable or went away. Messages stored before
    /// it stay stored; a partial one resumes on the next pull.
    #[error("request to {peer} failed: {source}")]
    Network {
        /// The peer.
        peer: PeerId,
        /// What the network said.
        #[source]
        source: RequestError,
    },
    /// The peer answered with a wire error (access refused, rate limit, busy, not found).
    #[error("{peer} refused: {error}")]
    Refused {
        /// The peer.
        peer: PeerId,
        /// Its answer.
        error: WireError,
    },
    /// The peer answered, but not as the protocol says (wrong variant, wrong length, a page out
    /// of order): it misbehaves; the pull stops.
    #[error("{peer} answered outside the protocol: {reason}")]
    BadResponse {
        /// The peer.
        peer: PeerId,
        /// What was wrong.
        reason: String,
    },
    /// A listed header failed validation (signature, limits, time): the message is skipped.
    #[error("invalid header {id}: {source}")]
    InvalidHeader {
        /// The message.
        id: MessageId,
        /// Why.
        #[source]
        source: ValidationError,
    },
    /// The access policy refuses the message's sender: the message is skipped.
    #[error("message {id}: {source}")]
    Denied {
        /// The message.
        id: MessageId,
        /// Why (boxed: it is large, and rare).
        #[source]
        source: Box<Denied>,
    },
    /// The relay policy refuses the message (a node that does not relay takes only its own).
    #[error("message {id}: {source}")]
    NotTaken {
        /// The message.
        id: MessageId,
        /// Why.
        #[source]
        source: Refusal,
    },
    /// The local store failed (or, per message, the content did not match its header).
    #[error(transparent)]
    Store(#[from] store::Error),
    /// The peer did not connect in time after its address was dialled.
    #[error("could not connect to {peer} within {within:?}")]
    NotConnected {
        /// The peer.
        peer: PeerId,
        /// How long we waited.
        within: Duration,
    },
    /// An address to pull from must name the peer.
    #[error("address {0} must end in /p2p/<peer id>")]
    NoPeerId(Multiaddr),
}

/// Pulls from `from` with the node's shared state (for the node's own scheduled pulls).
pub(crate) async fn pull_with(
    ctx: std::sync::Arc<super::ctx::Ctx>,
    from: PeerId,
    options: PullOptions,
) -> Result<PullReport, PullError> {
    fetch::Puller::new(ctx, from, options)
        .run()
        .instrument(tracing::debug_span!("pull", peer = %from))
        .await
}

impl Node {
    /// Pulls from `from` what this node lacks and `options` want (see the module doc). The
    /// peer must be connected or its address known to the network (see [`Node::connect`]).
    pub async fn pull(&self, from: PeerId, options: PullOptions) -> Result<PullReport, PullError> {
        pull_with(self.ctx.clone(), from, options).await
    }

    /// Dials `addr` (ending in `/p2p/<peer id>`) and waits until the peer is connected, at
    /// most [`CONNECT_TIMEOUT`]; returns the peer id. Pulls need a connection or a known address.
    pub async fn connect(&self, addr: Multiaddr) -> Result<PeerId, PullError> {
        connect::connect(&self.ctx, addr, CONNECT_TIMEOUT).await
    }

    /// [`Node::pull`] from a [`Source`]: an address is dialled (and connected) first.
    pub async fn pull_from(
        &self,
        source: Source,
        options: PullOptions,
    ) -> Result<PullReport, PullError> {
        let peer = match source {
            Source::Peer(peer) => peer,
            Source::Addr(addr) => self.connect(addr).await?,
        };
        self.pull(peer, options).await
    }
}

/// The `repo` request with which a pull starts: the first page, or (with `since_ms`) the page
/// starting at that creation time, since the manifest is ordered by creation time.
fn first_cursor(since_ms: Option<u64>) -> Option<repo::Cursor> {
    let since = since_ms.filter(|&s| s > 0)?;
    Some(repo::Cursor {
        created_ms: since - 1,
        id: MessageId([0xff; 32]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_starts_the_manifest_at_that_time() {
        assert_eq!(first_cursor(None), None);
        assert_eq!(first_cursor(Some(0)), None);
        let c = first_cursor(Some(1_000));
        assert_eq!(
            c,
            Some(repo::Cursor {
                created_ms: 999,
                id: MessageId([0xff; 32])
            })
        );
    }
}
