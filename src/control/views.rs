//! What `mule list` and `mule inbox` show of a message; computed from the store, so it works
//! with or without a running node.

use std::io::Read;
use std::path::Path;

use libp2p::PeerId;
use serde::{Deserialize, Serialize};

use crate::identity;
use crate::node::relay::{self, Me};
use crate::store::{self, Store, Stored};
use crate::trust::{self, Roots};

/// Texts up to this size are shown inline; larger or binary contents are saved to a file.
pub const MAX_INLINE_TEXT: u64 = 64 * 1024;

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
    /// Where the content was saved, when it is not shown as text (inbox only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub file: Option<String>,
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

/// Messages addressed to `me` ([`relay::addresses`]), with text inline or content saved under
/// `<data_dir>/inbox/`.
pub async fn inbox(
    store: &Store,
    data_dir: &Path,
    me: &Me,
    roots: &Roots,
) -> Result<Vec<MessageView>, store::Error> {
    let mut out = Vec::new();
    for stored in store
        .manifest(None, usize::MAX, crate::message::now_ms())
        .await?
    {
        let h = &stored.header;
        if !relay::addresses(h, me, crate::message::now_ms()) {
            continue;
        }
        let mut view = MessageView::of(&stored, roots);
        let (_, mut content) = store.read(h.id).await?;
        let dir = data_dir.join("inbox");
        let path = dir.join(h.id.to_string());
        let length = h.length;
        let (text, file) = tokio::task::spawn_blocking(move || -> Result<_, store::Error> {
            if length <= MAX_INLINE_TEXT {
                let mut bytes = Vec::new();
                content
                    .read_to_end(&mut bytes)
                    .map_err(store::Error::io(&path))?;
                if let Ok(text) = String::from_utf8(bytes.clone()) {
                    return Ok((Some(text), None));
                }
                save(&dir, &path, &mut std::io::Cursor::new(bytes))?;
            } else {
                save(&dir, &path, &mut content)?;
            }
            Ok((None, Some(path.display().to_string())))
        })
        .await
        .map_err(|_| store::Error::Shutdown)??;
        view.text = text;
        view.file = file;
        out.push(view);
    }
    Ok(out)
}

fn save(dir: &Path, path: &Path, content: &mut impl Read) -> Result<(), store::Error> {
    if path.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(store::Error::io(dir))?;
    let tmp = path.with_extension("part");
    let mut file = std::fs::File::create(&tmp).map_err(store::Error::io(&tmp))?;
    std::io::copy(content, &mut file).map_err(store::Error::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(store::Error::io(path))
}
