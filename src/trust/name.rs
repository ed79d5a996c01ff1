//! Names: `campfire/alice/phone`, a root name followed by the extensions certificates grant.
//!
//! A name is a `/`-separated list of segments. Segments use a small alphabet (lowercase ASCII
//! letters, digits, `-`, `_`, `.`) so that a name can never be confused with a peer id (which
//! has uppercase letters), with the pattern tokens `*`, `$` and `!`, or with another name that
//! merely looks the same in a different Unicode form.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a text is not a name or a name segment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// A segment is empty (an empty name, or `//`, or a `/` at either end).
    #[error("name {0:?} has an empty segment; segments are separated by single '/'")]
    EmptySegment(String),
    /// A segment is longer than [`Segment::MAX_LEN`].
    #[error("name segment {segment:?} is {len} bytes; a segment is at most {max} bytes")]
    SegmentTooLong {
        /// The offending segment (cut to its first 64 bytes' worth of characters).
        segment: String,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A character outside the segment alphabet.
    #[error(
        "name segment {segment:?} contains {bad:?}; segments use only a-z, 0-9, '-', '_' and '.'"
    )]
    BadCharacter {
        /// The offending segment.
        segment: String,
        /// The first character not allowed.
        bad: char,
    },
    /// The whole name is longer than [`Name::MAX_LEN`].
    #[error("name is {len} bytes; a name is at most {max} bytes")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// One segment of a name: what a root is called, or what one certificate grants.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Segment(String);

impl Segment {
    /// Longest segment, in bytes.
    pub const MAX_LEN: usize = 64;

    /// The segment as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn allowed(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
}

impl FromStr for Segment {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, NameError> {
        if s.is_empty() {
            return Err(NameError::EmptySegment(s.to_owned()));
        }
        if s.len() > Self::MAX_LEN {
            return Err(NameError::SegmentTooLong {
                segment: s.chars().take(Self::MAX_LEN).collect(),
                len: s.len(),
                max: Self::MAX_LEN,
            });
        }
        if let Some(bad) = s.chars().find(|&c| !allowed(c)) {
            return Err(NameError::BadCharacter {
                segment: s.to_owned(),
                bad,
            });
        }
        Ok(Self(s.to_owned()))
    }
}

impl TryFrom<String> for Segment {
    type Error = NameError;

    fn try_from(s: String) -> Result<Self, NameError> {
        s.parse()
    }
}

impl From<Segment> for String {
    fn from(s: Segment) -> Self {
        s.0
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A full name: a root name and zero or more extensions, e.g. `campfire/alice/phone`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

impl Name {
    /// Longest name, in bytes, separators included.
    pub const MAX_LEN: usize = 256;

    /// The name a root holds by itself.
    pub fn root(segment: &Segment) -> Self {
        Self(segment.0.clone())
    }

    /// This name extended by one segment, e.g. `campfire` + `alice`.
    pub fn child(&self, segment: &Segment) -> Result<Self, NameError> {
        let len = self.0.len() + 1 + segment.0.len();
        if len > Self::MAX_LEN {
            return Err(NameError::TooLong {
                len,
                max: Self::MAX_LEN,
            });
        }
        Ok(Self(format!("{}/{}", self.0, segment.0)))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `self` is `prefix` or lies below it, segment-wise (`campfire/alice` is under
    /// `campfire`; `campfire/alicex` is not under `campfire/alice`).
    pub fn is_under(&self, prefix: &Name) -> bool {
        self.is_strictly_under(prefix) || self == prefix
    }

    /// Whether `self` lies below `prefix` by at least one segment.
    pub fn is_strictly_under(&self, prefix: &Name) -> bool {
        self.0
            .strip_prefix(prefix.as_str())
            .is_some_and(|rest| rest.starts_with('/'))
    }
}

impl FromStr for Name {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, NameError> {
        if s.len() > Self::MAX_LEN {
            return Err(NameError::TooLong {
                len: s.len(),
                max: Self::MAX_LEN,
            });
        }
        for segment in s.split('/') {
            if segment.is_empty() {
                return Err(NameError::EmptySegment(s.to_owned()));
            }
            segment.parse::<Segment>()?;
        }
        Ok(Self(s.to_owned()))
    }
}

impl TryFrom<String> for Name {
    type Error = NameError;

    fn try_from(s: String) -> Result<Self, NameError> {
        s.parse()
    }
}

impl From<Name> for String {
    fn from(n: Name) -> Self {
        n.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_names() {
        assert!("alice".parse::<Segment>().is_ok());
        assert!("a-b_c.9".parse::<Segment>().is_ok());
        assert!(matches!(
            "Alice".parse::<Segment>(),
            Err(NameError::BadCharacter { bad: 'A', .. })
        ));
        assert!(matches!(
            "a".repeat(65).parse::<Segment>(),
            Err(NameError::SegmentTooLong { len: 65, .. })
        ));
        assert!(matches!(
            "campfire//alice".parse::<Name>(),
            Err(NameError::EmptySegment(_))
        ));
        assert!(matches!(
            "".parse::<Name>(),
            Err(NameError::EmptySegment(_))
        ));
        let long = vec!["abcdefgh"; 29].join("/");
        assert!(matches!(
            long.parse::<Name>(),
            Err(NameError::TooLong { len: 260, .. })
        ));
    }

    #[test]
    fn under_is_segment_wise() -> anyhow::Result<()> {
        let alice: Name = "campfire/alice".parse()?;
        assert!("campfire/alice/phone".parse::<Name>()?.is_under(&alice));
        assert!(alice.is_under(&alice));
        assert!(!alice.is_strictly_under(&alice));
        assert!(!"campfire/alicex".parse::<Name>()?.is_under(&alice));
        assert!(!"campfire".parse::<Name>()?.is_under(&alice));
        Ok(())
    }
}
