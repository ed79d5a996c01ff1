//! Group invites: a message sealed for this node whose envelope carries a group key installs
//! that key when it arrives, so the member reads the group's messages (and may send to it) at
//! once. An invite never replaces a different key already held under its name: the first key
//! stays, the conflict is logged and shown in the inbox.

use std::path::Path;
use std::sync::Arc;

use super::arrivals::Arrival;
use super::ctx::Ctx;
use super::NodeEvent;
use crate::content::envelope::Head;
use crate::content::groups::{Group, GroupError, GroupName, Groups, Installed};
use crate::content::keys::age_identity_from_str;
use crate::content::open::Sealing;

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

/// Installs the invite an arrival carries, if any (file work off the async threads).
pub(super) async fn on_arrival(ctx: &Arc<Ctx>, arrival: &Arrival) {
    let id = arrival.header.id;
    let data_dir = ctx.config.data_dir.clone();
    let (head, sealing) = (arrival.head.clone(), arrival.sealing.clone());
    let from = crate::identity::key_label(&arrival.header.sender);
    let installed =
        tokio::task::spawn_blocking(move || install(&data_dir, &head, &sealing, &from)).await;
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
        Ok(Some(Ok((_, Installed::AlreadyHeld)))) | Ok(None) => {}
        Err(e) => tracing::warn!(id = %id.short(), "invite not installed: {e}"),
    }
}
