//! The store quota between two real nodes: a receiver whose quota a push cannot fit answers
//! `storage-full`, and the sender goes on working; expiry collection goes on while pushes
//! arrive.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use common::{start, wait_selected, wait_stored, TestNode, DEADLINE};
use mule::identity::Identity;
use mule::message::{now_ms, Draft, Header};
use mule::node::Content;
use mule::protocol::{push, Code, Frame};

const HOUR: Duration = Duration::from_secs(3600);
/// How often a wait below looks again at state that has no event of its own (counters, rows).
const POLL: Duration = Duration::from_millis(20);

fn signed(content: &[u8], lifespan_ms: u64) -> anyhow::Result<Header> {
    Ok(Draft {
        recipient: "*".into(),
        created_ms: now_ms(),
        lifespan_ms,
        chains: Vec::new(),
    }
    .sign(&Identity::from_seed([42; 32]), content)?)
}

/// Waits until `check` holds, within [`DEADLINE`], failing with `what`.
async fn wait_until<F, Fut>(what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !check().await? {
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("within {DEADLINE:?}: {what}");
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

fn storage_full_refusals(node: &TestNode) -> u64 {
    node.counters()
        .rejections
        .get(Code::StorageFull.name())
        .copied()
        .unwrap_or(0)
}

#[tokio::test]
async fn a_push_that_cannot_fit_gets_storage_full_and_the_sender_keeps_working(
) -> anyhow::Result<()> {
    common::init_tracing();
    let a = start(None, |_| {}).await?;
    let b = start(Some(&a), |c| c.store.max_bytes = 100_000).await?;
    wait_selected(&a, 1).await?;
    wait_selected(&b, 1).await?;
    let bp = b.peer_id();

    // A crafted first chunk of a message larger than B's whole quota: refused before a slot
    // opens, with the code a full disk gets.
    let content = vec![7u8; 150_000];
    let header = signed(&content, 3_600_000)?;
    let frame = Frame::Ok(push::Request::Chunk {
        header: Box::new(header.clone()),
        offset: 0,
        data: content[..65_536].to_vec(),
    });
    match a.net().push(bp, frame).await? {
        push::Response::Error(e) => {
            assert_eq!(e.code, Code::StorageFull, "{}", e.message);
        }
        other => anyhow::bail!("expected storage-full, got {other:?}"),
    }
    assert_eq!(storage_full_refusals(&b), 1);
    assert_eq!(
        b.store().offset(header.id).await?,
        mule::store::Offset::Unknown,
        "nothing of it is held"
    );

    // The same through A's own sync: A sends a message B cannot take...
    let too_big = a
        .send("*", Content::Bytes(vec![9u8; 120_000]), HOUR)
        .await?;
    wait_until("B refused A's large message with storage-full", || async {
        Ok(storage_full_refusals(&b) >= 2)
    })
    .await?;
    assert!(!b.store().exists(too_big).await?);

    // ...and A goes on working: a message that fits still arrives.
    let mut events = b.subscribe();
    let small = a
        .send("*", Content::Bytes(b"still here".to_vec()), HOUR)
        .await?;
    wait_stored(&b, &mut events, small).await?;
    let usage = b.store().usage();
    assert!(usage.used <= usage.quota, "{usage:?}");
    let status = b.status().await?;
    assert_eq!(status.store_quota, 100_000);
    assert_eq!(status.store_used, usage.used);
    assert!(a.status().await?.messages >= 2);
    Ok(())
}

#[tokio::test]
async fn expired_messages_are_collected_while_pushes_arrive() -> anyhow::Result<()> {
    common::init_tracing();
    let a = start(None, |_| {}).await?;
    let b = start(Some(&a), |c| c.collect_interval = Duration::from_millis(50)).await?;
    wait_selected(&a, 1).await?;
    wait_selected(&b, 1).await?;

    // A message at B that expires a moment from now.
    let content = b"short-lived".to_vec();
    let doomed = signed(&content, 300)?;
    b.store().put(doomed.clone(), content).await?;

    // A stream of pushes from A to B until the collection happened.
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (node, stop) = (a.node.clone(), stop.clone());
        tokio::spawn(async move {
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let text = format!("load {sent}").into_bytes();
                node.send("*", Content::Bytes(text), HOUR).await?;
                sent += 1;
                tokio::task::yield_now().await;
            }
            anyhow::Ok(sent)
        })
    };
    let received_before = b.counters().messages_received;
    let collected = wait_until("B collected the expired message", || async {
        Ok(!b.store().exists(doomed.id).await?)
    })
    .await;
    let arrived = wait_until("pushes from A arrived meanwhile", || async {
        Ok(b.counters().messages_received > received_before)
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let sent = sender.await.context("sender task")??;
    collected?;
    arrived?;
    assert!(sent > 0);
    Ok(())
}
