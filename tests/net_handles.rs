//! Two network layers on 127.0.0.1, driven only through their handles and event channels:
//! `/mule/names/1` (the dialer sees `Connected`, sends its chains, the listener answers with its
//! own or fails to) and trusted-only ring selection.

use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use mule::identity::Identity;
use mule::net::{self, Event, Inbound, Request, RequestError, StreamError};
use mule::protocol::{names, Frame, ResponseError};
use serde_bytes::ByteBuf;
use tokio::time::timeout;

/// Every wait in this file ends within this.
const DEADLINE: Duration = Duration::from_secs(10);

struct Net {
    peer_id: PeerId,
    handle: net::Handle,
    events: net::Events,
}

fn start(seed: u8, trusted_only: bool) -> anyhow::Result<Net> {
    let identity = Identity::from_seed([seed; 32]);
    let config = net::Config {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
        mdns: false,
        trusted_only,
        ..net::Config::default()
    };
    let (handle, events, event_loop) = net::new(&identity, config)?;
    tokio::spawn(event_loop.run());
    Ok(Net {
        peer_id: identity.peer_id(),
        handle,
        events,
    })
}

/// The next peer event that `pick` accepts, skipping the others.
async fn next_peer_event<T>(
    net: &mut Net,
    what: &str,
    mut pick: impl FnMut(Event) -> Option<T>,
) -> anyhow::Result<T> {
    let wait = async {
        while let Some(event) = net.events.peers.recv().await {
            if let Some(found) = pick(event) {
                return Some(found);
            }
        }
        None
    };
    timeout(DEADLINE, wait)
        .await
        .map_err(|_| anyhow::anyhow!("no {what} within {DEADLINE:?}"))?
        .ok_or_else(|| anyhow::anyhow!("network stopped before {what}"))
}

async fn next_request(net: &mut Net) -> anyhow::Result<Request> {
    timeout(DEADLINE, net.events.requests.recv())
        .await
        .map_err(|_| anyhow::anyhow!("no inbound request within {DEADLINE:?}"))?
        .ok_or_else(|| anyhow::anyhow!("network stopped before a request arrived"))
}

/// Starts two networks and has `a` dial `b`; returns once both saw `Connected`.
async fn connected_pair(trusted_only: bool) -> anyhow::Result<(Net, Net)> {
    let mut a = start(0xa1, trusted_only)?;
    let mut b = start(0xb2, trusted_only)?;
    let addr: Multiaddr = next_peer_event(&mut b, "listen address", |e| match e {
        Event::Listening(addr) => Some(addr),
        _ => None,
    })
    .await?;
    a.handle.dial(addr).await?;
    let b_id = b.peer_id;
    next_peer_event(&mut a, "Connected(b) at a", |e| {
        (e == Event::Connected(b_id)).then_some(())
    })
    .await?;
    let a_id = a.peer_id;
    next_peer_event(&mut b, "Connected(a) at b", |e| {
        (e == Event::Connected(a_id)).then_some(())
    })
    .await?;
    Ok((a, b))
}

fn chain(certs: &[&[u8]]) -> Vec<ByteBuf> {
    certs.iter().map(|c| ByteBuf::from(c.to_vec())).collect()
}

#[tokio::test]
async fn dialer_and_listener_exchange_their_chains() -> anyhow::Result<()> {
    let (a, mut b) = connected_pair(false).await?;
    let mine = names::Chains::new(vec![chain(&[b"a-leaf", b"a-root"])])?;
    let theirs = names::Chains::new(vec![chain(&[b"b-leaf"]), chain(&[b"b2-leaf", b"root"])])?;

    let handle = a.handle.clone();
    let (b_id, sent) = (b.peer_id, mine.clone());
    let exchange = tokio::spawn(async move { handle.names(b_id, sent).await });

    let Request { peer, inbound } = next_request(&mut b).await?;
    assert_eq!(peer, a.peer_id);
    let Inbound::Names(Frame::Ok(request), channel) = inbound else {
        anyhow::bail!("expected a well-formed names request, got {inbound:?}");
    };
    assert_eq!(request, mine);
    b.handle.respond_names(channel, theirs.clone()).await?;

    let answer = timeout(DEADLINE, exchange).await???;
    assert_eq!(answer, theirs);
    assert_eq!(answer.chains().len(), 2);
    Ok(())
}

#[tokio::test]
async fn an_unanswered_exchange_fails_with_a_typed_error() -> anyhow::Result<()> {
    let (a, mut b) = connected_pair(false).await?;
    let handle = a.handle.clone();
    let b_id = b.peer_id;
    let exchange = tokio::spawn(async move { handle.names(b_id, names::Chains::empty()).await });

    let Request { inbound, .. } = next_request(&mut b).await?;
    // Dropping the response channel closes the stream without an answer.
    drop(inbound);

    let result = timeout(DEADLINE, exchange).await??;
    assert!(
        matches!(
            result,
            Err(RequestError::Io(StreamError::Response(
                ResponseError::Malformed { .. }
            )))
        ),
        "{result:?}"
    );
    Ok(())
}

#[tokio::test]
async fn with_trusted_only_a_peer_is_selected_only_while_trusted() -> anyhow::Result<()> {
    let (mut a, b) = connected_pair(true).await?;
    let b_id = b.peer_id;
    // Ring selection ran when the connection came up, before `Connected` was reported.
    let status = a.handle.status().await?;
    assert!(status.connected.contains(&b_id));
    assert!(status.selected.is_empty(), "{:?}", status.selected);

    a.handle.set_trusted(b_id, true).await?;
    next_peer_event(&mut a, "Selected(b)", |e| {
        (e == Event::Selected(b_id)).then_some(())
    })
    .await?;
    assert_eq!(a.handle.status().await?.selected, vec![b_id]);

    a.handle.set_trusted(b_id, false).await?;
    next_peer_event(&mut a, "Deselected(b)", |e| {
        (e == Event::Deselected(b_id)).then_some(())
    })
    .await?;
    let status = a.handle.status().await?;
    assert!(status.selected.is_empty());
    assert!(
        status.connected.contains(&b_id),
        "an untrusted peer may stay connected"
    );
    Ok(())
}
