//! Group invites: a message sealed for this node whose envelope carries a group key installs
//! that key when it arrives, so the member reads the group's messages (and may send to it) at
//! once. An invite never replaces a different key already held under its name: the first key
//! stays, the conflict is logged and shown in the inbox.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::{broadcast, watch};

use super::ctx::Ctx;
use super::relay;
use super::NodeEvent;
use crate::content::envelope::Head;
use crate::content::groups::{Group, GroupError, GroupName, Groups, Installed};
use crate::content::keys::{age_identity_from_str, Keyring};
use crate::content::open::{open, Outcome, Sealing};
use crate::message::MessageId;

/// Installs the invite in `head` if it was sealed for this node's own key. `from` names the
/// inviter in the key file. `None` when there is no invite to install.
pub fn install(
    data_dir: &Path,
    head: &Head,
    sealing: &Sealing,
    from: &str,
) -> Option<Result<(GroupName, Installed), GroupError>> {
    let invite = head.invite.as_ref()?;
    // An invite readable by relays (or by a whole group) hands a key to more than its invitee.
    if *sealing != Sealing::ForMe {
        return None;
    }
    Some((|| {
        let name: GroupName = invite.group.parse()?;
        let group = Group {
            identity: age_identity_from_str(&invite.key)?,
            name: name.clone(),
        };
        Ok((name, Groups::at(data_dir).install(&group, from)?))
    })())
}

/// Watches messages arriving from peers and installs the invites among them.
pub(super) async fn run(
    ctx: Arc<Ctx>,
    mut events: broadcast::Receiver<NodeEvent>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let event = tokio::select! {
            _ = stop.changed() => return,
            e = events.recv() => e,
        };
        match event {
            Ok(NodeEvent::Stored { id, from: Some(_) }) => check(&ctx, id).await,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(n)) => tracing::warn!(
                missed = n,
                "some arrivals were not checked for group invites; `mule inbox` installs them"
            ),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn check(ctx: &Arc<Ctx>, id: MessageId) {
    let stored = match ctx.store.get(id).await {
        Ok(Some(stored)) => stored,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(id = %id.short(), "not checked for a group invite: {e}");
            return;
        }
    };
    let header = &stored.header;
    if header.is_broadcast() || !relay::addresses(header, &ctx.me, crate::message::now_ms()) {
        return;
    }
    let content = match ctx.store.read(id).await {
        Ok((_, content)) => content,
        Err(e) => {
            tracing::warn!(id = %id.short(), "not checked for a group invite: {e}");
            return;
        }
    };
    let (identity, data_dir) = (ctx.identity.clone(), ctx.config.data_dir.clone());
    let from = crate::identity::key_label(&header.sender);
    let installed = tokio::task::spawn_blocking(move || {
        let keyring = Keyring::new(&identity, Vec::new()).ok()?;
        match open(content, &keyring).ok()? {
            Outcome::Opened(o) => install(&data_dir, o.head.as_ref()?, &o.sealing, &from),
            Outcome::ForSomeoneElse => None,
        }
    })
    .await;
    match installed {
        Ok(Some(Ok((group, Installed::New)))) => {
            tracing::info!(%group, id = %id.short(), "joined a group by invite");
            let _ = ctx.events.send(NodeEvent::Joined {
                group: group.to_string(),
            });
        }
        Ok(Some(Ok((group, Installed::Conflict)))) => tracing::warn!(
            %group, id = %id.short(),
            "invite ignored: another key is already held under this group name"
        ),
        Ok(Some(Err(e))) => tracing::warn!(id = %id.short(), "invite not installed: {e}"),
        _ => {}
    }
}
