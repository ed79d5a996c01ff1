//! Who a chat (or a robot) talks to: `--group NAME`, `--to PEER|NAME|*`, or by default the one
//! group this node belongs to, as README "Private messages" recommends for friends. An open `*`
//! chat is allowed, with a warning: every relay can read it.

use std::time::Duration;

use crate::content::groups::GroupName;
use crate::message::BROADCAST;
use crate::node::{Letter, Node, PostError, Privacy};

/// `--to` and `--group`, as `mule chat` and `mule robot` take them.
#[derive(Debug, clap::Args)]
// Flattened beside `mule node`'s own `Args`: no group named after the struct.
#[group(skip)]
pub struct Args {
    /// Talk to this peer id or name (sealed for the keys known to hold it), or `*` (open to
    /// every relay unless --group is given).
    #[arg(long, value_name = "PEER|NAME|*")]
    pub to: Option<String>,
    /// Talk within this group (sealed for its members) [default: the only group this node is
    /// in; with none, an open chat to '*'].
    #[arg(long, value_name = "NAME")]
    pub group: Option<GroupName>,
}

/// Where the chat's messages go and who can read them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    /// The recipient in the header: a peer id, a name pattern, or `*`.
    pub to: String,
    /// How the content is sealed.
    pub privacy: Privacy,
}

/// Why no scope could be chosen.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// Several groups and no choice made.
    #[error("this node is in several groups ({0}): choose one with --group NAME (or --to)")]
    Ambiguous(String),
}

impl Scope {
    /// The scope from the flags, given the groups this node holds (sorted).
    pub fn choose(
        to: Option<String>,
        group: Option<GroupName>,
        held: &[GroupName],
    ) -> Result<Self, ScopeError> {
        let scope = |to: String, group: Option<GroupName>| Self {
            to,
            privacy: group.map_or(Privacy::ByRecipient, Privacy::Group),
        };
        match (to, group) {
            (to, Some(group)) => Ok(scope(to.unwrap_or_else(|| BROADCAST.into()), Some(group))),
            (Some(to), None) => Ok(scope(to, None)),
            (None, None) => match held {
                [] => Ok(scope(BROADCAST.into(), None)),
                [one] => Ok(scope(BROADCAST.into(), Some(one.clone()))),
                many => Err(ScopeError::Ambiguous(
                    many.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                )),
            },
        }
    }

    /// Posts `letter` to the scope through `node`; returns the message id.
    pub async fn post(
        &self,
        node: &Node,
        letter: Letter,
        lifespan: Duration,
    ) -> Result<String, PostError> {
        let posted = node
            .post(self.to.clone(), letter, &self.privacy, lifespan)
            .await?;
        Ok(posted.id)
    }

    /// Whether every relay can read what is said here (an open `*` chat).
    pub fn is_open(&self) -> bool {
        self.privacy == Privacy::ByRecipient && self.to == BROADCAST
    }

    /// How the chat is named on screen.
    pub fn label(&self) -> String {
        match (&self.privacy, self.to.as_str()) {
            (Privacy::Group(g), BROADCAST) => format!("group {g}"),
            (Privacy::Group(g), to) => format!("{to} (sealed for group {g})"),
            (Privacy::ByRecipient, BROADCAST) => "everyone (open: relays can read it)".into(),
            (Privacy::ByRecipient, to) => to.to_string(),
        }
    }

    /// The warning an open chat shows (as `mule send` gives for an open message).
    pub fn warning(&self) -> Option<&'static str> {
        self.is_open().then_some(
            "this chat is open: every relay can read it (use --group to keep it within a group)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(name: &str) -> GroupName {
        name.parse().unwrap()
    }

    #[test]
    fn the_one_group_by_default_else_open_else_ask() {
        let one = Scope::choose(None, None, &[g("campfire")]).unwrap();
        assert_eq!(one.privacy, Privacy::Group(g("campfire")));
        assert_eq!(one.to, "*");
        assert_eq!(one.label(), "group campfire");
        assert_eq!(one.warning(), None);

        let open = Scope::choose(None, None, &[]).unwrap();
        assert!(open.is_open());
        assert!(open.warning().unwrap().contains("every relay can read it"));

        let err = Scope::choose(None, None, &[g("a"), g("b")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "this node is in several groups (a, b): choose one with --group NAME (or --to)"
        );
    }

    #[test]
    fn flags_win() {
        let to = Scope::choose(Some("campfire/bob".into()), None, &[g("a")]).unwrap();
        assert_eq!(to.privacy, Privacy::ByRecipient);
        assert_eq!(to.label(), "campfire/bob");
        let group = Scope::choose(None, Some(g("b")), &[g("a"), g("b")]).unwrap();
        assert_eq!(group.privacy, Privacy::Group(g("b")));
        let both = Scope::choose(Some("campfire/*".into()), Some(g("b")), &[]).unwrap();
        assert_eq!(both.label(), "campfire/* (sealed for group b)");
    }
}
