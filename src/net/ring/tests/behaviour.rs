//! Tests of [`Behaviour`] without a swarm: every decision with an injected `now`.

use std::{
    collections::BTreeSet,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    task::{Context, Poll, Wake},
    time::{Duration, Instant},
};

use libp2p::{
    core::{transport::PortUse, ConnectedPoint, Endpoint},
    swarm::{
        behaviour::ConnectionEstablished, dial_opts::PeerCondition, ConnectionClosed, ConnectionId,
        DialError, DialFailure, FromSwarm, NetworkBehaviour, NotifyHandler, ToSwarm,
    },
    Multiaddr, PeerId,
};

use super::super::{select, BAD_PEER_ERRORS, BAD_PEER_WINDOW};
use super::{Behaviour, Event, MAX_TRUSTED_PEERS, REDIAL_INTERVAL};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// `n` random peer ids in ring order.
fn sorted_peers(n: usize) -> Vec<PeerId> {
    let mut peers: Vec<PeerId> = (0..n).map(|_| PeerId::random()).collect();
    peers.sort();
    peers
}

fn take_actions(behaviour: &mut Behaviour) -> Vec<ToSwarm<Event, bool>> {
    behaviour.events.drain(..).collect()
}

fn events(actions: &[ToSwarm<Event, bool>]) -> Vec<Event> {
    actions
        .iter()
        .filter_map(|a| match a {
            ToSwarm::GenerateEvent(e) => Some(*e),
            _ => None,
        })
        .collect()
}

fn dials(actions: &[ToSwarm<Event, bool>]) -> Vec<PeerId> {
    actions
        .iter()
        .filter_map(|a| match a {
            ToSwarm::Dial { opts } => opts.get_peer_id(),
            _ => None,
        })
        .collect()
}

fn notifications(actions: &[ToSwarm<Event, bool>]) -> Vec<(PeerId, ConnectionId, bool)> {
    actions
        .iter()
        .filter_map(|a| match a {
            ToSwarm::NotifyHandler {
                peer_id,
                handler: NotifyHandler::One(c),
                event,
            } => Some((*peer_id, *c, *event)),
            _ => None,
        })
        .collect()
}

fn endpoint() -> anyhow::Result<ConnectedPoint> {
    Ok(ConnectedPoint::Dialer {
        address: "/ip4/127.0.0.1/tcp/4001".parse::<Multiaddr>()?,
        role_override: Endpoint::Dialer,
        port_use: PortUse::Reuse,
    })
}

fn established(
    b: &mut Behaviour,
    peer: PeerId,
    id: usize,
    cp: &ConnectedPoint,
    now: Instant,
) -> ConnectionId {
    let connection_id = ConnectionId::new_unchecked(id);
    b.on_swarm_event_at(
        FromSwarm::ConnectionEstablished(ConnectionEstablished {
            peer_id: peer,
            connection_id,
            endpoint: cp,
            failed_addresses: &[],
            other_established: 0,
        }),
        now,
    );
    connection_id
}

fn closed(
    b: &mut Behaviour,
    peer: PeerId,
    connection_id: ConnectionId,
    cp: &ConnectedPoint,
    now: Instant,
) {
    b.on_swarm_event_at(
        FromSwarm::ConnectionClosed(ConnectionClosed {
            peer_id: peer,
            connection_id,
            endpoint: cp,
            cause: None,
            remaining_established: 0,
        }),
        now,
    );
}

#[test]
fn discovered_peers_are_selected_and_dialled() {
    let peers = sorted_peers(14);
    let local = peers[0];
    let mut b = Behaviour::new(local, 4);
    let t = Instant::now();
    let mut current = BTreeSet::new();
    let mut dialled = BTreeSet::new();
    for &p in peers.iter().rev() {
        b.add_peer_at(p, t);
        let actions = take_actions(&mut b);
        for e in events(&actions) {
            match e {
                Event::Selected(p) => assert!(current.insert(p), "selected twice"),
                Event::Deselected(p) => assert!(current.remove(&p), "not selected"),
            }
        }
        dialled.extend(dials(&actions));
    }
    // Repeated and local discoveries change nothing.
    b.add_peer_at(peers[5], t);
    b.add_peer_at(local, t);
    assert!(take_actions(&mut b).is_empty());

    let expected = select(&local, &peers, 4, super::Fingers::PowersOfTwo, |_| false);
    assert_eq!(expected, vec![peers[1], peers[2], peers[4], peers[8]]);
    assert_eq!(b.selected().copied().collect::<Vec<_>>(), expected);
    assert_eq!(current, expected.iter().copied().collect());
    assert!(expected
        .iter()
        .all(|p| b.is_selected(p) && dialled.contains(p)));
    assert!(!b.is_selected(&peers[3]));
    assert_eq!(b.known_peers(), 13);

    // Removing a peer shifts the ring: 1, 3, 5, 9 are now at distances 1, 2, 4, 8.
    b.remove_peer(peers[2]);
    let actions = take_actions(&mut b);
    assert_eq!(
        events(&actions),
        vec![
            Event::Deselected(peers[2]),
            Event::Deselected(peers[4]),
            Event::Deselected(peers[8]),
            Event::Selected(peers[3]),
            Event::Selected(peers[5]),
            Event::Selected(peers[9]),
        ]
    );
    assert_eq!(
        b.selected().copied().collect::<Vec<_>>(),
        vec![peers[1], peers[3], peers[5], peers[9]]
    );
    assert_eq!(b.known_peers(), 12);
}

#[test]
fn bad_peer_is_replaced_until_its_errors_expire() {
    let peers = sorted_peers(3);
    let (local, first, second) = (peers[0], peers[1], peers[2]);
    let mut b = Behaviour::new(local, 1);
    let t0 = Instant::now();
    b.add_peer_at(first, t0);
    b.add_peer_at(second, t0);
    take_actions(&mut b);
    assert!(b.is_selected(&first));

    for k in 0..BAD_PEER_ERRORS {
        assert!(b.is_selected(&first), "error {k}");
        b.report_error_at(first, t0 + secs(k as u64));
    }
    let bad_at = t0 + secs(BAD_PEER_ERRORS as u64 - 1);
    let actions = take_actions(&mut b);
    assert_eq!(
        events(&actions),
        vec![Event::Deselected(first), Event::Selected(second)]
    );
    assert_eq!(dials(&actions), vec![second]);
    // A wake-up is due when the first error leaves the window.
    assert_eq!(b.next_wakeup, Some(t0 + BAD_PEER_WINDOW));

    b.tick(bad_at + secs(60));
    assert!(take_actions(&mut b).is_empty());
    b.tick(t0 + BAD_PEER_WINDOW);
    let actions = take_actions(&mut b);
    assert_eq!(
        events(&actions),
        vec![Event::Deselected(second), Event::Selected(first)]
    );
    assert_eq!(b.next_wakeup, None);
}

#[test]
fn when_all_peers_are_bad_they_are_still_selected() {
    let peers = sorted_peers(2);
    let mut b = Behaviour::new(peers[0], 1);
    let t0 = Instant::now();
    b.add_peer_at(peers[1], t0);
    for _ in 0..BAD_PEER_ERRORS {
        b.report_error_at(peers[1], t0);
    }
    assert!(b.is_selected(&peers[1]));
}

#[test]
fn connections_are_discovery_and_get_keep_alive_updates() -> anyhow::Result<()> {
    let peers = sorted_peers(3);
    let (local, first, second) = (peers[0], peers[1], peers[2]);
    let cp = endpoint()?;
    let mut b = Behaviour::new(local, 1);
    let t0 = Instant::now();

    // An inbound connection from an unknown peer puts it on the ring; it is connected,
    // so it is not dialled, and its handler is told to keep the connection open.
    let c1 = established(&mut b, second, 1, &cp, t0);
    let actions = take_actions(&mut b);
    assert_eq!(b.known_peers(), 1);
    assert_eq!(events(&actions), vec![Event::Selected(second)]);
    assert!(dials(&actions).is_empty());
    assert_eq!(notifications(&actions), vec![(second, c1, true)]);

    // A closer peer displaces it: its handler is told to let the connection idle out.
    b.add_peer_at(first, t0);
    let actions = take_actions(&mut b);
    assert_eq!(
        events(&actions),
        vec![Event::Deselected(second), Event::Selected(first)]
    );
    assert_eq!(notifications(&actions), vec![(second, c1, false)]);
    assert_eq!(dials(&actions), vec![first]);

    // Closing an unselected peer's connection dials nobody.
    closed(&mut b, second, c1, &cp, t0);
    assert!(take_actions(&mut b).is_empty());
    Ok(())
}

#[test]
fn selected_peer_is_redialled_at_most_once_per_interval() -> anyhow::Result<()> {
    let peers = sorted_peers(2);
    let (local, peer) = (peers[0], peers[1]);
    let cp = endpoint()?;
    let mut b = Behaviour::new(local, 1);
    let t0 = Instant::now();

    let c1 = established(&mut b, peer, 1, &cp, t0);
    take_actions(&mut b);
    closed(&mut b, peer, c1, &cp, t0);
    assert_eq!(dials(&take_actions(&mut b)), vec![peer]);

    // The redial connects and drops again at once: the next dial waits.
    let c2 = established(&mut b, peer, 2, &cp, t0 + secs(1));
    assert!(take_actions(&mut b).is_empty());
    closed(&mut b, peer, c2, &cp, t0 + secs(1));
    assert!(take_actions(&mut b).is_empty());
    assert_eq!(b.next_wakeup, Some(t0 + REDIAL_INTERVAL));
    b.tick(t0 + REDIAL_INTERVAL);
    assert_eq!(dials(&take_actions(&mut b)), vec![peer]);
    assert_eq!(b.next_wakeup, None);

    // A pending redial is dropped when the peer connects by itself.
    closed(
        &mut b,
        peer,
        ConnectionId::new_unchecked(99),
        &cp,
        t0 + REDIAL_INTERVAL,
    );
    b.report_error_at(peer, t0 + REDIAL_INTERVAL);
    let c3 = established(&mut b, peer, 3, &cp, t0 + REDIAL_INTERVAL);
    take_actions(&mut b);
    b.tick(t0 + REDIAL_INTERVAL * 2);
    assert!(dials(&take_actions(&mut b)).is_empty());
    closed(&mut b, peer, c3, &cp, t0 + REDIAL_INTERVAL * 3);
    assert_eq!(dials(&take_actions(&mut b)), vec![peer]);
    Ok(())
}

#[test]
fn dial_failures_count_as_errors_except_local_ones() {
    let peers = sorted_peers(3);
    let (local, first, second) = (peers[0], peers[1], peers[2]);
    let mut b = Behaviour::new(local, 1);
    let t0 = Instant::now();
    b.add_peer_at(first, t0);
    b.add_peer_at(second, t0);
    take_actions(&mut b);

    let not_peer_faults = [
        DialError::DialPeerConditionFalse(PeerCondition::DisconnectedAndNotDialing),
        DialError::Aborted,
    ];
    for error in &not_peer_faults {
        for _ in 0..BAD_PEER_ERRORS {
            b.on_swarm_event_at(
                FromSwarm::DialFailure(DialFailure {
                    peer_id: Some(first),
                    error,
                    connection_id: ConnectionId::new_unchecked(1),
                }),
                t0,
            );
        }
    }
    assert!(b.is_selected(&first));
    assert!(take_actions(&mut b).is_empty());

    let mut redials = 0;
    let mut now = t0;
    for k in 0..BAD_PEER_ERRORS {
        now += REDIAL_INTERVAL;
        b.tick(now);
        redials += dials(&take_actions(&mut b)).len();
        b.on_swarm_event_at(
            FromSwarm::DialFailure(DialFailure {
                peer_id: Some(first),
                error: &DialError::NoAddresses,
                connection_id: ConnectionId::new_unchecked(k + 2),
            }),
            now,
        );
    }
    // Each failure schedules one redial; the tenth failure makes the peer bad instead.
    assert!(!b.is_selected(&first));
    assert!(b.is_selected(&second));
    assert_eq!(redials, BAD_PEER_ERRORS - 1);
}

struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn poll_hands_out_actions_and_wakes_on_changes() {
    let peers = sorted_peers(3);
    let mut b = Behaviour::new(peers[0], 1);
    let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let waker = std::task::Waker::from(counter.clone());
    let mut cx = Context::from_waker(&waker);

    assert!(b.poll(&mut cx).is_pending());
    b.add_peer(peers[2]);
    assert_eq!(counter.0.load(Ordering::SeqCst), 1);
    let mut got = Vec::new();
    while let Poll::Ready(action) = b.poll(&mut cx) {
        got.push(action);
    }
    assert_eq!(events(&got), vec![Event::Selected(peers[2])]);
    assert_eq!(dials(&got), vec![peers[2]]);

    b.report_error(peers[1]);
    assert_eq!(
        counter.0.load(Ordering::SeqCst),
        1,
        "unknown peer: nothing to do"
    );
    b.add_peer(peers[1]);
    assert_eq!(counter.0.load(Ordering::SeqCst), 2);
    while let Poll::Ready(action) = b.poll(&mut cx) {
        got.push(action);
    }
    assert_eq!(
        events(&got)[1..],
        [Event::Deselected(peers[2]), Event::Selected(peers[1])]
    );
}

// ---- trusted-only selection ----

#[test]
fn trusted_only_selects_among_trusted_peers() -> anyhow::Result<()> {
    let peers = sorted_peers(6);
    let local = peers[0];
    let cp = endpoint()?;
    let mut b = Behaviour::new(local, 2).with_trusted_only(true);
    let t0 = Instant::now();

    // Known and even connected, but untrusted: never selected, never dialled.
    for &p in &peers[1..] {
        b.add_peer_at(p, t0);
    }
    let c1 = established(&mut b, peers[1], 1, &cp, t0);
    let actions = take_actions(&mut b);
    assert!(events(&actions).is_empty());
    assert!(dials(&actions).is_empty());
    assert_eq!(b.known_peers(), 5);

    // Marking reselects: the ring is local, 3, 5, so 3 and 5 are picked.
    b.set_trusted_at(peers[3], true, t0);
    b.set_trusted_at(peers[5], true, t0);
    let actions = take_actions(&mut b);
    assert_eq!(
        events(&actions),
        vec![Event::Selected(peers[3]), Event::Selected(peers[5])]
    );
    assert_eq!(dials(&actions), vec![peers[3], peers[5]]);
    assert!(b.is_trusted(&peers[3]) && !b.is_trusted(&peers[1]));

    // Trusting the connected peer takes the closest slot and keeps its connection open.
    b.set_trusted_at(peers[1], true, t0);
    let actions = take_actions(&mut b);
    assert_eq!(
        events(&actions),
        vec![Event::Deselected(peers[5]), Event::Selected(peers[1])]
    );
    assert_eq!(notifications(&actions), vec![(peers[1], c1, true)]);
    assert!(dials(&actions).is_empty());

    // Unmarking reselects; marking again what is already marked changes nothing.
    b.set_trusted_at(peers[3], false, t0);
    b.set_trusted_at(peers[1], true, t0);
    assert_eq!(
        events(&take_actions(&mut b)),
        vec![Event::Deselected(peers[3]), Event::Selected(peers[5])]
    );
    assert_eq!(
        b.selected().copied().collect::<Vec<_>>(),
        vec![peers[1], peers[5]]
    );
    Ok(())
}

#[test]
fn trust_marks_are_kept_without_trusted_only_and_capped() {
    let peers = sorted_peers(3);
    let mut b = Behaviour::new(peers[0], 1);
    let t0 = Instant::now();
    b.add_peer_at(peers[2], t0);
    take_actions(&mut b);
    // Without trusted-only a mark changes nothing about selection.
    b.set_trusted_at(peers[1], true, t0);
    b.set_trusted_at(peers[2], false, t0);
    assert!(take_actions(&mut b).is_empty());
    assert!(b.is_selected(&peers[2]));
    assert!(b.is_trusted(&peers[1]));
    // The local id is never marked; the set stops growing at its cap.
    b.set_trusted_at(peers[0], true, t0);
    assert!(!b.is_trusted(&peers[0]));
    for _ in 0..MAX_TRUSTED_PEERS {
        b.set_trusted_at(PeerId::random(), true, t0);
    }
    let late = PeerId::random();
    b.set_trusted_at(late, true, t0);
    assert!(!b.is_trusted(&late));
    assert!(b.is_trusted(&peers[1]));
}
