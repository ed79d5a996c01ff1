//! Sealing: an envelope (and the file it carries) becomes a message's content, encrypted with
//! age to its recipients, or left open for a broadcast everyone may read. Files are streamed
//! through fixed buffers into a temporary file beside the store, hashed on the way, so a 1 GiB
//! attachment needs no more memory than a short text.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::envelope::{EnvelopeError, Head};
use super::keys::Recipient;

/// Most recipients one message is sealed for (each costs a stanza in the age header, and an
/// X25519 operation per key at every reader).
pub const MAX_RECIPIENTS: usize = 64;

/// Who can open a message.
#[derive(Debug, Clone)]
pub enum Seal {
    /// Only the holders of these keys.
    For(Vec<Recipient>),
    /// Everyone, relays included (a broadcast without a group).
    Open,
}

/// Why content could not be sealed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The envelope breaks its format's limits.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// Nobody to seal for.
    #[error("no recipient key to encrypt for")]
    NoRecipients,
    /// More keys than one header holds.
    #[error("{0} recipient keys; a message is sealed for at most {MAX_RECIPIENTS}")]
    TooManyRecipients(usize),
    /// age refused the recipients.
    #[error("encryption failed: {0}")]
    Encrypt(String),
    /// The file to send changed size while it was read.
    #[error("{path} changed while it was being sent ({expected} bytes expected)")]
    FileChanged {
        /// The file.
        path: PathBuf,
        /// Its length when the envelope was written.
        expected: u64,
    },
    /// Reading the file or writing the sealed copy failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// Sealed content in a temporary file, with what the header must say about it.
#[derive(Debug)]
pub struct Sealed {
    /// The ciphertext (or open envelope); deleted when dropped.
    pub file: tempfile::NamedTempFile,
    /// Its length.
    pub length: u64,
    /// Its SHA-256.
    pub sha256: [u8; 32],
}

/// Seals a head without attachment (a text, an invite) in memory.
pub fn seal_bytes(head: &Head, seal: &Seal) -> Result<Vec<u8>, SealError> {
    let mut empty = io::empty();
    write_sealed(head, &mut empty, seal, Vec::new(), Path::new("(text)"))
}

/// Seals `head` and the file at `path` (its attachment; `head.attachment.length` must be the
/// file's length) into a temporary file in `tmp_dir`, streaming.
pub fn seal_file(
    head: &Head,
    path: &Path,
    seal: &Seal,
    tmp_dir: &Path,
) -> Result<Sealed, SealError> {
    let io_err = |p: &Path| {
        let p = p.to_owned();
        move |source| SealError::Io { path: p, source }
    };
    std::fs::create_dir_all(tmp_dir).map_err(io_err(tmp_dir))?;
    let tmp = tempfile::Builder::new()
        .prefix("sealing-")
        .tempfile_in(tmp_dir)
        .map_err(io_err(tmp_dir))?;
    let out = Hashing::new(BufWriter::with_capacity(
        1 << 16,
        tmp.as_file().try_clone().map_err(io_err(tmp.path()))?,
    ));
    let mut file = File::open(path).map_err(io_err(path))?;
    let out = write_sealed(head, &mut file, seal, out, path)?;
    let (length, sha256, writer) = out.finish();
    let f = writer
        .into_inner()
        .map_err(|e| io_err(tmp.path())(e.into_error()))?;
    f.sync_all().map_err(io_err(tmp.path()))?;
    Ok(Sealed {
        file: tmp,
        length,
        sha256,
    })
}

fn write_sealed<W: Write>(
    head: &Head,
    body: &mut impl Read,
    seal: &Seal,
    out: W,
    path: &Path,
) -> Result<W, SealError> {
    match seal {
        Seal::Open => write_plain(head, body, out, path),
        Seal::For(recipients) => {
            if recipients.is_empty() {
                return Err(SealError::NoRecipients);
            }
            if recipients.len() > MAX_RECIPIENTS {
                return Err(SealError::TooManyRecipients(recipients.len()));
            }
            let keys = recipients.iter().map(|r| &r.key as &dyn age::Recipient);
            let encryptor = age::Encryptor::with_recipients(keys)
                .map_err(|e| SealError::Encrypt(e.to_string()))?;
            let io_err = |source| SealError::Io {
                path: path.to_owned(),
                source,
            };
            let writer = encryptor.wrap_output(out).map_err(io_err)?;
            let writer = write_plain(head, body, writer, path)?;
            writer.finish().map_err(io_err)
        }
    }
}

/// The envelope itself: head, then exactly the attachment's bytes.
fn write_plain<W: Write>(
    head: &Head,
    body: &mut impl Read,
    mut out: W,
    path: &Path,
) -> Result<W, SealError> {
    head.write_to(&mut out)?;
    let expected = head.body_length();
    let copied = io::copy(&mut body.take(expected), &mut out).map_err(|source| SealError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut probe = [0u8; 1];
    let more = body.read(&mut probe).map_err(|source| SealError::Io {
        path: path.to_owned(),
        source,
    })?;
    if copied != expected || more != 0 {
        return Err(SealError::FileChanged {
            path: path.to_owned(),
            expected,
        });
    }
    Ok(out)
}

/// A writer that counts and hashes what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    length: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            length: 0,
        }
    }

    fn finish(self) -> (u64, [u8; 32], W) {
        (self.length, self.hasher.finalize().into(), self.inner)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.length += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
