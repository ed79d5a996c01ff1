//! An island and its data mule: the islander is never pushed to (the mule's `out` list denies
//! it), dials the mule when it passes, and pulls through `/mule/repo/1` what it lacks.

mod common;

use std::io::Read;
use std::time::Duration;

use anyhow::Context;
use common::{start, TestNode};
use libp2p::PeerId;
use mule::message::MessageId;
use mule::node::{Content, PullOptions, PullProgress};
use tokio::sync::watch;

const DAY: Duration = Duration::from_secs(86_400);
/// Several `repo::MAX_PULL` ranges, and not a multiple of one.
const LARGE: usize = 3 * 1024 * 1024 + 12_345;

/// An access-list file whose `out` list denies `islander`: a node using it never pushes
/// there, whatever its ring says.
fn acl_denying(islander: PeerId) -> anyhow::Result<(std::path::PathBuf, tempfile::TempDir)> {
    let acl_dir = tempfile::tempdir()?;
    let acl = acl_dir.path().join("access.toml");
    std::fs::write(
        &acl,
        format!("[[out]]\nallow = [\"*\"]\ndeny = [\"{islander}\"]\n"),
    )?;
    Ok((acl, acl_dir))
}

/// A mule that never pushes to `islander`.
async fn mule_denying(islander: PeerId) -> anyhow::Result<(TestNode, tempfile::TempDir)> {
    let (acl, acl_dir) = acl_denying(islander)?;
    let mule = start(None, |c| c.acl_file = Some(acl)).await?;
    Ok((mule, acl_dir))
}

/// The mule's loopback address with its peer id.
fn address(node: &TestNode) -> anyhow::Result<libp2p::Multiaddr> {
    node.listen_addrs()
        .into_iter()
        .next()
        .context("the mule listens nowhere")
}

/// Shuts a node down cleanly: no pull left a store handle behind.
async fn stop(node: TestNode) -> anyhow::Result<()> {
    let TestNode { node, dir: _dir } = node;
    Ok(node.shutdown().await?)
}

async fn content(node: &TestNode, id: MessageId) -> anyhow::Result<Vec<u8>> {
    let (_, mut reader) = node.store().read(id).await?;
    let mut got = Vec::new();
    reader.read_to_end(&mut got)?;
    Ok(got)
}

/// What the mule carries: two messages for the islander (one large), one for everyone, one for
/// a stranger.
struct Cargo {
    small: MessageId,
    large: MessageId,
    large_content: Vec<u8>,
    broadcast: MessageId,
    other: MessageId,
}

async fn load(mule: &TestNode, islander: PeerId) -> anyhow::Result<Cargo> {
    let stranger = mule::identity::Identity::generate().peer_id();
    let large_content: Vec<u8> = (0..LARGE as u32).map(|i| (i * 13 % 251) as u8).collect();
    let file = mule.dir.path().join("large.bin");
    std::fs::write(&file, &large_content)?;
    let to_islander = islander.to_string();
    Ok(Cargo {
        small: mule
            .send(
                &to_islander,
                Content::Bytes(b"for the island".to_vec()),
                DAY,
            )
            .await?,
        large: mule.send(&to_islander, Content::File(file), DAY).await?,
        large_content,
        broadcast: mule
            .send("*", Content::Bytes(b"for everyone".to_vec()), DAY)
            .await?,
        other: mule
            .send(
                stranger.to_string(),
                Content::Bytes(b"for someone else".to_vec()),
                DAY,
            )
            .await?,
    })
}

#[tokio::test]
async fn an_islander_that_never_relays_pulls_its_messages_from_a_passing_mule() -> anyhow::Result<()>
{
    common::init_tracing();
    let islander = start(None, |c| c.relay = false).await?;
    let (mule, _acl) = mule_denying(islander.peer_id()).await?;
    let cargo = load(&mule, islander.peer_id()).await?;

    let from = islander.connect(address(&mule)?).await?;
    assert_eq!(from, mule.peer_id());
    let (progress, watcher) = watch::channel(PullProgress::default());
    let options = PullOptions {
        progress: Some(progress),
        ..PullOptions::default()
    };
    let report = islander.pull(from, options).await?;

    assert_eq!(report.listed, 4);
    assert_eq!(report.lacking, 4);
    assert_eq!(report.filtered, 0);
    assert_eq!(report.pulled, 3, "{report:?}");
    // The island does not relay: the stranger's message is refused like a push would be.
    assert_eq!(report.skipped, 1);
    assert_eq!(report.skips[0].id, cargo.other.to_string());
    assert!(
        report.skips[0].reason.contains("does not relay"),
        "{}",
        report.skips[0].reason
    );
    let bytes = (LARGE + "for the island".len() + "for everyone".len()) as u64;
    assert_eq!(report.bytes, bytes);
    let done = *watcher.borrow();
    assert_eq!(done.messages_done, 3);
    assert_eq!(done.bytes_done, bytes);
    assert_eq!(done.messages_total, 4);

    assert_eq!(content(&islander, cargo.small).await?, b"for the island");
    assert_eq!(content(&islander, cargo.large).await?, cargo.large_content);
    assert_eq!(content(&islander, cargo.broadcast).await?, b"for everyone");
    assert!(!islander.store().exists(cargo.other).await?);
    // The mule signed them: it adds no hop, and the header is the mule's, byte for byte.
    let held = islander.store().get(cargo.small).await?.context("lost")?;
    let original = mule.store().get(cargo.small).await?.context("lost")?;
    assert_eq!(held.header, original.header);

    // A second pass finds nothing new.
    let again = islander.pull(from, PullOptions::default()).await?;
    assert_eq!(again.listed, 4);
    assert_eq!(again.lacking, 1, "only the refused one: {again:?}");
    assert_eq!(again.pulled, 0);
    assert_eq!(again.bytes, 0);
    // The mule never pushed: every byte the islander received came through the pulls.
    assert_eq!(islander.counters().bytes_received, bytes);

    stop(mule).await?;
    stop(islander).await
}

#[tokio::test]
async fn for_me_and_since_filter_what_is_pulled() -> anyhow::Result<()> {
    common::init_tracing();
    let islander = start(None, |_| {}).await?;
    let (mule, _acl) = mule_denying(islander.peer_id()).await?;
    let cargo = load(&mule, islander.peer_id()).await?;
    let from = islander.connect(address(&mule)?).await?;

    // Nothing is that new yet.
    let future = PullOptions {
        since_ms: Some(mule::message::now_ms() + 3_600_000),
        ..PullOptions::default()
    };
    let none = islander.pull(from, future).await?;
    assert_eq!((none.pulled, none.skipped), (0, 0), "{none:?}");

    let mine = PullOptions {
        for_me: true,
        ..PullOptions::default()
    };
    let report = islander.pull(from, mine).await?;
    assert_eq!(report.lacking, 4);
    assert_eq!(report.filtered, 1);
    assert_eq!(report.pulled, 3);
    assert!(!islander.store().exists(cargo.other).await?);

    // This island relays: without the filter it takes the stranger's message too.
    let rest = islander.pull(from, PullOptions::default()).await?;
    assert_eq!((rest.lacking, rest.pulled), (1, 1), "{rest:?}");
    assert_eq!(content(&islander, cargo.other).await?, b"for someone else");
    assert!(islander.store().exists(cargo.large).await?);
    assert!(islander.store().exists(cargo.broadcast).await?);

    stop(mule).await?;
    stop(islander).await
}

#[tokio::test]
async fn a_pull_resumes_from_the_bytes_already_held() -> anyhow::Result<()> {
    common::init_tracing();
    let islander = start(None, |_| {}).await?;
    let (mule, _acl) = mule_denying(islander.peer_id()).await?;
    let cargo = load(&mule, islander.peer_id()).await?;
    let header = mule.store().get(cargo.large).await?.context("lost")?.header;

    // An earlier visit was cut short after the first part of the large message.
    let held = 1_500_000;
    let mut partial = islander.store().begin_write(header).await?;
    partial
        .append(0, cargo.large_content[..held].to_vec())
        .await?;
    drop(partial);

    let from = islander.connect(address(&mule)?).await?;
    let mine = PullOptions {
        for_me: true,
        ..PullOptions::default()
    };
    let report = islander.pull(from, mine).await?;
    assert_eq!(report.pulled, 3, "{report:?}");
    let small = ("for the island".len() + "for everyone".len()) as u64;
    assert_eq!(report.bytes, (LARGE - held) as u64 + small);
    assert_eq!(content(&islander, cargo.large).await?, cargo.large_content);

    stop(mule).await?;
    stop(islander).await
}

#[tokio::test]
async fn a_relayed_message_counts_the_mule_as_a_hop() -> anyhow::Result<()> {
    common::init_tracing();
    let islander = start(None, |_| {}).await?;
    let (mule, _acl) = mule_denying(islander.peer_id()).await?;
    // The sender finds the islander through the mule; it must not push there either.
    let (acl, _sender_acl) = acl_denying(islander.peer_id())?;
    let sender = start(Some(&mule), |c| c.acl_file = Some(acl)).await?;
    let mut mule_events = mule.subscribe();
    let id = sender
        .send(
            islander.peer_id().to_string(),
            Content::Bytes(b"via the mule".to_vec()),
            DAY,
        )
        .await?;
    common::wait_stored(&mule, &mut mule_events, id).await?;

    let from = islander.connect(address(&mule)?).await?;
    let report = islander.pull(from, PullOptions::default()).await?;
    assert_eq!(report.pulled, 1, "{report:?}");
    let held = islander.store().get(id).await?.context("not pulled")?;
    let hops: Vec<&[u8]> = held.header.hops.iter().map(|h| h.as_slice()).collect();
    assert_eq!(hops, vec![mule.peer_id().to_bytes().as_slice()]);

    stop(sender).await?;
    stop(mule).await?;
    stop(islander).await
}

/// `--pull-from`: an islander configured with the mule's peer id pulls on its own as soon as
/// the mule connects, though the mule never pushes to it.
#[tokio::test]
async fn an_islander_pulls_from_its_mule_when_it_connects() -> anyhow::Result<()> {
    common::init_tracing();
    let island_id = mule::identity::Identity::generate();
    let (mule, _acl) = mule_denying(island_id.peer_id()).await?;
    let cargo = load(&mule, island_id.peer_id()).await?;
    let pattern: mule::trust::Pattern = mule.peer_id().to_string().parse()?;
    let island = mule::testing::start_as(island_id, tempfile::tempdir()?, Some(&mule), |c| {
        c.relay = false;
        c.pull_from = vec![pattern];
    })
    .await?;
    let mut events = island.subscribe();
    for id in [cargo.small, cargo.large, cargo.broadcast] {
        common::wait_stored(&island, &mut events, id).await?;
    }
    assert_eq!(content(&island, cargo.large).await?, cargo.large_content);
    assert!(
        !island.store().exists(cargo.other).await?,
        "not for the island"
    );
    stop(island).await?;
    stop(mule).await
}
