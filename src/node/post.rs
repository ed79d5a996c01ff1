//! Posting what people send: a letter (text and/or one file, or a group invite) is sealed for
//! whoever may read it, then signed and stored like any message ([`super::send`]).
//!
//! Who may read it follows from the recipient unless a group is named: a peer id -> that
//! peer's key; a name pattern -> every key this node has seen holding a matching name (peers
//! that proved it in the names exchange, senders of stored messages whose chains prove it, and
//! this node itself); `*` -> nobody in particular, so the envelope stays open and every relay can
//! read it. `--group NAME` seals for the group's key whatever the recipient.
//! Works with or without a running node (the CLI posts directly when no node runs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use libp2p::PeerId;
use serde::{Deserialize, Serialize};

use super::send::{store_new, Addressing, Content, SendError};
use crate::content::envelope::{Attachment, EnvelopeError, Head, Invite, Ping, Pong};
use crate::content::groups::{GroupError, GroupName, Groups};
use crate::content::keys::{KeyError, Recipient};
use crate::content::seal::{self, Seal, SealError, MAX_RECIPIENTS};
use crate::identity::{self, Identity};
use crate::message::{CertificateChain, Limits, MessageId, BROADCAST};
use crate::store::{self, Store};
use crate::trust::{self, Caller, Roots};

/// What a person sends.
#[derive(Clone, Debug, Default)]
pub struct Letter {
    /// Text.
    pub text: Option<String>,
    /// A file to attach (its name and media type travel with it).
    pub file: Option<PathBuf>,
    /// A group key to hand over.
    pub invite: Option<Invite>,
    /// Asks readers to answer (`mule chat`'s `/ping`); carries a text too, for old readers.
    pub ping: Option<Ping>,
    /// Answers a ping.
    pub pong: Option<Pong>,
}

/// Who may read a letter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Privacy {
    /// Follow the recipient: a peer's key, the keys holding a name, or open for `*`.
    ByRecipient,
    /// The members of this group, whatever the recipient.
    Group(GroupName),
}

/// For whom a posted message was sealed, to tell the person who sent it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SealedFor {
    /// These keys (peer ids).
    Keys(Vec<String>),
    /// This group's members.
    Group(String),
    /// Nobody in particular: every relay can read it.
    Everyone,
}

/// A posted message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posted {
    /// Its id.
    pub id: String,
    /// Who can read it.
    pub sealed_for: SealedFor,
}

/// Why a letter could not be posted (nothing was stored).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostError {
    /// Nothing to say.
    #[error("nothing to send: give a text, a file, or both")]
    Empty,
    /// A name recipient nobody is known to hold.
    #[error("no key known for {0}: no peer has proved that name to this node and no stored message is signed by it; send to its peer id, use --group, or wait until it connects")]
    NoKnownKeys(String),
    /// More keys hold the name than one message is sealed for.
    #[error("{count} keys hold names matching {pattern}; a message is sealed for at most {MAX_RECIPIENTS}: use a group")]
    TooManyKeys {
        /// The recipient pattern.
        pattern: String,
        /// How many keys matched.
        count: usize,
    },
    /// An invite would be readable by more than its invitee.
    #[error("a group invite must be sealed for its invitee alone: send it to a peer id or a name, without --group")]
    OpenInvite,
    /// The recipient is neither `*`, a peer id nor a name pattern.
    #[error("{0:?} is not a recipient: give a peer id, a name such as campfire/bob, or '*'")]
    BadRecipient(String),
    /// A peer id whose key cannot be encrypted to.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The group is unknown or its key unreadable.
    #[error(transparent)]
    Group(#[from] GroupError),
    /// The file to attach could not be read.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The envelope breaks its limits (text too long...).
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// Sealing failed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// Signing or storing failed.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The store could not list what it holds (for name keys).
    #[error(transparent)]
    Store(#[from] store::Error),
    /// A blocking task failed.
    #[error("sealing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// What posting needs of a node (or of the CLI with no node running).
#[derive(Debug)]
pub struct Poster<'a> {
    /// The sender.
    pub identity: &'a Identity,
    /// Where the message is stored.
    pub store: &'a Store,
    /// The data dir (groups, sealing scratch space).
    pub data_dir: &'a Path,
    /// This node's limits.
    pub limits: &'a Limits,
    /// Roots that verify names.
    pub roots: &'a Roots,
    /// The chains naming this node, carried in the header.
    pub chains: Vec<CertificateChain>,
    /// Peers known right now with their names (from the names exchange), and this node.
    pub named: Vec<Caller>,
}

impl Poster<'_> {
    /// Seals `letter` for `to` (or the group), signs and stores it.
    pub async fn post(
        &self,
        to: String,
        letter: Letter,
        privacy: &Privacy,
        lifespan: Duration,
    ) -> Result<(MessageId, SealedFor), PostError> {
        if letter.text.is_none() && letter.file.is_none() && letter.invite.is_none() {
            return Err(PostError::Empty);
        }
        let (seal, sealed_for) = self.resolve(&to, privacy).await?;
        if letter.invite.is_some() && !matches!(sealed_for, SealedFor::Keys(_)) {
            return Err(PostError::OpenInvite);
        }
        let head = head_of(&letter)?;
        let content = match letter.file {
            None => Content::Bytes(seal::seal_bytes(&head, &seal)?),
            // Sealed straight into the store's staging file: written and hashed once.
            Some(path) => {
                let store = self.store.clone();
                let staged = tokio::task::spawn_blocking(move || -> Result<_, PostError> {
                    Ok(seal::seal_file(&head, &path, &seal, store.stage()?)?)
                })
                .await??;
                Content::Staged(staged)
            }
        };
        Ok((self.store_it(to, content, lifespan).await?, sealed_for))
    }

    async fn store_it(
        &self,
        to: String,
        content: Content,
        lifespan: Duration,
    ) -> Result<MessageId, PostError> {
        let addressing = Addressing {
            recipient: to,
            lifespan,
            chains: self.chains.clone(),
        };
        let stored = store_new(self.identity, self.store, self.limits, addressing, content).await?;
        Ok(stored.header.id)
    }

    /// Who may read a message to `to`.
    pub async fn resolve(
        &self,
        to: &str,
        privacy: &Privacy,
    ) -> Result<(Seal, SealedFor), PostError> {
        if let Privacy::Group(name) = privacy {
            let group = Groups::at(self.data_dir).get(name)?;
            let recipient = Recipient {
                label: format!("group {name}"),
                key: group.recipient(),
            };
            return Ok((
                Seal::For(vec![recipient]),
                SealedFor::Group(name.to_string()),
            ));
        }
        if to == BROADCAST {
            return Ok((Seal::Open, SealedFor::Everyone));
        }
        if let Ok(peer) = to.parse::<PeerId>() {
            let r = Recipient::of_peer(&peer)?;
            return Ok((Seal::For(vec![r]), SealedFor::Keys(vec![peer.to_string()])));
        }
        if to.parse::<trust::Pattern>().is_err() {
            return Err(PostError::BadRecipient(to.to_string()));
        }
        let keys = self.keys_holding(to).await?;
        if keys.is_empty() {
            return Err(PostError::NoKnownKeys(to.to_string()));
        }
        if keys.len() > MAX_RECIPIENTS {
            return Err(PostError::TooManyKeys {
                pattern: to.to_string(),
                count: keys.len(),
            });
        }
        let labels = keys.iter().map(|r| r.label.clone()).collect();
        Ok((Seal::For(keys), SealedFor::Keys(labels)))
    }

    /// Every key known to hold a name `pattern` addresses, once each.
    async fn keys_holding(&self, pattern: &str) -> Result<Vec<Recipient>, PostError> {
        let mut callers = self.named.clone();
        callers.extend(senders(self.store, self.roots).await?);
        let mut keys = BTreeMap::new();
        for caller in callers {
            if trust::addresses(pattern, &caller) {
                if let Some(key) = identity::public_key_of(&caller.peer) {
                    keys.entry(caller.peer).or_insert(key);
                }
            }
        }
        keys.values()
            .map(|k| Recipient::of_key(k).map_err(PostError::from))
            .collect()
    }
}

/// The senders of stored messages with the names their header chains prove now (each distinct
/// sender counted once, from its first message whose chains prove a name).
async fn senders(store: &Store, roots: &Roots) -> Result<Vec<Caller>, store::Error> {
    let now = crate::message::now_ms();
    let mut named = std::collections::HashSet::new();
    let mut out = Vec::new();
    for stored in store.manifest(None, usize::MAX, now).await? {
        let h = &stored.header;
        if h.chains.is_empty() || named.contains(&h.sender) {
            continue;
        }
        let names = trust::names_of(&h.sender, &h.chains, roots, now);
        let (Some(peer), false) = (identity::peer_id_of(&h.sender), names.verified.is_empty())
        else {
            continue;
        };
        named.insert(h.sender);
        out.push(Caller {
            peer,
            names: names.verified.into_iter().map(|v| v.name).collect(),
        });
    }
    Ok(out)
}

impl Letter {
    /// A letter from the CLI's or control socket's fields: `invite` names a group of
    /// `data_dir` whose key the letter hands over.
    pub fn from_parts(
        data_dir: &Path,
        text: Option<String>,
        file: Option<PathBuf>,
        invite: Option<&str>,
    ) -> Result<Self, PostError> {
        let invite = match invite {
            None => None,
            Some(name) => {
                let name: GroupName = name.parse().map_err(GroupError::from)?;
                let group = Groups::at(data_dir).get(&name)?;
                Some(Invite {
                    group: name.to_string(),
                    key: group.secret_text(),
                })
            }
        };
        Ok(Self {
            text,
            file,
            invite,
            ..Self::default()
        })
    }
}

impl Privacy {
    /// `--group NAME` or the recipient's default.
    pub fn from_group(group: Option<&str>) -> Result<Self, PostError> {
        Ok(match group {
            None => Self::ByRecipient,
            Some(name) => Self::Group(name.parse().map_err(GroupError::from)?),
        })
    }
}

/// The envelope head of a letter (the file is only looked at, not read).
fn head_of(letter: &Letter) -> Result<Head, PostError> {
    let attachment = match &letter.file {
        None => None,
        Some(path) => {
            let meta = std::fs::metadata(path).map_err(|source| PostError::File {
                path: path.clone(),
                source,
            })?;
            if !meta.is_file() {
                return Err(PostError::File {
                    path: path.clone(),
                    source: std::io::Error::other("not a regular file"),
                });
            }
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| crate::content::save::FALLBACK.to_string());
            let media_type = mime_guess::from_path(path)
                .first_or_octet_stream()
                .essence_str()
                .to_string();
            Some(Attachment {
                name,
                media_type,
                length: meta.len(),
            })
        }
    };
    let head = Head {
        text: letter.text.clone(),
        attachment,
        invite: letter.invite.clone(),
        ping: letter.ping.clone(),
        pong: letter.pong.clone(),
    };
    head.validate()?;
    Ok(head)
}

impl super::Node {
    /// Posts a letter: seals it for `to` (or the group), signs, stores and relays it.
    pub async fn post(
        &self,
        to: impl Into<String>,
        letter: Letter,
        privacy: &Privacy,
        lifespan: Duration,
    ) -> Result<Posted, PostError> {
        post(&self.ctx, to.into(), letter, privacy, lifespan).await
    }
}

/// [`super::Node::post`], for the node's own tasks (pongs).
pub(super) async fn post(
    ctx: &super::ctx::Ctx,
    to: String,
    letter: Letter,
    privacy: &Privacy,
    lifespan: Duration,
) -> Result<Posted, PostError> {
    let now = crate::message::now_ms();
    let mut named = ctx.auth.name_holders(now);
    named.push(ctx.me.caller(now));
    let poster = Poster {
        identity: &ctx.identity,
        store: &ctx.store,
        data_dir: &ctx.config.data_dir,
        limits: &ctx.config.limits,
        roots: ctx.trust.roots(),
        chains: ctx.trust.header_chains(now),
        named,
    };
    let (id, sealed_for) = poster.post(to, letter, privacy, lifespan).await?;
    tracing::info!(id = %id.short(), ?sealed_for, "message posted");
    ctx.announce(id, None);
    Ok(Posted {
        id: id.to_string(),
        sealed_for,
    })
}
