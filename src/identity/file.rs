//! The key file format (`protocols/identity.md`): a tag, a version, the key type, the seed and a
//! checksum, so that a damaged or foreign file is refused instead of silently becoming another
//! identity. Also reads the old raw format (the bare 32-byte seed) and writes files atomically.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use super::SEED_LEN;

/// First bytes of every key file: says what the file is.
pub(super) const MAGIC: &[u8; 8] = b"mule-key";
/// The format version this code writes and reads.
pub(super) const VERSION: u8 = 1;
/// Key type byte for ed25519, the only one.
pub(super) const ED25519: u8 = 1;
/// Bytes of the checksum: the start of sha256 over everything before it.
pub(super) const CHECKSUM_LEN: usize = 8;
/// Size of a key file: magic, version, key type, seed, checksum.
pub const KEY_FILE_LEN: usize = MAGIC.len() + 2 + SEED_LEN + CHECKSUM_LEN;
/// Size of an old-format key file: the bare seed, without tag or checksum.
pub const LEGACY_KEY_FILE_LEN: usize = SEED_LEN;

// The two formats are told apart by size alone.
const _: () = assert!(KEY_FILE_LEN != LEGACY_KEY_FILE_LEN);

/// What is wrong with a key file's contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Damage {
    /// Not the size of either format.
    #[error("it holds {len} bytes, but a key file holds {KEY_FILE_LEN} (or {LEGACY_KEY_FILE_LEN} in the old raw format)")]
    Size {
        /// Its size.
        len: u64,
    },
    /// Does not start with the tag `mule-key`.
    #[error("it does not start with the tag \"mule-key\", so it is not a mule key file")]
    Tag,
    /// A key type other than ed25519.
    #[error("its key type is {0}, but the only known type is ed25519 ({ED25519})")]
    KeyType(u8),
    /// The checksum does not match the bytes before it.
    #[error("its checksum does not match its contents: some bytes changed")]
    Checksum,
}

/// A decoded file: the seed, and whether it was in the old format (and should be rewritten).
#[derive(Debug)]
pub(super) struct Decoded {
    pub(super) seed: [u8; SEED_LEN],
    pub(super) legacy: bool,
}

/// Why bytes did not decode.
#[derive(Debug)]
pub(super) enum DecodeError {
    Damaged(Damage),
    /// A version this code does not know: a newer mule wrote it.
    Version(u8),
}

/// The file's bytes for `seed`.
pub(super) fn encode(seed: &[u8; SEED_LEN]) -> [u8; KEY_FILE_LEN] {
    let mut out = [0u8; KEY_FILE_LEN];
    let body = KEY_FILE_LEN - CHECKSUM_LEN;
    out[..MAGIC.len()].copy_from_slice(MAGIC);
    out[MAGIC.len()] = VERSION;
    out[MAGIC.len() + 1] = ED25519;
    out[MAGIC.len() + 2..body].copy_from_slice(seed);
    let sum = checksum(&out[..body]);
    out[body..].copy_from_slice(&sum);
    out
}

/// Reads either format: the old one only when the file is exactly [`LEGACY_KEY_FILE_LEN`] bytes.
pub(super) fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    if let Ok(seed) = <[u8; LEGACY_KEY_FILE_LEN]>::try_from(bytes) {
        return Ok(Decoded { seed, legacy: true });
    }
    let damaged = |d| Err(DecodeError::Damaged(d));
    if bytes.len() != KEY_FILE_LEN {
        return damaged(Damage::Size {
            len: bytes.len() as u64,
        });
    }
    let body = KEY_FILE_LEN - CHECKSUM_LEN;
    if &bytes[..MAGIC.len()] != MAGIC {
        return damaged(Damage::Tag);
    }
    // The checksum first: a flipped bit anywhere is "damaged", not a strange version or type.
    if checksum(&bytes[..body])[..] != bytes[body..] {
        return damaged(Damage::Checksum);
    }
    match (bytes[MAGIC.len()], bytes[MAGIC.len() + 1]) {
        (VERSION, ED25519) => {}
        (VERSION, other) => return damaged(Damage::KeyType(other)),
        (version, _) => return Err(DecodeError::Version(version)),
    }
    let mut seed = [0u8; SEED_LEN];
    seed.copy_from_slice(&bytes[MAGIC.len() + 2..body]);
    Ok(Decoded {
        seed,
        legacy: false,
    })
}

fn checksum(body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let digest = Sha256::digest(body);
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&digest[..CHECKSUM_LEN]);
    out
}

/// How [`write_atomically`] puts the new file in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Put {
    /// Only if no file is there (a hard link fails if the name exists), so two processes
    /// creating a key at once do not overwrite each other's.
    New,
    /// Replacing the file there (rename).
    Replace,
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the whole new one:
/// a temporary file in the same directory, mode 0600, fsynced, then linked or renamed into place
/// and the directory fsynced. Returns `AlreadyExists` for [`Put::New`] if `path` exists.
pub(super) fn write_atomically(path: &Path, bytes: &[u8], put: Put) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("key");
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        match put {
            Put::New => fs::hard_link(&tmp, path),
            Put::Replace => fs::rename(&tmp, path),
        }
    })();
    // After a link the temporary name is redundant; after a failure it is debris.
    let _ = fs::remove_file(&tmp);
    written?;
    super::sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_flipped_byte_is_refused() {
        let seed = [0x42; SEED_LEN];
        let bytes = encode(&seed);
        assert_eq!(bytes.len(), 50);
        // The example in protocols/identity.md.
        assert_eq!(
            hex::encode(bytes),
            format!("6d756c652d6b65790101{}354a1e8f906aebeb", "42".repeat(32))
        );
        let decoded = decode(&bytes).ok();
        assert!(matches!(decoded, Some(Decoded { seed: s, legacy: false }) if s == seed));
        for i in 0..bytes.len() {
            let mut bad = bytes;
            bad[i] ^= 0x01;
            assert!(decode(&bad).is_err(), "flipped byte {i} accepted");
        }
    }

    #[test]
    fn damage_is_named() {
        let bytes = encode(&[1; SEED_LEN]);
        assert!(matches!(
            decode(&bytes[..49]),
            Err(DecodeError::Damaged(Damage::Size { len: 49 }))
        ));
        let mut tag = bytes;
        tag[0] = b'M';
        assert!(matches!(
            decode(&tag),
            Err(DecodeError::Damaged(Damage::Tag))
        ));
        let mut sum = bytes;
        sum[20] ^= 0x80;
        assert!(matches!(
            decode(&sum),
            Err(DecodeError::Damaged(Damage::Checksum))
        ));
    }

    #[test]
    fn unknown_version_and_key_type_with_a_valid_checksum() {
        let body = KEY_FILE_LEN - CHECKSUM_LEN;
        let reseal = |mut b: [u8; KEY_FILE_LEN]| {
            let sum = checksum(&b[..body]);
            b[body..].copy_from_slice(&sum);
            b
        };
        let mut v2 = encode(&[1; SEED_LEN]);
        v2[8] = 2;
        assert!(matches!(decode(&reseal(v2)), Err(DecodeError::Version(2))));
        let mut rsa = encode(&[1; SEED_LEN]);
        rsa[9] = 7;
        assert!(matches!(
            decode(&reseal(rsa)),
            Err(DecodeError::Damaged(Damage::KeyType(7)))
        ));
    }
}
