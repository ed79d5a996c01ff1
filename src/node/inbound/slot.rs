//! One message being received from one peer: the admitted header, the store's transfer, the
//! progress early chunks wait on, and when it was last active.

use std::sync::Mutex;

use libp2p::PeerId;
use tokio::sync::watch;

use super::reorder::{Activity, Progress};
use crate::message::Header;
use crate::store::Transfer;

/// One message being received from one peer.
pub(super) struct Slot {
    pub(super) peer: PeerId,
    /// The validated header the transfer was admitted with; the headers of later chunks are
    /// ignored, so a chunk cannot swap in other signed fields under the same id.
    pub(super) header: Header,
    pub(super) transfer: tokio::sync::Mutex<Option<Transfer>>,
    pub(super) progress: watch::Sender<Progress>,
    pub(super) activity: Mutex<Activity>,
}

impl Slot {
    pub(super) fn held(&self) -> u64 {
        self.progress.borrow().held
    }

    pub(super) fn set_held(&self, held: u64) {
        self.progress.send_modify(|p| p.held = held);
    }

    pub(super) fn activity(&self) -> std::sync::MutexGuard<'_, Activity> {
        self.activity.lock().unwrap_or_else(|p| p.into_inner())
    }
}
