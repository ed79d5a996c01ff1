//! Sealing: an envelope (and the file it carries) becomes a message's content, encrypted with
//! age to its recipients, or left open for a broadcast everyone may read. Files are streamed
//! through fixed buffers into the store's staging file, which hashes them on the way, so a 1 GiB
//! attachment needs no more memory than a short text and is written once.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

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

/// Seals a head without attachment (a text, an invite) in memory.
pub fn seal_bytes(head: &Head, seal: &Seal) -> Result<Vec<u8>, SealError> {
    let mut empty = io::empty();
    write_sealed(head, &mut empty, seal, Vec::new(), Path::new("(text)"))
}

/// Seals `head` and the file at `path` (its attachment; `head.attachment.length` must be the
/// file's length) into `out`, streaming: a store's staging file
/// ([`Store::stage`](crate::store::Store::stage)), which hashes what it is given, so the sealed
/// bytes are written and hashed once. Returns `out`, flushed.
pub fn seal_file<W: Write>(head: &Head, path: &Path, seal: &Seal, out: W) -> Result<W, SealError> {
    let mut file = File::open(path).map_err(|source| SealError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut out = write_sealed(head, &mut file, seal, out, path)?;
    out.flush().map_err(|source| SealError::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(out)
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
