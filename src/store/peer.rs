//! How the store names a peer.

/// A peer as the store keys it: the binary form of its libp2p peer id
/// (`PeerKey::from(peer_id.to_bytes())`).
///
/// The store must not depend on libp2p (dependencies point `node -> {net, store}`), yet it keeps
/// per-peer state: the delivery rows of `delivery-1` and the source recorded with a received
/// message. A newtype instead of bare `Vec<u8>` keeps those bytes from being mixed up with
/// message ids or content, and gives the conversion one obvious place in the node.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerKey(Vec<u8>);

impl PeerKey {
    /// The bytes as stored in the second half of a `delivery-1` key.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for PeerKey {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl AsRef<[u8]> for PeerKey {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}
