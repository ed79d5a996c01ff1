//! Per-(message, peer) delivery state: what a sync with a peer still has to do. Rows live in
//! `delivery-1` and go when their message is collected ([`super::expiry`]).

use redb::ReadableTable;

use super::tables::{self, Delivery, Stored, BY_CREATED, DELIVERY, MESSAGES};
use super::{blocking, Error, PeerKey, Store};
use crate::message::MessageId;

impl Store {
    /// Records, for each id, its stored record and delivery state towards `peer` (one read
    /// transaction); ids not stored are left out.
    pub async fn with_delivery(
        &self,
        ids: Vec<MessageId>,
        peer: PeerKey,
    ) -> Result<Vec<(Stored, Option<Delivery>)>, Error> {
        let store = self.clone();
        blocking(move || {
            let read = store.begin_read()?;
            let messages = read.open_table(MESSAGES)?;
            let delivery = read.open_table(DELIVERY)?;
            let mut out = Vec::with_capacity(ids.len());
            for id in &ids {
                let key = id.as_bytes().as_slice();
                let Some(value) = messages.get(key)? else {
                    continue;
                };
                let stored: Stored = tables::decode(value.value())?;
                let state = delivery
                    .get((key, peer.as_bytes()))?
                    .map(|v| tables::decode(v.value()))
                    .transpose()?;
                out.push((stored, state));
            }
            Ok(out)
        })
        .await
    }

    /// Every complete, unexpired message with its delivery state towards `peer`, in creation
    /// order: the starting point of a sync with that peer.
    pub async fn deliveries_for(
        &self,
        peer: PeerKey,
        now_ms: u64,
    ) -> Result<Vec<(Stored, Option<Delivery>)>, Error> {
        let store = self.clone();
        blocking(move || {
            let read = store.begin_read()?;
            let by_created = read.open_table(BY_CREATED)?;
            let messages = read.open_table(MESSAGES)?;
            let delivery = read.open_table(DELIVERY)?;
            let mut out = Vec::new();
            for row in by_created.range::<(u64, &[u8])>(..)? {
                let (key, _) = row?;
                let (_, id) = key.value();
                let Some(value) = messages.get(id)? else {
                    continue;
                };
                let stored: Stored = tables::decode(value.value())?;
                if stored.header.expires_ms() < now_ms {
                    continue;
                }
                let state = delivery
                    .get((id, peer.as_bytes()))?
                    .map(|v| tables::decode(v.value()))
                    .transpose()?;
                out.push((stored, state));
            }
            Ok(out)
        })
        .await
    }

    /// What we know about handing `id` to `peer`.
    pub async fn delivery(&self, id: MessageId, peer: PeerKey) -> Result<Option<Delivery>, Error> {
        let store = self.clone();
        blocking(move || {
            let read = store.begin_read()?;
            let table = read.open_table(DELIVERY)?;
            let row = table.get((id.as_bytes().as_slice(), peer.as_bytes()))?;
            row.map(|v| tables::decode(v.value())).transpose()
        })
        .await
    }

    /// Records delivery state; durable when this returns, so a restart neither loses nor repeats work.
    pub async fn set_delivery(
        &self,
        id: MessageId,
        peer: PeerKey,
        state: Delivery,
    ) -> Result<(), Error> {
        self.set_deliveries(vec![(id, peer, state)]).await
    }

    /// Records many delivery states in one commit.
    pub async fn set_deliveries(
        &self,
        states: Vec<(MessageId, PeerKey, Delivery)>,
    ) -> Result<(), Error> {
        let rows = states
            .into_iter()
            .map(|(id, peer, state)| Ok((id, peer, tables::encode(&state)?)))
            .collect::<Result<Vec<_>, Error>>()?;
        self.inner
            .writer
            .write(move |txn| {
                let messages = txn.open_table(MESSAGES)?;
                let mut delivery = txn.open_table(DELIVERY)?;
                for (id, peer, value) in &rows {
                    // A message collected meanwhile gets no state.
                    if messages.get(id.as_bytes().as_slice())?.is_some() {
                        delivery.insert(
                            (id.as_bytes().as_slice(), peer.as_bytes()),
                            value.as_slice(),
                        )?;
                    }
                }
                Ok(())
            })
            .await
    }
}
