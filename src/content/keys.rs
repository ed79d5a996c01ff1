//! Keys for age: a node's X25519 key pair derived from its ed25519 identity (as `ssh-to-age`
//! does), group keys, and the keyring that opens what was sealed for this node.
//!
//! Derivation (pinned by `protocols/vectors/encryption-1.json`): the X25519 public key is the
//! Montgomery form `u = (1 + y) / (1 - y)` of the ed25519 public key; the X25519 secret is the
//! first 32 bytes of SHA-512 of the ed25519 seed. Both are written in age's Bech32 forms
//! (`age1...`, `AGE-SECRET-KEY-1...`), so the age tools can use them too.

use std::str::FromStr;

use age::x25519;
use bech32::{Bech32, Hrp};

use super::groups::{Group, GroupName};
use crate::identity::{self, Identity};

/// Human-readable part of an age X25519 recipient.
const RECIPIENT_HRP: &str = "age";
/// Human-readable part of an age X25519 identity (printed upper-case).
const IDENTITY_HRP: &str = "age-secret-key-";

/// Why a key cannot be used for encryption.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The peer id does not embed an ed25519 key (RSA or secp256k1 ids do not).
    #[error("{0} is not an ed25519 peer id; mule can only encrypt to ed25519 keys")]
    NotEd25519(String),
    /// Not a valid ed25519 point, or a small-order one for which nobody holds a secret.
    #[error("{0} is not a usable key (invalid or weak)")]
    Unusable(String),
    /// An age key string that does not parse.
    #[error("not an age key: {0}")]
    Malformed(String),
}

/// Someone content can be sealed for: an age X25519 recipient with a label for people.
#[derive(Clone)]
pub struct Recipient {
    /// Who: a peer id or `group NAME`.
    pub label: String,
    /// The age recipient.
    pub key: x25519::Recipient,
}

impl std::fmt::Debug for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Recipient({}: {})", self.label, self.key)
    }
}

impl Recipient {
    /// The recipient of the node with this ed25519 public key (a header's `sender`, or the key
    /// inside a peer id).
    pub fn of_key(public_key: &[u8; 32]) -> Result<Self, KeyError> {
        let label = identity::key_label(public_key);
        let u = identity::x25519_public_of(public_key)
            .ok_or_else(|| KeyError::Unusable(label.clone()))?;
        Ok(Self {
            key: age_recipient(&u)?,
            label,
        })
    }

    /// The recipient of a peer id.
    pub fn of_peer(peer: &libp2p::PeerId) -> Result<Self, KeyError> {
        let key =
            identity::public_key_of(peer).ok_or_else(|| KeyError::NotEd25519(peer.to_string()))?;
        Self::of_key(&key)
    }
}

/// An X25519 public key as an age recipient.
pub fn age_recipient(u: &[u8; 32]) -> Result<x25519::Recipient, KeyError> {
    let text = encode(RECIPIENT_HRP, u)?;
    x25519::Recipient::from_str(&text).map_err(|e| KeyError::Malformed(e.to_string()))
}

/// An X25519 secret as an age identity.
pub fn age_identity(secret: &[u8; 32]) -> Result<x25519::Identity, KeyError> {
    let text = encode(IDENTITY_HRP, secret)?.to_uppercase();
    x25519::Identity::from_str(&text).map_err(|e| KeyError::Malformed(e.to_string()))
}

fn encode(hrp: &str, bytes: &[u8; 32]) -> Result<String, KeyError> {
    let hrp = Hrp::parse(hrp).map_err(|e| KeyError::Malformed(e.to_string()))?;
    bech32::encode::<Bech32>(hrp, bytes).map_err(|e| KeyError::Malformed(e.to_string()))
}

/// This node's own age identity, derived from its ed25519 key.
pub fn own_identity(identity: &Identity) -> Result<x25519::Identity, KeyError> {
    age_identity(&identity.x25519_secret())
}

/// Who a sealed message turned out to be for, among the keys a keyring holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holder {
    /// This node's own key.
    Me,
    /// A group this node is a member of.
    Group(GroupName),
}

/// The keys that open what was sealed for this node: its own, then its groups'.
pub struct Keyring {
    own: x25519::Identity,
    groups: Vec<Group>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field(
                "groups",
                &self.groups.iter().map(|g| &g.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// The keyring of `identity` with `groups`.
    pub fn new(identity: &Identity, groups: Vec<Group>) -> Result<Self, KeyError> {
        Ok(Self {
            own: own_identity(identity)?,
            groups,
        })
    }

    /// Every key with who holds it, own first.
    pub fn keys(&self) -> impl Iterator<Item = (Holder, &x25519::Identity)> {
        std::iter::once((Holder::Me, &self.own)).chain(
            self.groups
                .iter()
                .map(|g| (Holder::Group(g.name.clone()), &g.identity)),
        )
    }

    /// Adds (or replaces) a group's key, e.g. after an invite was installed.
    pub fn add_group(&mut self, group: Group) {
        self.groups.retain(|g| g.name != group.name);
        self.groups.push(group);
    }
}

/// Parses an age identity (`AGE-SECRET-KEY-1...`), e.g. from a group invite or key file.
pub fn age_identity_from_str(text: &str) -> Result<x25519::Identity, KeyError> {
    x25519::Identity::from_str(text.trim()).map_err(|e| KeyError::Malformed(e.to_string()))
}
