//! Node identity: one ed25519 key per node, kept in `<data-dir>/identity.key`.
//!
//! The same key signs the messages this node originates and is the node's libp2p identity, so a
//! peer that authenticated a connection (noise) knows the [`PeerId`] that signed a header. The key
//! file holds the 32-byte ed25519 secret seed and nothing else; it is created on first use with
//! mode 0600 and refused if anyone but the owner may read it.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey};
use libp2p::identity::Keypair;
use libp2p::PeerId;

/// File name of the key inside the data dir.
pub const KEY_FILE: &str = "identity.key";
/// Size of the key file: a raw ed25519 secret seed.
pub const KEY_FILE_LEN: usize = 32;
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
    /// The key file is not a 32-byte ed25519 seed.
    #[error("key file {path} holds {len} bytes; an ed25519 key file holds exactly {KEY_FILE_LEN}")]
    WrongSize {
        /// The key file.
        path: PathBuf,
        /// Its size in bytes.
        len: u64,
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
        let mut seed = [0u8; KEY_FILE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        Self::from_seed(seed)
    }

    /// The identity for a known 32-byte seed (test vectors, key files).
    pub fn from_seed(seed: [u8; KEY_FILE_LEN]) -> Self {
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

    /// Loads a key file, refusing wide permissions and wrong sizes.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let io_err = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = fs::File::open(path).map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
        if meta.len() != KEY_FILE_LEN as u64 {
            return Err(Error::WrongSize {
                path: path.to_owned(),
                len: meta.len(),
            });
        }
        let mut seed = [0u8; KEY_FILE_LEN];
        file.read_exact(&mut seed).map_err(io_err)?;
        Ok(Self::from_seed(seed))
    }

    fn create(dir: &Path, path: &Path) -> Result<Self, Error> {
        let io_err = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_owned(),
            source,
        })?;
        let identity = Self::generate();
        // Write to a temporary name and rename, so a crash never leaves a short key file.
        let tmp = dir.join(format!("{KEY_FILE}.tmp"));
        let _ = fs::remove_file(&tmp);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err)?;
        file.write_all(identity.signing.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io_err)?;
        // create_new(false) would race another process creating the key; link fails if it exists.
        match fs::hard_link(&tmp, path) {
            Ok(()) => {
                let _ = fs::remove_file(&tmp);
                sync_dir(dir).map_err(io_err)?;
                tracing::info!(path = %path.display(), peer_id = %identity.peer_id(), "created a new identity");
                Ok(identity)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let _ = fs::remove_file(&tmp);
                Self::load(path)
            }
            Err(e) => Err(io_err(e)),
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
        fs::write(&path, b"not a key")?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
        let err = Identity::load_or_create(dir.path()).err();
        assert!(
            matches!(err, Some(Error::WrongSize { len: 9, .. })),
            "{err:?}"
        );
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("holds 9 bytes"), "{text}");
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
