//! Peer events waiting for room in their bounded channel.
//!
//! The Swarm task must never wait for the app, yet a selection change must never be lost. So
//! the loop `try_send`s each [`Event`]; what does not fit waits here, coalesced: only the newest
//! state per peer is kept (a `Selected` followed by a `Deselected` of the same peer leaves only
//! the `Deselected`), in the order the peers first entered the backlog. The loop flushes the
//! backlog whenever the channel has room again. Pure: no channel, no clock.

use std::collections::{HashMap, VecDeque};

use libp2p::{Multiaddr, PeerId};
use tokio::sync::mpsc::error::TrySendError;

use super::Event;

/// Connection and listen notices kept at most while the app lags; beyond it new ones are
/// dropped (they are hints). Selection changes are always kept: they are bounded by the peers
/// the ring ever selected, and losing one would leave a sync running or never started.
pub(super) const MAX_NOTICES: usize = 4096;

/// What an event is about: a newer event with the same key replaces an older one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Selection(PeerId),
    Connected(PeerId),
    Listening(Multiaddr),
}

impl Key {
    fn of(event: &Event) -> Self {
        match event {
            Event::Selected(p) | Event::Deselected(p) => Key::Selection(*p),
            Event::Connected(p) => Key::Connected(*p),
            Event::Listening(a) => Key::Listening(a.clone()),
        }
    }

    fn is_notice(&self) -> bool {
        !matches!(self, Key::Selection(_))
    }
}

/// Events not yet delivered, newest state per key, oldest key first.
#[derive(Debug, Default)]
pub(super) struct Backlog {
    order: VecDeque<Key>,
    latest: HashMap<Key, Event>,
    notices: usize,
}

impl Backlog {
    /// Whether everything was delivered.
    #[must_use]
    pub(super) fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Events waiting.
    #[must_use]
    pub(super) fn len(&self) -> usize {
        self.order.len()
    }

    /// Queues `event`, replacing a waiting event about the same thing.
    pub(super) fn push(&mut self, event: Event) {
        let key = Key::of(&event);
        if let Some(waiting) = self.latest.get_mut(&key) {
            *waiting = event;
            return;
        }
        if key.is_notice() {
            if self.notices >= MAX_NOTICES {
                tracing::debug!(?event, "peer event backlog full; dropping notice");
                return;
            }
            self.notices += 1;
        }
        self.order.push_back(key.clone());
        self.latest.insert(key, event);
    }

    /// Hands waiting events to `send`, oldest first, until it reports the channel full (the
    /// event stays first in line) or closed (everything is dropped: nobody listens).
    pub(super) fn flush(&mut self, mut send: impl FnMut(Event) -> Result<(), TrySendError<Event>>) {
        while let Some(key) = self.order.pop_front() {
            let Some(event) = self.latest.remove(&key) else {
                continue;
            };
            let notice = key.is_notice();
            match send(event) {
                Ok(()) => {}
                Err(TrySendError::Full(event)) => {
                    self.latest.insert(key.clone(), event);
                    self.order.push_front(key);
                    return;
                }
                Err(TrySendError::Closed(_)) => {
                    self.order.clear();
                    self.latest.clear();
                    self.notices = 0;
                    return;
                }
            }
            if notice {
                self.notices -= 1;
            }
        }
    }

    /// Queues `event` behind the waiting ones and delivers what fits.
    pub(super) fn send(
        &mut self,
        event: Event,
        send: impl FnMut(Event) -> Result<(), TrySendError<Event>>,
    ) {
        self.push(event);
        self.flush(send);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A channel stand-in that accepts `room` events, then reports full.
    fn channel(room: usize) -> (Vec<Event>, usize) {
        (Vec::new(), room)
    }

    fn deliver(
        sent: &mut (Vec<Event>, usize),
    ) -> impl FnMut(Event) -> Result<(), TrySendError<Event>> + '_ {
        move |e| {
            if sent.1 == 0 {
                return Err(TrySendError::Full(e));
            }
            sent.1 -= 1;
            sent.0.push(e);
            Ok(())
        }
    }

    #[test]
    fn events_pass_straight_through_while_there_is_room() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let mut backlog = Backlog::default();
        let mut ch = channel(10);
        backlog.send(Event::Selected(a), deliver(&mut ch));
        backlog.send(Event::Connected(b), deliver(&mut ch));
        assert!(backlog.is_empty());
        assert_eq!(ch.0, vec![Event::Selected(a), Event::Connected(b)]);
    }

    #[test]
    fn a_full_channel_coalesces_to_the_newest_state_per_peer() {
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let mut backlog = Backlog::default();
        let mut ch = channel(1);
        backlog.send(Event::Selected(a), deliver(&mut ch));
        // Full from here on: everything waits, one entry per peer.
        backlog.send(Event::Selected(b), deliver(&mut ch));
        backlog.send(Event::Selected(c), deliver(&mut ch));
        backlog.send(Event::Deselected(a), deliver(&mut ch));
        backlog.send(Event::Deselected(b), deliver(&mut ch));
        backlog.send(Event::Selected(b), deliver(&mut ch));
        backlog.send(Event::Connected(c), deliver(&mut ch));
        backlog.send(Event::Connected(c), deliver(&mut ch));
        assert_eq!(backlog.len(), 4);
        assert_eq!(ch.0, vec![Event::Selected(a)]);

        // Room for two: the oldest keys go first, with their newest state.
        ch.1 = 2;
        backlog.flush(deliver(&mut ch));
        assert_eq!(backlog.len(), 2);
        ch.1 = 10;
        backlog.flush(deliver(&mut ch));
        assert!(backlog.is_empty());
        assert_eq!(
            ch.0,
            vec![
                Event::Selected(a),
                Event::Selected(b),
                Event::Selected(c),
                Event::Deselected(a),
                Event::Connected(c),
            ]
        );
    }

    #[test]
    fn new_events_queue_behind_waiting_ones() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let mut backlog = Backlog::default();
        let mut ch = channel(0);
        backlog.send(Event::Selected(a), deliver(&mut ch));
        ch.1 = 10;
        // The channel has room again, but `a` waited first and is delivered first.
        backlog.send(Event::Selected(b), deliver(&mut ch));
        assert_eq!(ch.0, vec![Event::Selected(a), Event::Selected(b)]);
    }

    #[test]
    fn a_closed_channel_drops_everything() {
        let a = PeerId::random();
        let mut backlog = Backlog::default();
        backlog.push(Event::Selected(a));
        backlog.push(Event::Connected(a));
        backlog.flush(|e| Err(TrySendError::Closed(e)));
        assert!(backlog.is_empty());
    }

    #[test]
    fn notices_are_capped_but_selection_changes_are_not() {
        let mut backlog = Backlog::default();
        for _ in 0..MAX_NOTICES + 5 {
            backlog.push(Event::Connected(PeerId::random()));
        }
        assert_eq!(backlog.len(), MAX_NOTICES);
        for _ in 0..10 {
            backlog.push(Event::Deselected(PeerId::random()));
        }
        assert_eq!(backlog.len(), MAX_NOTICES + 10);
        // Delivering notices makes room for new ones.
        let mut ch = channel(1);
        backlog.flush(deliver(&mut ch));
        backlog.push(Event::Connected(PeerId::random()));
        assert_eq!(backlog.len(), MAX_NOTICES + 10);
    }
}
