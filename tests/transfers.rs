//! Edge cases of resumable transfers between real nodes.

mod common;

use common::{start, wait_selected, wait_stored, DEADLINE};
use mule::identity::Identity;
use mule::message::{now_ms, Draft};
use mule::node::{Config, Node};
use mule::protocol::{push, Frame};
use mule::store::Store;

/// Only the header a transfer was admitted with counts: a later chunk carrying other signed
/// fields under the same id cannot change what is stored.
#[tokio::test]
async fn later_chunks_cannot_swap_the_header() -> anyhow::Result<()> {
    common::init_tracing();
    let a = start(None, |_| {}).await?;
    let b = start(Some(&a), |_| {}).await?;
    wait_selected(&a, 1).await?;
    let content = vec![7u8; 200_000];
    let header = Draft {
        recipient: "*".into(),
        created_ms: now_ms(),
        lifespan_ms: 3_600_000,
        chains: vec![],
    }
    .sign(&Identity::from_seed([11; 32]), &content)?;
    let mut forged = header.clone();
    forged.recipient = "campfire/mallory".into();

    // The valid header arrives first, with the second half: it is admitted and waits for the
    // bytes before it. The first half then arrives under a forged header.
    let second_half = Frame::Ok(push::Request::Chunk {
        header: Box::new(header.clone()),
        offset: 100_000,
        data: content[100_000..].to_vec(),
    });
    let net = a.net().clone();
    let bp = b.peer_id();
    let waiting = tokio::spawn(async move { net.push(bp, second_half).await });
    // Wait until B has admitted the transfer (the store then holds an empty partial). The
    // store has no event for this; poll it, bounded.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while b.store().offset(header.id).await? != mule::store::Offset::Partial(0) {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "transfer never opened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let first_half = Frame::Ok(push::Request::Chunk {
        header: Box::new(forged),
        offset: 0,
        data: content[..100_000].to_vec(),
    });
    let _ = a.net().push(bp, first_half).await?;
    assert_eq!(waiting.await??, push::Response::Offset(200_000));
    let stored = b
        .store()
        .get(header.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("not stored"))?;
    assert_eq!(stored.header, header);
    Ok(())
}

/// A receiver that crashed after the last byte but before finishing holds a complete partial:
/// the sender's empty final chunk makes it finish instead of stalling.
#[tokio::test]
async fn fully_held_partial_completes_on_resume() -> anyhow::Result<()> {
    common::init_tracing();
    let sender = Identity::generate();
    let content: Vec<u8> = (0..600_000u32).map(|i| (i % 241) as u8).collect();
    let header = Draft {
        recipient: "*".into(),
        created_ms: now_ms(),
        lifespan_ms: 3_600_000,
        chains: vec![],
    }
    .sign(&sender, &content)?;

    // B holds every byte, unfinished.
    let b_dir = tempfile::tempdir()?;
    {
        let store = Store::open(b_dir.path().join("store"), Default::default()).await?;
        let mut t = store.begin_write(header.clone()).await?;
        t.append(0, content.clone()).await?;
        drop(t);
        store.close().await?;
    }
    // A holds the message complete.
    let a_dir = tempfile::tempdir()?;
    {
        let store = Store::open(a_dir.path().join("store"), Default::default()).await?;
        store.put(header.clone(), content.clone()).await?;
        store.close().await?;
    }
    let a = Node::start_with(sender, Config::for_tests(a_dir.path())).await?;
    let mut b_config = Config::for_tests(b_dir.path());
    b_config.net.bootstrap = a.wait_listening(DEADLINE).await.unwrap_or_default();
    let b = Node::start_with(Identity::generate(), b_config).await?;
    let mut events = b.subscribe();
    wait_stored(&b, &mut events, header.id).await?;
    assert_eq!(b.store().read_range(header.id, 0, 600_000).await?, content);
    // Nothing was sent but the empty final chunk.
    assert_eq!(a.counters().bytes_sent, 0);
    a.shutdown().await?;
    b.shutdown().await?;
    Ok(())
}

/// A peer that comes (back) is tried at once: a message waiting an hour for its next retry
/// towards it (a receiver that crashed again and again) goes as soon as the peer connects,
/// instead of after the backoff.
#[tokio::test]
async fn a_fresh_connection_skips_the_backoff() -> anyhow::Result<()> {
    common::init_tracing();
    let a = start(None, |_| {}).await?;
    let b_id = Identity::generate();
    let id = a
        .send(
            "*",
            mule::node::Content::Bytes(b"after the storm".to_vec()),
            std::time::Duration::from_secs(600),
        )
        .await?;
    a.store()
        .set_delivery(
            id,
            mule::store::PeerKey::from(b_id.peer_id().to_bytes()),
            mule::store::Delivery::Retry {
                attempts: 12,
                next_attempt_ms: now_ms() + 3_600_000,
                last_error: "connection closed".into(),
            },
        )
        .await?;
    let b = mule::testing::start_as(b_id, tempfile::tempdir()?, Some(&a), |_| {}).await?;
    let mut events = b.subscribe();
    wait_stored(&b, &mut events, id).await?;
    Ok(())
}

/// `mule status` shows a transfer in flight with the bytes the receiver holds, until it ends.
#[tokio::test]
async fn transfers_in_flight_show_in_status() -> anyhow::Result<()> {
    common::init_tracing();
    let a = start(None, |_| {}).await?;
    let b = start(Some(&a), |_| {}).await?;
    wait_selected(&a, 1).await?;
    let content = vec![5u8; 300_000];
    let header = Draft {
        recipient: "*".into(),
        created_ms: now_ms(),
        lifespan_ms: 600_000,
        chains: Vec::new(),
    }
    .sign(&Identity::generate(), &content)?;
    let chunk = |offset: usize, end: usize| {
        Frame::Ok(push::Request::Chunk {
            header: Box::new(header.clone()),
            offset: offset as u64,
            data: content[offset..end].to_vec(),
        })
    };
    a.net().push(b.peer_id(), chunk(0, 100_000)).await?;
    let status = b.status().await?;
    let t = status
        .transfers
        .iter()
        .find(|t| t.id == header.id.to_string())
        .ok_or_else(|| anyhow::anyhow!("no transfer in {:?}", status.transfers))?;
    assert_eq!((t.done, t.length), (100_000, 300_000));
    assert_eq!(t.peer, a.peer_id().to_string());
    assert_eq!(t.direction, mule::node::transfers::Direction::In);
    a.net().push(b.peer_id(), chunk(100_000, 300_000)).await?;
    assert!(b.store().exists(header.id).await?);
    assert!(b
        .status()
        .await?
        .transfers
        .iter()
        .all(|t| t.id != header.id.to_string()));
    Ok(())
}
