//! Node identity: one ed25519 key per node, kept in `<data-dir>/identity.key`.
//!
//! The same key signs the messages this node originates and is the node's libp2p identity, so a
//! peer that authenticated a connection (noise) knows the [`PeerId`] that signed a header.
//!
//! The key file (format in `protocols/identity.md`, code in `file.rs`) holds the 32-byte ed25519
//! secret seed between a tag and a checksum, so a damaged file is refused with
//! [`Error::Damaged`] rather than silently read as another key: a node's identity is its peer id,
//! and a new one loses every peer's trust in the old. A new key is created only when no file
//! exists. The file is written atomically with mode 0600 and refused if anyone but the owner may
//! read it. The old format, the bare 32-byte seed, is still read and rewritten in the new one.

mod file;

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey};
use libp2p::identity::Keypair;
use libp2p::PeerId;

pub use file::{Damage, KEY_FILE_LEN, LEGACY_KEY_FILE_LEN};

/// File name of the key inside the data dir.
pub const KEY_FILE: &str = "identity.key";
/// Size of an ed25519 secret seed, from which the whole key is derived.
pub const SEED_LEN: usize = 32;
/// Environment variable naming the data dir when `--data-dir` is not given.
pub const DATA_DIR_ENV: &str = "MULE_DATA_DIR";

/// Why an identity could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key file exists but is readable or writable by others; a leaked key lets anyone
    /// impersonate this node, so we refuse to use it.
    #[error("key file {path} has permissions {mode:o}; it must be readable by its owner only (chmod 600 {path})")]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The key file exists but is not a whole key: using it would make this node someone else,
    /// and making a new key would throw away its identity, so neither happens without a person.
    #[error("key file {path} is damaged: {damage}; restore it from a backup, or move it away to start over with a new identity (a new peer id)")]
    Damaged {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        damage: Damage,
    },
    /// The key file is in a format version this mule does not know: a newer mule wrote it.
    #[error("key file {path} has format version {version}, but this mule reads version {}; use a newer mule", file::VERSION)]
    UnknownVersion {
        /// The key file.
        path: PathBuf,
        /// The version it claims.
        version: u8,
    },
    /// Reading or writing the key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The key file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// No data dir was given and the platform has none.
    #[error("no data dir: pass --data-dir or set {DATA_DIR_ENV}")]
    NoDataDir,
}

/// This node's key: signs headers and authenticates libp2p connections.
#[derive(Clone)]
pub struct Identity {
    signing: SigningKey,
    keypair: Keypair,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("peer_id", &self.peer_id())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// A fresh random identity (tests, and first start).
    pub fn generate() -> Self {
        use rand::RngCore;
        let mut seed = [0u8; SEED_LEN];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        Self::from_seed(seed)
    }

    /// The identity for a known 32-byte seed (test vectors, key files).
    pub fn from_seed(seed: [u8; SEED_LEN]) -> Self {
        let signing = SigningKey::from_bytes(&seed);
        let ed = libp2p::identity::ed25519::SecretKey::try_from_bytes(seed)
            .map(libp2p::identity::ed25519::Keypair::from)
            .map(Keypair::from);
        let keypair = match ed {
            Ok(kp) => kp,
            // try_from_bytes only fails on a wrong length, which the array type rules out.
            Err(_) => unreachable_keypair(),
        };
        Self { signing, keypair }
    }

    /// Loads `<dir>/identity.key`, creating it (and `dir`) on first use.
    pub fn load_or_create(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(KEY_FILE);
        match Self::load(&path) {
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Self::create(dir, &path)
            }
            other => other,
        }
    }

    /// Loads a key file, refusing wide permissions and damaged contents. A file in the old raw
    /// format is rewritten in the current one (if that fails, it is still used, with a warning).
    pub fn load(path: &Path) -> Result<Self, Error> {
        let io_err = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let file = fs::File::open(path).map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
        // Sizes are checked before reading, so a huge file is not read into memory.
        if meta.len() != KEY_FILE_LEN as u64 && meta.len() != LEGACY_KEY_FILE_LEN as u64 {
            return Err(Error::Damaged {
                path: path.to_owned(),
                damage: Damage::Size { len: meta.len() },
            });
        }
        let mut bytes = Vec::with_capacity(KEY_FILE_LEN);
        file.take(KEY_FILE_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err)?;
        let decoded = file::decode(&bytes).map_err(|e| match e {
            file::DecodeError::Damaged(damage) => Error::Damaged {
                path: path.to_owned(),
                damage,
            },
            file::DecodeError::Version(version) => Error::UnknownVersion {
                path: path.to_owned(),
                version,
            },
        })?;
        if decoded.legacy {
            match file::write_atomically(path, &file::encode(&decoded.seed), file::Put::Replace) {
                Ok(()) => {
                    // The old format has no check: say which identity it gave, for a person to
                    // compare with the one they expect.
                    tracing::warn!(path = %path.display(), peer_id = %Self::from_seed(decoded.seed).peer_id(), "read an old-format key file (no checksum) and rewrote it in the current format")
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "could not rewrite the old-format key file; using it as it is")
                }
            }
        }
        Ok(Self::from_seed(decoded.seed))
    }

    fn create(dir: &Path, path: &Path) -> Result<Self, Error> {
        fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_owned(),
            source,
        })?;
        let identity = Self::generate();
        let bytes = file::encode(identity.signing.as_bytes());
        match file::write_atomically(path, &bytes, file::Put::New) {
            Ok(()) => {
                tracing::info!(path = %path.display(), peer_id = %identity.peer_id(), "created a new identity");
                Ok(identity)
            }
            // Another process created it meanwhile: that one is the identity.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Self::load(path),
            Err(source) => Err(Error::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// The libp2p keypair for the Swarm.
    pub fn keypair(&self) -> &Keypair {
        &self.keypair
    }

    /// The libp2p peer id derived from the key.
    pub fn peer_id(&self) -> PeerId {
        self.keypair.public().to_peer_id()
    }

    /// The raw ed25519 public key, as carried in message headers.
    pub fn public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// Signs bytes with the node key.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.signing.sign(msg).to_bytes()
    }

    /// The X25519 secret of the same key (the first half of SHA-512 of the seed, as ed25519
    /// itself derives its scalar): content encrypted to the peer id's Montgomery form opens with
    /// it, so a peer id is all a sender needs to encrypt for this node (`protocols/encryption.md`).
    pub fn x25519_secret(&self) -> [u8; 32] {
        self.signing.to_scalar_bytes()
    }

    /// The X25519 public key matching [`Self::x25519_secret`].
    pub fn x25519_public(&self) -> [u8; 32] {
        self.signing.verifying_key().to_montgomery().to_bytes()
    }
}

/// The X25519 public key of an ed25519 public key (the birational map from Edwards to
/// Montgomery form), or `None` if it is not a valid key or a weak (small-order) one, which no
/// one could decrypt for.
pub fn x25519_public_of(public_key: &[u8; 32]) -> Option<[u8; 32]> {
    let key = ed25519_dalek::VerifyingKey::from_bytes(public_key).ok()?;
    if key.is_weak() {
        return None;
    }
    Some(key.to_montgomery().to_bytes())
}

#[cold]
fn unreachable_keypair() -> Keypair {
    // Only reachable if libp2p changes its seed length; fail loudly rather than run unkeyed.
    panic!("libp2p rejected a 32-byte ed25519 seed")
}

/// The libp2p peer id of a raw ed25519 public key from a header, if it is a valid key.
pub fn peer_id_of(public_key: &[u8; 32]) -> Option<PeerId> {
    let key = libp2p::identity::ed25519::PublicKey::try_from_bytes(public_key).ok()?;
    Some(libp2p::identity::PublicKey::from(key).to_peer_id())
}

/// A key's peer id as text for messages, or its hex if it is not a valid ed25519 key.
pub fn key_label(key: &[u8; 32]) -> String {
    peer_id_of(key)
        .map(|p| p.to_string())
        .unwrap_or_else(|| hex::encode(key))
}

/// The raw ed25519 public key inside a peer id, for peers whose id embeds it (all ed25519 ids).
pub fn public_key_of(peer: &PeerId) -> Option<[u8; 32]> {
    let key = libp2p::identity::PublicKey::try_decode_protobuf(peer.as_ref().digest()).ok()?;
    Some(key.try_into_ed25519().ok()?.to_bytes())
}

/// Resolves the data dir: `--data-dir` (or `MULE_DATA_DIR`, handled by clap), else the platform's.
pub fn data_dir(explicit: Option<PathBuf>) -> Result<PathBuf, Error> {
    match explicit {
        Some(dir) => Ok(dir),
        None => dirs::data_dir()
            .map(|d| d.join("mule"))
            .ok_or(Error::NoDataDir),
    }
}

/// Makes a rename or create inside `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_then_loads_the_same_key() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let a = Identity::load_or_create(dir.path())?;
        let b = Identity::load_or_create(dir.path())?;
        assert_eq!(a.peer_id(), b.peer_id());
        let mode = fs::metadata(dir.path().join(KEY_FILE))?
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(peer_id_of(&a.public_key()), Some(a.peer_id()));
        assert_eq!(public_key_of(&a.peer_id()), Some(a.public_key()));
        Ok(())
    }

    #[test]
    fn refuses_world_readable_key() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        Identity::load_or_create(dir.path())?;
        let path = dir.path().join(KEY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
        let err = Identity::load_or_create(dir.path()).err();
        assert!(matches!(err, Some(Error::Permissions { mode: 0o644, .. })));
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("readable by its owner only"), "{text}");
        Ok(())
    }

    #[test]
    fn refuses_malformed_key() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(KEY_FILE);
        write_private(&path, b"not a key")?;
        let err = Identity::load_or_create(dir.path()).err();
        assert!(
            matches!(
                err,
                Some(Error::Damaged {
                    damage: Damage::Size { len: 9 },
                    ..
                })
            ),
            "{err:?}"
        );
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("holds 9 bytes"), "{text}");
        // Nothing was replaced.
        assert_eq!(fs::read(&path)?, b"not a key");
        Ok(())
    }

    fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
        fs::write(path, bytes)?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
    }

    #[test]
    fn new_key_file_is_tagged_and_round_trips() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let a = Identity::load_or_create(dir.path())?;
        let bytes = fs::read(dir.path().join(KEY_FILE))?;
        assert_eq!(bytes.len(), KEY_FILE_LEN);
        assert_eq!(&bytes[..8], b"mule-key");
        assert_eq!(&bytes[10..42], a.signing.as_bytes());
        let b = Identity::load(&dir.path().join(KEY_FILE))?;
        assert_eq!(a.public_key(), b.public_key());
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path())?.count(), 1);
        Ok(())
    }

    #[test]
    fn old_raw_key_file_loads_and_is_upgraded() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(KEY_FILE);
        write_private(&path, &[0x11; 32])?;
        let old = Identity::load_or_create(dir.path())?;
        assert_eq!(
            old.public_key(),
            Identity::from_seed([0x11; 32]).public_key()
        );
        let bytes = fs::read(&path)?;
        assert_eq!(bytes.len(), KEY_FILE_LEN, "rewritten in the new format");
        assert_eq!(&bytes[..8], b"mule-key");
        let mode = fs::metadata(&path)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = Identity::load_or_create(dir.path())?;
        assert_eq!(again.public_key(), old.public_key());
        Ok(())
    }

    #[test]
    fn damaged_key_file_is_refused_not_replaced() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(KEY_FILE);
        let original = Identity::load_or_create(dir.path())?;
        let good = fs::read(&path)?;
        let cases: [(&str, Vec<u8>); 4] = [
            ("flipped seed byte", {
                let mut b = good.clone();
                b[20] ^= 0x04;
                b
            }),
            ("truncated", good[..KEY_FILE_LEN - 1].to_vec()),
            ("wrong tag", {
                let mut b = good.clone();
                b[..8].copy_from_slice(b"MULE-KEY");
                b
            }),
            (
                "random bytes of the new size",
                (0..KEY_FILE_LEN as u8).collect(),
            ),
        ];
        for (what, bytes) in cases {
            write_private(&path, &bytes)?;
            let err = Identity::load_or_create(dir.path()).err();
            assert!(
                matches!(err, Some(Error::Damaged { .. })),
                "{what}: {err:?}"
            );
            let text = err.map(|e| e.to_string()).unwrap_or_default();
            assert!(text.contains(&path.display().to_string()), "{what}: {text}");
            assert!(text.contains("restore it from a backup"), "{what}: {text}");
            assert!(text.contains("move it away"), "{what}: {text}");
            assert_eq!(fs::read(&path)?, bytes, "{what}: the file was changed");
        }
        write_private(&path, &good)?;
        assert_eq!(
            Identity::load_or_create(dir.path())?.public_key(),
            original.public_key()
        );
        Ok(())
    }

    #[test]
    fn seed_gives_libp2p_and_dalek_the_same_key() {
        let id = Identity::from_seed([7; 32]);
        assert_eq!(public_key_of(&id.peer_id()), Some(id.public_key()));
        let sig = id.sign(b"hello");
        let libp2p_pub = id.keypair().public();
        assert!(libp2p_pub.verify(b"hello", &sig));
    }
}
