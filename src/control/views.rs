//! What `mule list` and `mule inbox` show of a message; computed from the store, so it works
//! with or without a running node.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use libp2p::PeerId;
use serde::{Deserialize, Serialize};

use crate::content::envelope::{self, EnvelopeError, Head};
use crate::content::groups::{Groups, Installed};
use crate::content::keys::{KeyError, Keyring};
use crate::content::open::{open, OpenError, Opened, Outcome, Sealing};
use crate::content::save;
use crate::identity::{self, Identity};
use crate::node::relay::{self, Me};
use crate::store::{self, Store, Stored};
use crate::trust::{self, Roots};

/// Raw texts (content without an envelope) up to this size are shown inline; larger or binary
/// contents are saved to a file.
pub const MAX_INLINE_TEXT: u64 = 64 * 1024;
/// Default save dir for attachments, inside the data dir.
pub const INBOX_DIR: &str = "inbox";

/// How a message was sealed, as the inbox shows it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Sealed {
    /// Encrypted for this node.
    ForMe,
    /// Encrypted for one of this node's groups.
    ForGroup(String),
    /// An open envelope: readable by every relay.
    Open,
    /// No envelope (another client or an older mule): readable by every relay.
    Raw,
    /// Encrypted for keys this node does not hold.
    ForSomeoneElse,
    /// Encrypted for this node but damaged or tampered with.
    Unreadable(String),
}

impl From<&Sealing> for Sealed {
    fn from(s: &Sealing) -> Self {
        match s {
            Sealing::ForMe => Self::ForMe,
            Sealing::ForGroup(g) => Self::ForGroup(g.to_string()),
            Sealing::Open => Self::Open,
            Sealing::Raw => Self::Raw,
        }
    }
}

/// An attachment as the inbox shows it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AttachmentView {
    /// The name the sender gave (untrusted; the saved name is sanitised).
    pub name: String,
    /// Its media type.
    pub media_type: String,
    /// Its length.
    pub length: u64,
    /// Where it was saved, if it was.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub saved_to: Option<String>,
}

/// One message as the CLI shows it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MessageView {
    /// Message id (hex).
    pub id: String,
    /// Sender's peer id.
    pub sender: String,
    /// The sender's names its header's chains prove against this node's roots.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub sender_names: Vec<String>,
    /// Recipient.
    pub recipient: String,
    /// Creation time, Unix ms.
    pub created_ms: u64,
    /// When this node stored it, Unix ms.
    pub received_ms: u64,
    /// Expiry, Unix ms.
    pub expires_ms: u64,
    /// Content length.
    pub length: u64,
    /// Relays it passed, as peer ids.
    pub hops: Vec<String>,
    /// The content as text, when it is short UTF-8 (inbox only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub text: Option<String>,
    /// Where raw content (no envelope) was saved, when it is not shown as text (inbox only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub file: Option<String>,
    /// How it was sealed (inbox only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sealed: Option<Sealed>,
    /// Its attachment (inbox only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub attachment: Option<AttachmentView>,
    /// Something else worth telling: an invite installed, an attachment not saved.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub note: Option<String>,
    /// The message is a ping (inbox only): readers that answer pings send a pong.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub ping: bool,
    /// The message answers a ping (inbox only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pong: Option<crate::content::envelope::Pong>,
}

fn hop_name(bytes: &[u8]) -> String {
    PeerId::from_bytes(bytes)
        .map(|p| p.to_string())
        .unwrap_or_else(|_| format!("0x{}", hex::encode(bytes)))
}

impl MessageView {
    /// The relay view: no content; the sender's names as `roots` verify them now.
    pub fn of(stored: &Stored, roots: &Roots) -> Self {
        let h = &stored.header;
        let names = trust::names_of(&h.sender, &h.chains, roots, crate::message::now_ms());
        Self {
            id: h.id.to_string(),
            sender: identity::peer_id_of(&h.sender)
                .map(|p| p.to_string())
                .unwrap_or_else(|| hex::encode(h.sender)),
            sender_names: names.verified.iter().map(|v| v.name.to_string()).collect(),
            recipient: h.recipient.clone(),
            created_ms: h.created_ms,
            received_ms: stored.received_ms,
            expires_ms: h.expires_ms(),
            length: h.length,
            hops: h.hops.iter().map(|b| hop_name(b)).collect(),
            text: None,
            file: None,
            sealed: None,
            attachment: None,
            note: None,
            ping: false,
            pong: None,
        }
    }
}

/// Every complete, unexpired message, in creation order.
pub async fn list(store: &Store, roots: &Roots) -> Result<Vec<MessageView>, store::Error> {
    Ok(store
        .manifest(None, usize::MAX, crate::message::now_ms())
        .await?
        .iter()
        .map(|s| MessageView::of(s, roots))
        .collect())
}

/// Who reads the inbox, and where its attachments go.
#[derive(Debug)]
pub struct Reader<'a> {
    /// The data dir (group keys; `inbox/` is the default save dir).
    pub data_dir: &'a Path,
    /// This node's identity (its own key opens what was sealed for it).
    pub identity: &'a Identity,
    /// This node with its names (which messages are addressed to it).
    pub me: &'a Me,
    /// Roots that verify senders' names.
    pub roots: &'a Roots,
    /// Where attachments are saved; `None`: `<data-dir>/inbox/`.
    pub save_dir: Option<PathBuf>,
}

impl Reader<'_> {
    fn save_dir(&self) -> PathBuf {
        self.save_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join(INBOX_DIR))
    }
}

/// Why the inbox could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// This node's key cannot be used for decryption.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A blocking task failed.
    #[error("inbox task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Messages addressed to this node (`*`, its peer id or one of its names), opened with its own
/// and its groups' keys: texts inline, attachments saved under sanitised names, group invites
/// installed; what was sealed for someone else is listed as such, never an error.
pub async fn inbox(store: &Store, reader: &Reader<'_>) -> Result<Vec<MessageView>, Error> {
    let keyring = reader.keyring()?;
    let mut out = Vec::new();
    for stored in store
        .manifest(None, usize::MAX, crate::message::now_ms())
        .await?
    {
        if !relay::addresses(&stored.header, reader.me, crate::message::now_ms()) {
            continue;
        }
        out.push(read(store, reader, &keyring, &stored).await?);
    }
    Ok(out)
}

impl Reader<'_> {
    /// This node's own key and its groups' keys as they are now (a group joined later needs a
    /// new keyring).
    pub fn keyring(&self) -> Result<Arc<Keyring>, Error> {
        Ok(Arc::new(Keyring::new(
            self.identity,
            Groups::at(self.data_dir).usable(),
        )?))
    }
}

/// One stored message as the inbox shows it, opened with `keyring` (see [`inbox`]): for a
/// reader that follows arrivals one at a time, such as `mule chat`. Whether it is addressed to
/// this node is the caller's question.
pub async fn read(
    store: &Store,
    reader: &Reader<'_>,
    keyring: &Arc<Keyring>,
    stored: &Stored,
) -> Result<MessageView, Error> {
    let h = &stored.header;
    let mut view = MessageView::of(stored, reader.roots);
    let (_, content) = store.read(h.id).await?;
    let job = Job {
        id: h.id.to_string(),
        length: h.length,
        from: view.sender.clone(),
        keyring: keyring.clone(),
        save_dir: reader.save_dir(),
        data_dir: reader.data_dir.to_owned(),
    };
    let opened = tokio::task::spawn_blocking(move || job.run(content)).await?;
    opened.fill(&mut view);
    Ok(view)
}

/// Opening one message, on a blocking thread.
struct Job {
    id: String,
    length: u64,
    from: String,
    keyring: Arc<Keyring>,
    save_dir: PathBuf,
    data_dir: PathBuf,
}

/// What the inbox learned by opening one message.
#[derive(Default)]
struct Reading {
    sealing: Option<Sealed>,
    text: Option<String>,
    file: Option<String>,
    attachment: Option<AttachmentView>,
    note: Option<String>,
    ping: bool,
    pong: Option<crate::content::envelope::Pong>,
}

impl Reading {
    fn fill(self, view: &mut MessageView) {
        view.sealed = self.sealing;
        view.text = self.text;
        view.file = self.file;
        view.attachment = self.attachment;
        view.note = self.note;
        view.ping = self.ping;
        view.pong = self.pong;
    }
}

impl Job {
    fn run(self, content: store::Content) -> Reading {
        let mut opened = match open(content, &self.keyring) {
            Ok(Outcome::Opened(o)) => o,
            Ok(Outcome::ForSomeoneElse) => {
                return Reading {
                    sealing: Some(Sealed::ForSomeoneElse),
                    ..Reading::default()
                }
            }
            Err(e) => return unreadable(e),
        };
        let sealing = Some(Sealed::from(&opened.sealing));
        match opened.head.take() {
            None => self.raw(opened.body, sealing),
            Some(head) => self.envelope(head, *opened, sealing),
        }
    }

    /// Bytes without an envelope: short UTF-8 inline, anything else saved as `<id>`.
    fn raw(&self, mut body: Box<dyn Read + Send>, sealing: Option<Sealed>) -> Reading {
        let mut reading = Reading {
            sealing,
            ..Reading::default()
        };
        let prefix = if self.length <= MAX_INLINE_TEXT {
            let mut bytes = Vec::new();
            if let Err(e) = body.read_to_end(&mut bytes) {
                return unreadable(e.into());
            }
            match String::from_utf8(bytes) {
                Ok(text) => {
                    reading.text = Some(text);
                    return reading;
                }
                Err(e) => e.into_bytes(),
            }
        } else {
            Vec::new()
        };
        let mut body = std::io::Cursor::new(prefix).chain(body);
        match save::save(&self.save_dir, &self.id, &self.id, |out| {
            std::io::copy(&mut body, out)?;
            Ok(())
        }) {
            Ok(path) => reading.file = Some(path.display().to_string()),
            Err(e) => reading.note = Some(format!("could not save: {e}")),
        }
        reading
    }

    fn envelope(&self, head: Head, opened: Opened, sealing: Option<Sealed>) -> Reading {
        let mut body = opened.body;
        let mut reading = Reading {
            sealing,
            text: head.text.clone(),
            ping: head.ping.is_some(),
            pong: head.pong.clone(),
            ..Reading::default()
        };
        if let Some(a) = &head.attachment {
            let saved = save::save(&self.save_dir, &self.id, &a.name, |out| {
                envelope::copy_body(&head, &mut body, &mut &mut *out).map_err(damaged)?;
                Ok(())
            });
            let (saved_to, note) = match saved {
                Ok(p) => (Some(p.display().to_string()), None),
                Err(e) => (None, Some(format!("attachment not saved: {e}"))),
            };
            reading.attachment = Some(AttachmentView {
                name: a.name.clone(),
                media_type: a.media_type.clone(),
                length: a.length,
                saved_to,
            });
            reading.note = note;
        }
        if let Some(result) =
            crate::node::invites::install(&self.data_dir, &head, &opened.sealing, &self.from)
        {
            reading.note = Some(match result {
                Ok((g, Installed::New)) => format!("invited you to group {g}: joined"),
                Ok((g, Installed::AlreadyHeld)) => format!("invited you to group {g} (member)"),
                Ok((g, Installed::Conflict)) => {
                    format!("invited you to group {g}: ignored, you hold another key for {g}")
                }
                Err(e) => format!("invite not installed: {e}"),
            });
        }
        reading
    }
}

/// A tampered chunk shows up as an `InvalidData` read error from age's stream.
fn damaged(e: EnvelopeError) -> OpenError {
    match e {
        EnvelopeError::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            OpenError::Damaged(io.to_string())
        }
        other => OpenError::Envelope(other),
    }
}

fn unreadable(e: OpenError) -> Reading {
    Reading {
        sealing: Some(Sealed::Unreadable(e.to_string())),
        ..Reading::default()
    }
}
