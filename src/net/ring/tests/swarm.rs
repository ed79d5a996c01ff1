//! Ring selection in real swarms on 127.0.0.1: selected connections stay open, others idle out.

use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::{dial_opts::DialOpts, Swarm, SwarmEvent};

use super::{Behaviour, Event};

const DEADLINE: Duration = Duration::from_secs(10);
const IDLE: Duration = Duration::from_millis(300);

fn new_swarm(limit: usize) -> anyhow::Result<Swarm<Behaviour>> {
    Ok(libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )?
        .with_behaviour(|key| Behaviour::new(key.public().to_peer_id(), limit))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE))
        .build())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    A,
    B,
}

/// Polls both swarms until `stop` returns true (`true`) or `within` passes (`false`).
async fn drive(
    a: &mut Swarm<Behaviour>,
    b: &mut Swarm<Behaviour>,
    within: Duration,
    mut stop: impl FnMut(Side, &SwarmEvent<Event>) -> bool,
) -> bool {
    let deadline = tokio::time::sleep(within);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            event = a.select_next_some() => if stop(Side::A, &event) { return true },
            event = b.select_next_some() => if stop(Side::B, &event) { return true },
            () = &mut deadline => return false,
        }
    }
}

#[tokio::test]
async fn selected_connections_stay_open_and_others_idle_out() -> anyhow::Result<()> {
    let mut a = new_swarm(1)?;
    let mut b = new_swarm(1)?;
    let (a_id, b_id) = (*a.local_peer_id(), *b.local_peer_id());
    b.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
    let mut addr = None;
    let listening = drive(&mut a, &mut b, DEADLINE, |side, event| match event {
        SwarmEvent::NewListenAddr { address, .. } if side == Side::B => {
            addr = Some(address.clone());
            true
        }
        _ => false,
    })
    .await;
    let addr = addr
        .filter(|_| listening)
        .ok_or_else(|| anyhow::anyhow!("b not listening"))?;

    // `Behaviour` dials by peer id and relies on other behaviours (Kademlia, mDNS,
    // identify, request-response) for addresses, which this swarm lacks: dial by address.
    // The connection itself is discovery on both sides.
    a.dial(DialOpts::peer_id(b_id).addresses(vec![addr]).build())?;
    let (mut a_selected, mut b_selected, mut a_up, mut b_up) = (false, false, false, false);
    let connected = drive(&mut a, &mut b, DEADLINE, |side, event| {
        match (side, event) {
            (Side::A, SwarmEvent::Behaviour(Event::Selected(p))) => {
                a_selected |= *p == b_id;
            }
            (Side::B, SwarmEvent::Behaviour(Event::Selected(p))) => {
                b_selected |= *p == a_id;
            }
            (Side::A, SwarmEvent::ConnectionEstablished { peer_id, .. }) => {
                a_up |= *peer_id == b_id;
            }
            (Side::B, SwarmEvent::ConnectionEstablished { peer_id, .. }) => {
                b_up |= *peer_id == a_id;
            }
            _ => {}
        }
        a_selected && b_selected && a_up && b_up
    })
    .await;
    anyhow::ensure!(
        connected,
        "a and b did not connect and select each other within {DEADLINE:?}"
    );

    let closed_early = drive(&mut a, &mut b, IDLE * 5, |_, event| {
        matches!(event, SwarmEvent::ConnectionClosed { .. })
    })
    .await;
    anyhow::ensure!(!closed_early, "selected connection closed while idle");
    anyhow::ensure!(a.is_connected(&b_id), "a lost b");

    a.behaviour_mut().remove_peer(b_id);
    b.behaviour_mut().remove_peer(a_id);
    let closed = drive(&mut a, &mut b, DEADLINE, |side, event| {
        side == Side::A && matches!(event, SwarmEvent::ConnectionClosed { .. })
    })
    .await;
    anyhow::ensure!(
        closed,
        "unselected connection did not idle out within {DEADLINE:?}"
    );
    let redialled = drive(&mut a, &mut b, IDLE * 3, |_, event| {
        matches!(
            event,
            SwarmEvent::Dialing { .. } | SwarmEvent::ConnectionEstablished { .. }
        )
    })
    .await;
    anyhow::ensure!(!redialled, "unselected peer was redialled");
    Ok(())
}
