//! Pings and pongs between real nodes on loopback: a ping to the chat's scope is answered by
//! every node that reads it, with a pong sealed for the pinger that names the ping and its hops;
//! a node that does not answer pings stays silent.

mod common;

use std::time::Duration;

use common::{start, wait_selected, TestNode, DEADLINE};
use mule::content::envelope::Ping;
use mule::control::views::{self, MessageView, Sealed};
use mule::message::MessageId;
use mule::node::{Letter, NodeEvent, Privacy};

const HOUR: Duration = Duration::from_secs(3600);

/// The next message from a peer stored at `n`, opened as the inbox opens it.
async fn next_arrival(
    n: &TestNode,
    events: &mut tokio::sync::broadcast::Receiver<NodeEvent>,
) -> anyhow::Result<MessageView> {
    let id = tokio::time::timeout(DEADLINE, async {
        loop {
            match events.recv().await {
                Ok(NodeEvent::Stored { id, from: Some(_) }) => return Ok(id),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => return Err(anyhow::anyhow!("{e}")),
            }
        }
    })
    .await
    .map_err(|_| anyhow::anyhow!("nothing arrived within {DEADLINE:?}"))??;
    read(n, id).await
}

async fn read(n: &TestNode, id: MessageId) -> anyhow::Result<MessageView> {
    let reader = views::Reader {
        data_dir: &n.config().data_dir,
        identity: n.identity(),
        me: n.me(),
        roots: n.roots(),
        save_dir: None,
    };
    let stored = n
        .store()
        .get(id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("{id} not stored"))?;
    Ok(views::read(n.store(), &reader, &reader.keyring()?, &stored).await?)
}

fn ping() -> Letter {
    Letter {
        text: Some("ping".into()),
        ping: Some(Ping {}),
        ..Letter::default()
    }
}

#[tokio::test]
async fn a_ping_is_answered_with_a_pong_for_the_pinger() -> anyhow::Result<()> {
    common::init_tracing();
    let alice = start(None, |c| c.answer_pings = true).await?;
    let bob = start(Some(&alice), |c| c.answer_pings = true).await?;
    wait_selected(&alice, 1).await?;
    let mut alice_events = alice.subscribe();

    let posted = alice.post("*", ping(), &Privacy::ByRecipient, HOUR).await?;
    let pong = next_arrival(&alice, &mut alice_events).await?;
    assert_eq!(pong.sender, bob.peer_id().to_string());
    assert_eq!(
        pong.sealed,
        Some(Sealed::ForMe),
        "a pong is sealed for the pinger"
    );
    assert_eq!(pong.recipient, alice.peer_id().to_string());
    let answer = pong
        .pong
        .clone()
        .ok_or_else(|| anyhow::anyhow!("not a pong: {pong:?}"))?;
    assert_eq!(answer.ping, posted.id);
    assert_eq!(answer.hops, 0, "the ping came straight from alice");
    assert_eq!(pong.text.as_deref(), Some("pong"));

    // Bob shows the ping as one in his inbox.
    let at_bob = read(&bob, posted.id.parse()?).await?;
    assert!(at_bob.ping);

    mule::testing::shutdown_all(vec![alice.node.clone(), bob.node.clone()]).await;
    Ok(())
}

#[tokio::test]
async fn a_node_that_does_not_answer_pings_stays_silent() -> anyhow::Result<()> {
    common::init_tracing();
    let alice = start(None, |c| c.answer_pings = true).await?;
    let bob = start(Some(&alice), |_| {}).await?;
    wait_selected(&alice, 1).await?;
    let mut alice_events = alice.subscribe();
    let mut bob_events = bob.subscribe();
    alice.post("*", ping(), &Privacy::ByRecipient, HOUR).await?;
    let at_bob = next_arrival(&bob, &mut bob_events).await?;
    assert!(at_bob.ping);
    // Bob then says something himself: it is the first thing alice gets (no pong before it).
    let text = Letter {
        text: Some("no pong from me".into()),
        ..Letter::default()
    };
    bob.post("*", text, &Privacy::ByRecipient, HOUR).await?;
    let first = next_arrival(&alice, &mut alice_events).await?;
    assert_eq!(first.text.as_deref(), Some("no pong from me"));
    assert_eq!(first.pong, None);
    mule::testing::shutdown_all(vec![alice.node.clone(), bob.node.clone()]).await;
    Ok(())
}
