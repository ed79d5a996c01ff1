//! Trusted roots: the keys this node believes, each under the name it gives them.
//!
//! Kept in `<data-dir>/trust/roots.toml`, one line per root: `"campfire" = "12D3KooW..."` (a
//! peer id, or the 64 hex digits of the raw ed25519 public key). A key is trusted under one
//! name only, so a chain always grants one name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::files::{self, FileError};
use super::name::Segment;

/// Where the roots live inside the data dir.
pub const ROOTS_FILE: &str = "trust/roots.toml";

/// Why the roots could not be read, changed or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RootsError {
    /// Reading or writing the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not valid (syntax, a bad name, a bad key, a key listed twice).
    #[error(transparent)]
    File(#[from] FileError),
    /// The key is already trusted under another name.
    #[error("that key is already trusted as {0:?}; remove it first")]
    KeyTaken(String),
    /// The text is neither a peer id nor 64 hex digits of an ed25519 key.
    #[error("{0:?} is neither a peer id nor a 64-hex-digit ed25519 public key")]
    BadKey(String),
}

/// Parses a root key: a peer id (`12D3KooW...`) or 64 hex digits of an ed25519 public key.
pub fn parse_key(text: &str) -> Result<[u8; 32], RootsError> {
    let text = text.trim();
    if text.len() == 64 {
        let mut key = [0u8; 32];
        if hex::decode_to_slice(text, &mut key).is_ok()
            && crate::identity::peer_id_of(&key).is_some()
        {
            return Ok(key);
        }
    }
    libp2p::PeerId::from_str(text)
        .ok()
        .and_then(|p| crate::identity::public_key_of(&p))
        .ok_or_else(|| RootsError::BadKey(text.to_owned()))
}

/// The roots a verifier trusts: name -> raw ed25519 public key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roots {
    by_name: BTreeMap<Segment, [u8; 32]>,
}

impl Roots {
    /// The root name `key` is trusted under, if any.
    pub fn name_of(&self, key: &[u8; 32]) -> Option<&Segment> {
        self.by_name
            .iter()
            .find_map(|(name, k)| (k == key).then_some(name))
    }

    /// The key trusted under `name`.
    pub fn key_of(&self, name: &Segment) -> Option<&[u8; 32]> {
        self.by_name.get(name)
    }

    /// Every root, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&Segment, &[u8; 32])> {
        self.by_name.iter()
    }

    /// Trusts `key` as `name`, replacing what `name` meant; refuses a key trusted under
    /// another name.
    pub fn insert(&mut self, name: Segment, key: [u8; 32]) -> Result<(), RootsError> {
        if let Some(other) = self.name_of(&key).filter(|n| **n != name) {
            return Err(RootsError::KeyTaken(other.to_string()));
        }
        self.by_name.insert(name, key);
        Ok(())
    }

    /// Stops trusting `name`; returns its key if it was trusted.
    pub fn remove(&mut self, name: &Segment) -> Option<[u8; 32]> {
        self.by_name.remove(name)
    }

    /// Parses the roots file's text; `path` is for error messages.
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, RootsError> {
        let raw: BTreeMap<String, toml::Spanned<String>> = files::parse(path, text)?;
        let mut roots = Self::default();
        for (name, key) in raw {
            let at = |reason: String| files::error_at(path, text, key.span(), reason);
            let segment: Segment = name
                .parse()
                .map_err(|e| at(format!("root name {name:?}: {e}")))?;
            let parsed = parse_key(key.get_ref()).map_err(|e| at(e.to_string()))?;
            roots
                .insert(segment, parsed)
                .map_err(|e| at(format!("root {name:?}: {e}")))?;
        }
        Ok(roots)
    }

    /// The file's text: one `"name" = "peer id"` line per root.
    pub fn to_toml(&self) -> String {
        let mut text = String::from(
            "# Trusted roots: name = peer id (or 64 hex digits of the ed25519 public key).\n",
        );
        for (name, key) in &self.by_name {
            text.push_str(&format!(
                "\"{name}\" = \"{}\"\n",
                crate::identity::key_label(key)
            ));
        }
        text
    }

    /// Loads `path`; a missing file means no roots.
    pub fn load(path: &Path) -> Result<Self, RootsError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_toml(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(RootsError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Writes `path` atomically (temporary file + rename), so a crash leaves the old or the
    /// new roots, never a mix.
    pub fn save(&self, path: &Path) -> Result<(), RootsError> {
        files::write_atomically(path, self.to_toml().as_bytes()).map_err(|source| RootsError::Io {
            path: path.to_owned(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    #[test]
    fn round_trip_through_the_file() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(ROOTS_FILE);
        let a = Identity::from_seed([1; 32]);
        let b = Identity::from_seed([2; 32]);
        let mut roots = Roots::default();
        roots.insert("campfire".parse()?, a.public_key())?;
        roots.insert("sensors.lab".parse()?, b.public_key())?;
        roots.save(&path)?;
        let loaded = Roots::load(&path)?;
        assert_eq!(loaded, roots);
        assert_eq!(
            loaded.name_of(&a.public_key()).map(Segment::as_str),
            Some("campfire")
        );
        assert!(matches!(
            roots.insert("other".parse()?, a.public_key()),
            Err(RootsError::KeyTaken(n)) if n == "campfire"
        ));
        Ok(())
    }

    #[test]
    fn missing_file_is_no_roots_and_hex_keys_are_read() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        assert_eq!(
            Roots::load(&dir.path().join("none.toml"))?,
            Roots::default()
        );
        let a = Identity::from_seed([1; 32]);
        let text = format!("campfire = \"{}\"\n", hex::encode(a.public_key()));
        let roots = Roots::from_toml(Path::new("r.toml"), &text)?;
        assert!(roots.name_of(&a.public_key()).is_some());
        Ok(())
    }

    #[test]
    fn bad_entries_name_their_line() {
        let text = "# roots\ncampfire = \"12D3KooWnotakey\"\n";
        let err = Roots::from_toml(Path::new("r.toml"), text).err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.starts_with("r.toml:2:"), "{text}");
        assert!(text.contains("neither a peer id"), "{text}");
        let err = Roots::from_toml(Path::new("r.toml"), "\n\nBad = \"x\"\n").err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.starts_with("r.toml:3:"), "{text}");
    }
}
