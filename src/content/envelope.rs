//! The content envelope (`protocols/envelope.md`): what a message says, inside its encryption.
//!
//! ```text
//! envelope = magic "mule/envelope/1\n" || u32 big-endian head length || head (CBOR map) || body
//! ```
//! The head holds the text, the attachment's name, media type and length, or a group invite;
//! the body is the attachment's bytes, exactly `length` of them, streamed and never held whole.
//! Unknown head keys are ignored, so later versions can add fields without a new magic.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use super::groups::GroupName;

/// First bytes of every envelope; a new version gets a new magic.
pub const MAGIC: &[u8; 16] = b"mule/envelope/1\n";
/// What every envelope version starts with, to tell "newer mule" from "not an envelope".
pub const MAGIC_FAMILY: &[u8] = b"mule/envelope/";
/// Largest head: it is read whole, so it is bounded.
pub const MAX_HEAD: u32 = 256 * 1024;
/// Longest text in a head; longer texts go as attachments.
pub const MAX_TEXT: usize = 200 * 1024;
/// Longest attachment name or media type, in bytes.
pub const MAX_LABEL: usize = 255;

/// The plaintext header of a message's content.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// The message text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The one attachment, whose bytes follow the head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Attachment>,
    /// A group key handed to the recipient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite: Option<Invite>,
    /// Asks every node that reads the message to answer with a pong, so the sender learns who
    /// is reachable, after how long and over how many hops. Old readers ignore the key and show
    /// the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping: Option<Ping>,
    /// The answer to a ping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pong: Option<Pong>,
}

/// The ping marker. An empty map today: the message id already names the ping and the header
/// carries its creation time, so nothing else is needed; later fields may be added.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {}

/// What a pong says about the ping it answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    /// The ping's message id, 64 hex digits: the pinging side matches answers to its pings.
    pub ping: String,
    /// Relays the ping had passed when it reached the answering node (the header's `hops`
    /// length), so the pinging side can tell the hops of both legs.
    pub hops: u32,
}

/// A file carried in the body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The sender's file name; untrusted: [`super::save`] sanitises it.
    pub name: String,
    /// Media type, e.g. `image/png`.
    #[serde(rename = "type")]
    pub media_type: String,
    /// Body length in bytes.
    pub length: u64,
}

/// A group key, so the recipient can read (and send) the group's messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    /// The group's name.
    pub group: String,
    /// The group's age identity, `AGE-SECRET-KEY-1...`.
    pub key: String,
}

/// Why an envelope is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The bytes do not start with an envelope magic.
    #[error("not a mule envelope")]
    NotAnEnvelope,
    /// A later envelope version.
    #[error("envelope version {0:?} is newer than this mule reads; upgrade mule")]
    NewerVersion(String),
    /// The head length is zero or over [`MAX_HEAD`].
    #[error("envelope head of {0} bytes; the limit is {MAX_HEAD}")]
    HeadSize(u32),
    /// The head is not the CBOR map described in `protocols/envelope.md`.
    #[error("envelope head is malformed: {0}")]
    Malformed(String),
    /// A field breaks its limit.
    #[error("envelope {field} is invalid: {reason}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The body is shorter or longer than the attachment's length.
    #[error("envelope body is {actual} bytes but the head says {expected}")]
    BodyLength {
        /// What the head says.
        expected: u64,
        /// What came (at least).
        actual: u64,
    },
    /// Reading or writing failed (or decryption, surfaced by age as an I/O error).
    #[error("{0}")]
    Io(#[from] io::Error),
}

fn invalid(field: &'static str, reason: impl Into<String>) -> EnvelopeError {
    EnvelopeError::Invalid {
        field,
        reason: reason.into(),
    }
}

fn check_label(field: &'static str, value: &str) -> Result<(), EnvelopeError> {
    if value.is_empty() || value.len() > MAX_LABEL {
        return Err(invalid(field, format!("must be 1 to {MAX_LABEL} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(())
}

impl Head {
    /// Checks every field's limits; both sides call it.
    pub fn validate(&self) -> Result<(), EnvelopeError> {
        if let Some(text) = &self.text {
            if text.len() > MAX_TEXT {
                return Err(invalid(
                    "text",
                    format!(
                        "{} bytes; the limit is {MAX_TEXT} (send longer texts as a file)",
                        text.len()
                    ),
                ));
            }
        }
        if let Some(a) = &self.attachment {
            check_label("attachment name", &a.name)?;
            check_label("attachment type", &a.media_type)?;
        }
        if let Some(i) = &self.invite {
            i.group
                .parse::<GroupName>()
                .map_err(|e| invalid("invite group", e.to_string()))?;
            super::keys::age_identity_from_str(&i.key)
                .map_err(|e| invalid("invite key", e.to_string()))?;
        }
        if let Some(p) = &self.pong {
            p.ping
                .parse::<crate::message::MessageId>()
                .map_err(|_| invalid("pong ping", "expected 64 hex digits"))?;
        }
        if self.text.is_none() && self.attachment.is_none() && self.invite.is_none() {
            return Err(invalid(
                "head",
                "says nothing: no text, attachment or invite",
            ));
        }
        Ok(())
    }

    /// Bytes of the body that follow the head.
    pub fn body_length(&self) -> u64 {
        self.attachment.as_ref().map_or(0, |a| a.length)
    }

    /// Writes magic, length and head (not the body).
    pub fn write_to(&self, out: &mut impl Write) -> Result<(), EnvelopeError> {
        self.validate()?;
        let head = cbor4ii::serde::to_vec(Vec::new(), self)
            .map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        let len = u32::try_from(head.len())
            .ok()
            .filter(|l| *l <= MAX_HEAD)
            .ok_or(EnvelopeError::HeadSize(u32::MAX))?;
        out.write_all(MAGIC)?;
        out.write_all(&len.to_be_bytes())?;
        out.write_all(&head)?;
        Ok(())
    }

    /// The whole envelope of a head without body, in memory.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EnvelopeError> {
        let mut out = Vec::new();
        self.write_to(&mut out)?;
        Ok(out)
    }

    /// Reads magic, length and head from `input`, leaving it at the body. The head is bounded
    /// by [`MAX_HEAD`] before anything is allocated.
    pub fn read_from(input: &mut impl Read) -> Result<Self, EnvelopeError> {
        let mut magic = [0u8; 16];
        read_exact_or(input, &mut magic, EnvelopeError::NotAnEnvelope)?;
        if &magic != MAGIC {
            return Err(if magic.starts_with(MAGIC_FAMILY) {
                EnvelopeError::NewerVersion(String::from_utf8_lossy(&magic).trim().to_string())
            } else {
                EnvelopeError::NotAnEnvelope
            });
        }
        let mut len = [0u8; 4];
        read_exact_or(
            input,
            &mut len,
            EnvelopeError::Malformed("truncated".into()),
        )?;
        let len = u32::from_be_bytes(len);
        if len == 0 || len > MAX_HEAD {
            return Err(EnvelopeError::HeadSize(len));
        }
        let mut head = vec![0u8; len as usize];
        read_exact_or(
            input,
            &mut head,
            EnvelopeError::Malformed("head truncated".into()),
        )?;
        let head: Head = cbor4ii::serde::from_slice(&head)
            .map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        head.validate()?;
        Ok(head)
    }
}

fn read_exact_or(
    input: &mut impl Read,
    buf: &mut [u8],
    short: EnvelopeError,
) -> Result<(), EnvelopeError> {
    match input.read_exact(buf) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(short),
        Err(e) => Err(e.into()),
    }
}

/// Copies exactly `head.body_length()` bytes of body from `input` to `out` and checks nothing
/// follows: a body of another length is refused (and `out` then holds a partial copy, which the
/// caller discards).
pub fn copy_body(
    head: &Head,
    input: &mut impl Read,
    out: &mut impl Write,
) -> Result<u64, EnvelopeError> {
    let expected = head.body_length();
    let copied = io::copy(&mut input.take(expected), out)?;
    if copied < expected {
        return Err(EnvelopeError::BodyLength {
            expected,
            actual: copied,
        });
    }
    let mut probe = [0u8; 1];
    if input.read(&mut probe)? != 0 {
        return Err(EnvelopeError::BodyLength {
            expected,
            actual: expected + 1,
        });
    }
    Ok(copied)
}
