//! Rate limits with teeth: a peer that keeps asking after `rate-limit-exceeded` is cut off for a
//! cool-down while other peers go on being served, and an honest mule sender over its rate is
//! paced by its own sync (it stops each pass at the first refusal) and never cut off.

mod common;

use std::time::Duration;

use common::{start, wait_selected, TestNode};
use libp2p::PeerId;
use mule::identity::Identity;
use mule::message::{now_ms, Draft};
use mule::node::cooldown;
use mule::node::{Content, NodeEvent};
use mule::protocol::{push, Code, Frame};

const LIFESPAN: Duration = Duration::from_secs(3600);

/// A fresh, validly signed one-chunk push of a message from a throw-away sender.
fn fresh_push(n: u64) -> anyhow::Result<Frame<push::Request>> {
    let content = format!("flood {n}").into_bytes();
    let header = Draft {
        recipient: "*".into(),
        created_ms: now_ms(),
        lifespan_ms: LIFESPAN.as_millis() as u64,
        chains: Vec::new(),
    }
    .sign(&Identity::from_seed([7; 32]), &content)?;
    Ok(Frame::Ok(push::Request::Chunk {
        header: Box::new(header),
        offset: 0,
        data: content,
    }))
}

/// Pushes from `from` to `to` one request after another, ignoring refusals, until a request
/// fails at the connection (the receiver cut us off) or `max` requests were made. Returns the
/// answers counted by kind: (admitted, rate-limited, failed).
async fn flood(from: &TestNode, to: PeerId, max: u64) -> anyhow::Result<(u64, u64, u64)> {
    let (mut admitted, mut limited) = (0, 0);
    for n in 0..max {
        match from.net().push(to, fresh_push(n)?).await {
            Ok(push::Response::Error(e)) if e.code == Code::RateLimitExceeded => limited += 1,
            Ok(push::Response::Error(e)) => anyhow::bail!("unexpected refusal: {e}"),
            Ok(_) => admitted += 1,
            Err(_) => return Ok((admitted, limited, 1)),
        }
    }
    Ok((admitted, limited, 0))
}

#[tokio::test]
async fn a_peer_that_ignores_rate_limits_is_cut_off_for_a_while_and_others_are_served(
) -> anyhow::Result<()> {
    common::init_tracing();
    let cool = Duration::from_secs(2);
    let receiver = start(None, |c| {
        c.access.requests_per_second = 5.0;
        c.access.burst = 5;
        c.access.cooldown = cooldown::Policy {
            strikes: 50,
            window: Duration::from_secs(30),
            first: cool,
            max: cool,
            memory: Duration::from_secs(3600),
        };
    })
    .await?;
    let flooder = start(Some(&receiver), |_| {}).await?;
    let victim = start(Some(&receiver), |_| {}).await?;
    wait_selected(&receiver, 2).await?;
    wait_selected(&flooder, 1).await?;
    wait_selected(&victim, 1).await?;

    // The flooder ignores every refusal; its 50th is one too many.
    let (admitted, limited, failed) = flood(&flooder, receiver.peer_id(), 1_000).await?;
    assert_eq!(
        failed, 1,
        "never cut off: {admitted} admitted, {limited} refused"
    );
    assert!(
        (49..=50).contains(&limited),
        "cut off after {limited} rate-limit refusals (policy: 50)"
    );
    assert_eq!(receiver.counters().peers_cooled_down, 1);
    // While it cools down it cannot even connect.
    assert!(
        flooder
            .net()
            .push(receiver.peer_id(), fresh_push(0)?)
            .await
            .is_err(),
        "the cut-off peer got through during its cool-down"
    );
    assert!(!receiver
        .status()
        .await?
        .connected_peers
        .contains(&flooder.peer_id().to_string()));

    // Meanwhile the victim's messages arrive.
    let mut events = receiver.subscribe();
    let id = victim
        .send(
            receiver.peer_id().to_string(),
            Content::Bytes(b"still here".to_vec()),
            LIFESPAN,
        )
        .await?;
    common::wait_stored(&receiver, &mut events, id).await?;

    // After the cool-down the flooder may connect and ask again (within its rate).
    let deadline = tokio::time::Instant::now() + cool + common::DEADLINE;
    let mut n = 1_000;
    loop {
        n += 1;
        match flooder.net().push(receiver.peer_id(), fresh_push(n)?).await {
            Ok(push::Response::Offset(_)) => break,
            Ok(other) => anyhow::bail!("after the cool-down: {other:?}"),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                anyhow::bail!("still cut off long after its cool-down: {e}")
            }
            // Refused while the cool-down lasts: ask again shortly.
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    mule::testing::shutdown_all(vec![flooder.node, victim.node, receiver.node]).await;
    Ok(())
}

#[tokio::test]
async fn an_honest_sender_over_its_rate_is_paced_and_never_cut_off() -> anyhow::Result<()> {
    common::init_tracing();
    const MESSAGES: usize = 600;
    let receiver = start(None, |c| {
        c.access.requests_per_second = 200.0;
        c.access.burst = 100;
        // An honest sender has at most a window (64) refused per pass, and each pass after a
        // half-second pause or longer takes a burst (100): about 5 passes for 600 messages, so
        // at most ~320 refusals in all (about 100 measured). Going on past refusals, it would
        // have ~500 refused in its first pass.
        c.access.cooldown = cooldown::Policy {
            strikes: 400,
            window: Duration::from_secs(10),
            ..cooldown::Policy::default()
        };
    })
    .await?;
    // Every message on its own push request (none inline, so none batched), all of them
    // waiting before the two meet: the first pass offers all 600 at once.
    let sender = start(None, |c| c.store.inline_max = 0).await?;
    let mut ids = std::collections::HashSet::new();
    for i in 0..MESSAGES {
        let body = format!("message {i} {}", "x".repeat(1000)).into_bytes();
        ids.insert(
            sender
                .send(
                    receiver.peer_id().to_string(),
                    Content::Bytes(body),
                    LIFESPAN,
                )
                .await?,
        );
    }
    let mut events = receiver.subscribe();
    for addr in receiver.listen_addrs() {
        sender.net().dial(addr).await?;
    }
    wait_selected(&receiver, 1).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !ids.is_empty() {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(NodeEvent::Stored { id, .. })) => {
                ids.remove(&id);
            }
            Ok(Ok(_)) => {}
            // Lagged: ask the store for what is left.
            Ok(Err(_)) => {
                let mut left = std::collections::HashSet::new();
                for id in ids {
                    if !receiver.store().exists(id).await? {
                        left.insert(id);
                    }
                }
                ids = left;
            }
            Err(_) => anyhow::bail!(
                "{} of {MESSAGES} messages missing after 60 s; receiver counters: {:?}",
                ids.len(),
                receiver.counters()
            ),
        }
    }
    let counters = receiver.counters();
    let refused = counters
        .rejections
        .get("rate-limit-exceeded")
        .copied()
        .unwrap_or(0);
    assert!(refused > 0, "the sender never met its rate limit");
    assert_eq!(
        counters.peers_cooled_down, 0,
        "an honest sender was cut off"
    );
    mule::testing::shutdown_all(vec![sender.node, receiver.node]).await;
    Ok(())
}
