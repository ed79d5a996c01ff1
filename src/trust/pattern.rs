//! Patterns: who an access-list entry, or a message's `recipient`, is about.
//!
//! | Pattern | Matches |
//! |---|---|
//! | `*` | every caller, nameless ones too |
//! | `campfire/alice` | a caller named `campfire/alice` or any name below it (segment-wise) |
//! | `campfire/alice/*` | a caller with a name strictly below `campfire/alice` |
//! | `campfire/alice/$` | a caller named exactly `campfire/alice` |
//! | `12D3KooW...` | the caller with that peer id |
//!
//! In a deny list a leading `!` is allowed and means nothing more (`!campfire/mallory`).

use std::fmt;
use std::str::FromStr;

use libp2p::PeerId;

use super::name::{Name, NameError};

/// Who is asking: a peer (or a message's original sender) and the names its chains proved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Its key, as a peer id.
    pub peer: PeerId,
    /// Its verified names (may be empty).
    pub names: Vec<Name>,
}

impl Caller {
    /// A caller without names.
    pub fn nameless(peer: PeerId) -> Self {
        Self {
            peer,
            names: Vec::new(),
        }
    }
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.names.first() {
            Some(name) => write!(f, "{name} ({})", self.peer),
            None => write!(f, "{}", self.peer),
        }
    }
}

/// Why a text is not a pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatternError {
    /// Nothing to match.
    #[error("empty pattern")]
    Empty,
    /// `!` outside a deny list.
    #[error("pattern {0:?}: '!' is only allowed in a deny list")]
    NegationInAllow(String),
    /// Neither `*`, a peer id nor a name pattern.
    #[error("pattern {pattern:?} is neither '*', a peer id nor a name: {reason}")]
    Invalid {
        /// The text.
        pattern: String,
        /// Why it is not a name.
        reason: NameError,
    },
}

/// One pattern; see the module doc for the syntax.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// `*`: everyone.
    Anyone,
    /// A peer id: that key.
    Peer(PeerId),
    /// `name`: the name and everything below it.
    Under(Name),
    /// `name/*`: everything strictly below the name.
    Below(Name),
    /// `name/$`: the name only.
    Exactly(Name),
}

impl Pattern {
    /// Parses a pattern of a deny list, where a leading `!` is allowed.
    pub fn parse_deny(text: &str) -> Result<Self, PatternError> {
        text.strip_prefix('!').unwrap_or(text).parse()
    }

    /// Whether the caller is one this pattern is about.
    pub fn matches(&self, caller: &Caller) -> bool {
        match self {
            Self::Anyone => true,
            Self::Peer(peer) => caller.peer == *peer,
            Self::Under(name) => caller.names.iter().any(|n| n.is_under(name)),
            Self::Below(name) => caller.names.iter().any(|n| n.is_strictly_under(name)),
            Self::Exactly(name) => caller.names.contains(name),
        }
    }
}

impl FromStr for Pattern {
    type Err = PatternError;

    fn from_str(text: &str) -> Result<Self, PatternError> {
        if text.is_empty() {
            return Err(PatternError::Empty);
        }
        if text.starts_with('!') {
            return Err(PatternError::NegationInAllow(text.to_owned()));
        }
        if text == "*" {
            return Ok(Self::Anyone);
        }
        let invalid = |reason| PatternError::Invalid {
            pattern: text.to_owned(),
            reason,
        };
        if let Some(name) = text.strip_suffix("/$") {
            return name.parse().map(Self::Exactly).map_err(invalid);
        }
        if let Some(name) = text.strip_suffix("/*") {
            return name.parse().map(Self::Below).map_err(invalid);
        }
        match text.parse::<Name>() {
            Ok(name) => Ok(Self::Under(name)),
            // Names are lowercase; peer ids are not, so a text is never both.
            Err(reason) => PeerId::from_str(text)
                .map(Self::Peer)
                .map_err(|_| invalid(reason)),
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Anyone => f.write_str("*"),
            Self::Peer(peer) => write!(f, "{peer}"),
            Self::Under(name) => write!(f, "{name}"),
            Self::Below(name) => write!(f, "{name}/*"),
            Self::Exactly(name) => write!(f, "{name}/$"),
        }
    }
}

/// Whether a message's `recipient` (a peer id, a name pattern or `*`) addresses `me`. A
/// recipient that is not a pattern addresses nobody.
pub fn addresses(recipient: &str, me: &Caller) -> bool {
    recipient
        .parse::<Pattern>()
        .is_ok_and(|pattern| pattern.matches(me))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    fn caller(seed: u8, names: &[&str]) -> anyhow::Result<Caller> {
        Ok(Caller {
            peer: Identity::from_seed([seed; 32]).peer_id(),
            names: names.iter().map(|n| n.parse()).collect::<Result<_, _>>()?,
        })
    }

    #[test]
    fn pattern_table() -> anyhow::Result<()> {
        let alice = caller(1, &["campfire/alice"])?;
        let phone = caller(2, &["campfire/alice/phone"])?;
        let alicex = caller(3, &["campfire/alicex"])?;
        let root = caller(4, &["campfire"])?;
        let nameless = caller(5, &[])?;
        let two = caller(6, &["lab/x", "campfire/bob"])?;
        let alice_peer = alice.peer.to_string();
        #[rustfmt::skip]
        let table: &[(&str, &Caller, bool)] = &[
            ("*", &nameless, true),
            ("*", &alice, true),
            ("campfire/alice", &alice, true),
            ("campfire/alice", &phone, true),
            ("campfire/alice", &alicex, false),
            ("campfire/alice", &root, false),
            ("campfire/alice", &nameless, false),
            ("campfire/alice/$", &alice, true),
            ("campfire/alice/$", &phone, false),
            ("campfire/alice/*", &alice, false),
            ("campfire/alice/*", &phone, true),
            ("campfire", &root, true),
            ("campfire", &two, true),
            ("campfire/*", &root, false),
            (&alice_peer, &alice, true),
            (&alice_peer, &phone, false),
        ];
        for (text, who, expected) in table {
            let pattern: Pattern = text.parse()?;
            assert_eq!(pattern.matches(who), *expected, "{text} vs {who}");
            assert_eq!(pattern.to_string(), *text);
        }
        Ok(())
    }

    #[test]
    fn parse_errors_are_typed() {
        assert_eq!("".parse::<Pattern>(), Err(PatternError::Empty));
        assert!(matches!(
            "!campfire".parse::<Pattern>(),
            Err(PatternError::NegationInAllow(_))
        ));
        assert_eq!(
            Pattern::parse_deny("!campfire/mallory").map(|p| p.to_string()),
            Ok("campfire/mallory".to_owned())
        );
        let err = "Campfire".parse::<Pattern>().err();
        assert!(matches!(err, Some(PatternError::Invalid { .. })), "{err:?}");
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("neither '*', a peer id nor a name"), "{text}");
        assert!("a/$/b".parse::<Pattern>().is_err());
    }

    #[test]
    fn recipients() -> anyhow::Result<()> {
        let me = caller(1, &["campfire/alice"])?;
        assert!(addresses("*", &me));
        assert!(addresses(&me.peer.to_string(), &me));
        assert!(addresses("campfire", &me));
        assert!(addresses("campfire/alice/$", &me));
        assert!(!addresses("campfire/bob", &me));
        assert!(!addresses("not a pattern", &me));
        assert!(!addresses(&caller(2, &[])?.peer.to_string(), &me));
        Ok(())
    }
}
