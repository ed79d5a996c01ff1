//! Access lists: who may ask this node for what, at which rate.
//!
//! An [`AccessList`] is an ordered list of entries `{ allow, deny, rate }`. The first entry
//! whose `allow` matches the caller and whose `deny` does not decides: `rate = 0` refuses, no
//! rate admits without limit, otherwise the entry's [`Window`] admits requests while the
//! entry's callers together stay within `rate` per second (averaged over ten seconds). No
//! matching entry refuses. The node's own key is always admitted.
//!
//! An [`AccessPolicy`] holds the three lists a node applies: `in` (every incoming request, by
//! the requesting peer), `out` (the peers it pushes to: who it trusts to carry its messages)
//! and `sender` (every incoming message, by its original sender). It is read from a TOML file
//! (`protocols/names.md` section 7); a list the file leaves out admits everyone.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use libp2p::PeerId;
use serde::Deserialize;

use super::files::{self, FileError};
use super::pattern::{Caller, Pattern};
use super::rate::{Window, WINDOW_SECS};

/// Where the access policy lives inside the data dir.
pub const ACCESS_FILE: &str = "trust/access.toml";
/// Smallest positive rate: one request per window.
pub const MIN_RATE: f64 = 1.0 / WINDOW_SECS as f64;

/// Which of the three lists refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListKind {
    /// Incoming requests, by the requesting peer.
    In,
    /// Peers this node pushes to.
    Out,
    /// Incoming messages, by their original sender.
    Sender,
}

impl fmt::Display for ListKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::In => "in",
            Self::Out => "out",
            Self::Sender => "sender",
        })
    }
}

/// Why a caller was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Denied {
    /// No entry admits the caller, or its entry has rate 0. Permanent until the policy or the
    /// caller's names change.
    #[error("{who} is not authorized by the '{list}' access list")]
    NotAuthorized {
        /// The caller, by name and peer id.
        who: String,
        /// The list that refused.
        list: ListKind,
    },
    /// The caller's entry is over its rate. Transient: retry later.
    #[error(
        "{who} is over the limit of {rate} requests per second of its '{list}' access-list entry"
    )]
    RateLimited {
        /// The caller, by name and peer id.
        who: String,
        /// The entry's rate.
        rate: f64,
        /// The list that refused.
        list: ListKind,
    },
}

/// One entry of an access list.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Patterns that admit a caller.
    pub allow: Vec<Pattern>,
    /// Patterns that exclude a caller the allow list admits.
    pub deny: Vec<Pattern>,
    /// Requests per second shared by every caller of the entry; `None` is unlimited, 0 refuses.
    pub rate: Option<f64>,
}

impl Entry {
    /// The entry `allow = ["*"]` without rate: everyone, unlimited.
    pub fn everyone() -> Self {
        Self {
            allow: vec![Pattern::Anyone],
            deny: Vec::new(),
            rate: None,
        }
    }

    fn applies_to(&self, caller: &Caller) -> bool {
        self.allow.iter().any(|p| p.matches(caller)) && !self.deny.iter().any(|p| p.matches(caller))
    }

    fn refuses_all(&self) -> bool {
        self.rate == Some(0.0)
    }
}

/// An ordered access list with one rate window per entry.
#[derive(Clone, Debug)]
pub struct AccessList {
    kind: ListKind,
    entries: Vec<(Entry, Window)>,
}

impl AccessList {
    /// A list of `entries`, in order.
    pub fn new(kind: ListKind, entries: Vec<Entry>) -> Self {
        Self {
            kind,
            entries: entries
                .into_iter()
                .map(|e| (e, Window::default()))
                .collect(),
        }
    }

    /// The default list: everyone, unlimited.
    pub fn open(kind: ListKind) -> Self {
        Self::new(kind, vec![Entry::everyone()])
    }

    /// The entries, in order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().map(|(e, _)| e)
    }

    fn not_authorized(&self, caller: &Caller) -> Denied {
        Denied::NotAuthorized {
            who: caller.to_string(),
            list: self.kind,
        }
    }

    /// Decides and counts one request of `caller` at `now`.
    pub fn check(&mut self, caller: &Caller, now: Instant) -> Result<(), Denied> {
        let Some(index) = self.entries.iter().position(|(e, _)| e.applies_to(caller)) else {
            return Err(self.not_authorized(caller));
        };
        let kind = self.kind;
        let Some((entry, window)) = self.entries.get_mut(index) else {
            return Err(self.not_authorized(caller));
        };
        match entry.rate {
            None => Ok(()),
            Some(rate) if rate <= 0.0 => Err(Denied::NotAuthorized {
                who: caller.to_string(),
                list: kind,
            }),
            Some(rate) if window.try_admit(rate, now) => Ok(()),
            Some(rate) => Err(Denied::RateLimited {
                who: caller.to_string(),
                rate,
                list: kind,
            }),
        }
    }

    /// Whether some entry admits `caller` at all, ignoring and not spending rate.
    pub fn would_allow(&self, caller: &Caller) -> bool {
        self.entries
            .iter()
            .find(|(e, _)| e.applies_to(caller))
            .is_some_and(|(e, _)| !e.refuses_all())
    }

    /// Whether a caller's names can change the decision: false when the first entry admits
    /// everyone (`*`, no deny), so every caller falls under it. Lets the node skip verifying
    /// certificate chains nobody will look at.
    pub fn names_matter(&self) -> bool {
        !self
            .entries
            .first()
            .is_some_and(|(e, _)| e.deny.is_empty() && e.allow.contains(&Pattern::Anyone))
    }

    /// Whether every caller is admitted (rates aside): some entry admits `*` with no deny,
    /// and no entry before it refuses anyone outright.
    pub fn is_open(&self) -> bool {
        for (entry, _) in &self.entries {
            if entry.refuses_all() {
                return false;
            }
            if entry.deny.is_empty() && entry.allow.contains(&Pattern::Anyone) {
                return true;
            }
        }
        false
    }
}

/// Why an access policy file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Reading the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not a valid policy.
    #[error(transparent)]
    File(#[from] FileError),
}

/// The three access lists of a node.
#[derive(Clone, Debug)]
pub struct AccessPolicy {
    own: PeerId,
    incoming: AccessList,
    outgoing: AccessList,
    sender: AccessList,
}

impl AccessPolicy {
    /// Everyone admitted everywhere: the policy without a file.
    pub fn open(own: PeerId) -> Self {
        Self {
            own,
            incoming: AccessList::open(ListKind::In),
            outgoing: AccessList::open(ListKind::Out),
            sender: AccessList::open(ListKind::Sender),
        }
    }

    /// A policy from three lists; `own` (this node's key) is always admitted.
    pub fn new(
        own: PeerId,
        incoming: Vec<Entry>,
        outgoing: Vec<Entry>,
        sender: Vec<Entry>,
    ) -> Self {
        Self {
            own,
            incoming: AccessList::new(ListKind::In, incoming),
            outgoing: AccessList::new(ListKind::Out, outgoing),
            sender: AccessList::new(ListKind::Sender, sender),
        }
    }

    /// Parses a policy file's text; `path` is for error messages.
    pub fn from_toml(path: &Path, text: &str, own: PeerId) -> Result<Self, PolicyError> {
        let file: PolicyFile = files::parse(path, text)?;
        let list = |entries: Option<Vec<EntryFile>>| -> Result<Vec<Entry>, FileError> {
            match entries {
                None => Ok(vec![Entry::everyone()]),
                Some(entries) => entries
                    .into_iter()
                    .map(|e| e.into_entry(path, text))
                    .collect(),
            }
        };
        Ok(Self::new(
            own,
            list(file.incoming)?,
            list(file.outgoing)?,
            list(file.sender)?,
        ))
    }

    /// Loads the policy file; a missing file is the open policy.
    pub fn load(path: &Path, own: PeerId) -> Result<Self, PolicyError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_toml(path, &text, own),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::open(own)),
            Err(source) => Err(PolicyError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    fn check(
        list: &mut AccessList,
        own: PeerId,
        caller: &Caller,
        now: Instant,
    ) -> Result<(), Denied> {
        if caller.peer == own {
            return Ok(());
        }
        list.check(caller, now)
    }

    /// Decides (and counts) an incoming request from `caller`.
    pub fn check_in(&mut self, caller: &Caller, now: Instant) -> Result<(), Denied> {
        Self::check(&mut self.incoming, self.own, caller, now)
    }

    /// Decides (and counts) a push to `caller`.
    pub fn check_out(&mut self, caller: &Caller, now: Instant) -> Result<(), Denied> {
        Self::check(&mut self.outgoing, self.own, caller, now)
    }

    /// Decides (and counts) an incoming message whose original sender is `caller`.
    pub fn check_sender(&mut self, caller: &Caller, now: Instant) -> Result<(), Denied> {
        Self::check(&mut self.sender, self.own, caller, now)
    }

    /// Whether `caller` is trusted to be pushed to, without spending rate.
    pub fn would_allow_out(&self, caller: &Caller) -> bool {
        caller.peer == self.own || self.outgoing.would_allow(caller)
    }

    /// Whether the out list admits everyone; if not, ring selection must keep to trusted peers.
    pub fn is_open_out(&self) -> bool {
        self.outgoing.is_open()
    }

    /// The list of one kind.
    pub fn list(&self, kind: ListKind) -> &AccessList {
        match kind {
            ListKind::In => &self.incoming,
            ListKind::Out => &self.outgoing,
            ListKind::Sender => &self.sender,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(rename = "in")]
    incoming: Option<Vec<EntryFile>>,
    #[serde(rename = "out")]
    outgoing: Option<Vec<EntryFile>>,
    sender: Option<Vec<EntryFile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    allow: Vec<toml::Spanned<String>>,
    #[serde(default)]
    deny: Vec<toml::Spanned<String>>,
    rate: Option<toml::Spanned<f64>>,
}

impl EntryFile {
    fn into_entry(self, path: &Path, text: &str) -> Result<Entry, FileError> {
        let pattern = |p: &toml::Spanned<String>, parse: fn(&str) -> Result<Pattern, _>| {
            parse(p.get_ref())
                .map_err(|e: super::pattern::PatternError| files::error_at(path, text, p.span(), e))
        };
        let allow = self
            .allow
            .iter()
            .map(|p| pattern(p, |s| s.parse()))
            .collect::<Result<_, _>>()?;
        let deny = self
            .deny
            .iter()
            .map(|p| pattern(p, Pattern::parse_deny))
            .collect::<Result<_, _>>()?;
        let rate = match self.rate {
            None => None,
            Some(r) => {
                let value = *r.get_ref();
                if !(value == 0.0 || (value.is_finite() && value >= MIN_RATE)) {
                    return Err(files::error_at(
                        path,
                        text,
                        r.span(),
                        format!("rate {value} must be 0 (refuse) or at least {MIN_RATE} requests per second"),
                    ));
                }
                Some(value)
            }
        };
        Ok(Entry { allow, deny, rate })
    }
}
