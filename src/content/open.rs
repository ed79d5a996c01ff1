//! Opening a message's content with the keys this node holds: age ciphertext for this node or
//! one of its groups, an open envelope (a broadcast), or raw bytes from a client that writes no
//! envelope. Ciphertext for someone else is an answer, not an error.
//!
//! The age header is bounded before age parses it (it would otherwise grow a buffer as long as
//! the claimed header): at most [`MAX_AGE_HEADER`] bytes and [`MAX_STANZAS`] recipient stanzas.

use std::io::{self, Cursor, Read};

use age::DecryptError;

use super::envelope::{EnvelopeError, Head, MAGIC_FAMILY};
use super::groups::GroupName;
use super::keys::{Holder, Keyring};
use super::seal::MAX_RECIPIENTS;

/// First bytes of every age file.
pub const AGE_MAGIC: &[u8] = b"age-encryption.org/";
/// Largest age header accepted.
pub const MAX_AGE_HEADER: usize = 32 * 1024;
/// Most recipient stanzas accepted (mule's own limit plus room for age's "grease" stanza).
pub const MAX_STANZAS: usize = MAX_RECIPIENTS + 8;
/// Bytes of the payload nonce after the header.
const NONCE_LEN: usize = 16;

/// How a message's content was sealed, as its reader sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sealing {
    /// Encrypted for this node's own key.
    ForMe,
    /// Encrypted for a group this node is a member of.
    ForGroup(GroupName),
    /// An envelope in the clear: every relay could read it.
    Open,
    /// Bytes without an envelope (another client, or an older mule).
    Raw,
}

/// Content that opened: how it was sealed, its head (none for raw bytes) and the rest.
pub struct Opened {
    /// How it was sealed.
    pub sealing: Sealing,
    /// The envelope's head; `None` for raw content.
    pub head: Option<Head>,
    /// The body (the attachment's bytes), or the whole content if raw; decrypting as it is read.
    pub body: Box<dyn Read + Send>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("sealing", &self.sealing)
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

/// What opening found.
#[derive(Debug)]
pub enum Outcome {
    /// This node can read it (boxed: a head is large next to the other variant).
    Opened(Box<Opened>),
    /// Encrypted, but for keys this node does not hold.
    ForSomeoneElse,
}

/// Why content that should open does not.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The age header is longer than [`MAX_AGE_HEADER`] or never ends.
    #[error("encryption header larger than {MAX_AGE_HEADER} bytes")]
    HeaderTooLarge,
    /// More stanzas than any mule writes.
    #[error("encryption header has {0} recipients; at most {MAX_STANZAS} are read")]
    TooManyStanzas(usize),
    /// The ciphertext is damaged, tampered with, or not age: it fails authentication.
    #[error("content does not decrypt ({0}): damaged or tampered with")]
    Damaged(String),
    /// The plaintext is not a valid envelope.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// Reading the content failed.
    #[error("reading content: {0}")]
    Io(#[from] io::Error),
}

fn damaged(e: DecryptError) -> OpenError {
    OpenError::Damaged(e.to_string())
}

/// Opens `content` with `keys`. Only the head is read here; the body decrypts as it is read,
/// and a tampered chunk fails that read with an `InvalidData` I/O error.
pub fn open(mut content: impl Read + Send + 'static, keys: &Keyring) -> Result<Outcome, OpenError> {
    let prefix = read_prefix(&mut content, MAX_AGE_HEADER + NONCE_LEN)?;
    if prefix.starts_with(AGE_MAGIC) {
        return open_age(prefix, content, keys);
    }
    let is_envelope = prefix.starts_with(MAGIC_FAMILY);
    let mut reader = Cursor::new(prefix).chain(content);
    if is_envelope {
        let head = Head::read_from(&mut reader)?;
        return Ok(Outcome::Opened(Box::new(Opened {
            sealing: Sealing::Open,
            head: Some(head),
            body: Box::new(reader),
        })));
    }
    Ok(Outcome::Opened(Box::new(Opened {
        sealing: Sealing::Raw,
        head: None,
        body: Box::new(reader),
    })))
}

fn open_age(
    prefix: Vec<u8>,
    rest: impl Read + Send + 'static,
    keys: &Keyring,
) -> Result<Outcome, OpenError> {
    let header_end = age_header_end(&prefix)?;
    let stanzas = count(&prefix[..header_end], b"\n-> ");
    if stanzas > MAX_STANZAS {
        return Err(OpenError::TooManyStanzas(stanzas));
    }
    let Some(head_and_nonce) = prefix.get(..header_end + NONCE_LEN) else {
        return Err(OpenError::Damaged("truncated after its header".into()));
    };
    // Find which key opens it, on the buffered header alone (no payload is read).
    let mut found = None;
    for (holder, identity) in keys.keys() {
        let decryptor = age::Decryptor::new_buffered(head_and_nonce).map_err(damaged)?;
        match decryptor.decrypt(std::iter::once(identity as &dyn age::Identity)) {
            Ok(_) => {
                found = Some((holder, identity));
                break;
            }
            Err(DecryptError::NoMatchingKeys) => continue,
            Err(e) => return Err(damaged(e)),
        }
    }
    let Some((holder, identity)) = found else {
        return Ok(Outcome::ForSomeoneElse);
    };
    let decryptor = age::Decryptor::new(Cursor::new(prefix).chain(rest)).map_err(damaged)?;
    let mut stream = decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .map_err(damaged)?;
    let head = Head::read_from(&mut stream).map_err(|e| match e {
        EnvelopeError::Io(io) if io.kind() == io::ErrorKind::InvalidData => {
            OpenError::Damaged(io.to_string())
        }
        other => other.into(),
    })?;
    Ok(Outcome::Opened(Box::new(Opened {
        sealing: match holder {
            Holder::Me => Sealing::ForMe,
            Holder::Group(name) => Sealing::ForGroup(name),
        },
        head: Some(head),
        body: Box::new(stream),
    })))
}

/// Up to `limit` bytes from the start of `input` (fewer at its end).
fn read_prefix(input: &mut impl Read, limit: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(limit.min(64 * 1024));
    input.take(limit as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Where the age header ends: just after the `--- MAC` line's newline.
fn age_header_end(prefix: &[u8]) -> Result<usize, OpenError> {
    let header = &prefix[..prefix.len().min(MAX_AGE_HEADER)];
    let mac_line = find(header, b"\n---").ok_or(OpenError::HeaderTooLarge)? + 1;
    let newline = header[mac_line..]
        .iter()
        .position(|b| *b == b'\n')
        .ok_or(OpenError::HeaderTooLarge)?;
    Ok(mac_line + newline + 1)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}
