//! `/mule/push/2` (one stream per large message) between real nodes in one process, and its
//! coexistence with `/mule/push/1`.

mod common;

use std::time::Duration;

use common::{start, wait_selected, wait_stored, TestNode, DEADLINE};
use futures::{AsyncReadExt, AsyncWriteExt};
use mule::identity::Identity;
use mule::message::{now_ms, Draft, Header};
use mule::node::Content;
use mule::protocol::{push, push2, Code, WireError};

/// Big enough to span several stream buffers and chunks.
const SIZE: usize = 3 * 1024 * 1024 + 12_345;

fn content() -> Vec<u8> {
    (0..SIZE as u32).map(|i| (i % 251) as u8).collect()
}

fn signed(content: &[u8]) -> anyhow::Result<Header> {
    Ok(Draft {
        recipient: "*".into(),
        created_ms: now_ms(),
        lifespan_ms: 3_600_000,
        chains: vec![],
    }
    .sign(&Identity::from_seed([23; 32]), content)?)
}

/// Sends `SIZE` bytes from a node with `a_push2` to one with `b_push2` and checks B stores them.
async fn crosses(a_push2: bool, b_push2: bool) -> anyhow::Result<()> {
    common::init_tracing();
    let a = start(None, |c| c.push2 = a_push2).await?;
    let b = start(Some(&a), |c| c.push2 = b_push2).await?;
    wait_selected(&a, 1).await?;
    let mut events = b.subscribe();
    let data = content();
    let id = a
        .send("*", Content::Bytes(data.clone()), Duration::from_secs(600))
        .await?;
    wait_stored(&b, &mut events, id).await?;
    assert_eq!(b.store().read_range(id, 0, SIZE as u64).await?, data);
    Ok(())
}

#[tokio::test]
async fn a_large_message_crosses_on_one_stream() -> anyhow::Result<()> {
    crosses(true, true).await
}

/// A receiver without `/mule/push/2` (an older node) still gets the message, in chunks.
#[tokio::test]
async fn an_old_receiver_gets_chunks() -> anyhow::Result<()> {
    crosses(true, false).await
}

/// A sender without `/mule/push/2` is still served over `/mule/push/1`.
#[tokio::test]
async fn an_old_sender_is_served() -> anyhow::Result<()> {
    crosses(false, true).await
}

/// Opens a stream from A to B and sends the `open` frame; returns the stream and B's answer.
async fn open(
    a: &mule::node::Node,
    b: &mule::node::Node,
    header: &Header,
) -> anyhow::Result<(libp2p::Stream, push::Response)> {
    let mut stream = a.net().open_push2(b.peer_id()).await?;
    let open = push2::Open {
        header: header.clone(),
    };
    push2::write_frame(&mut stream, &open).await?;
    let answer = tokio::time::timeout(
        DEADLINE,
        push2::read_frame(&mut stream, push2::RESPONSE_MAX),
    )
    .await??;
    Ok((stream, answer))
}

/// A stream cut halfway leaves its bytes at the receiver; the next stream starts there.
#[tokio::test]
async fn an_interrupted_stream_resumes_where_it_stopped() -> anyhow::Result<()> {
    common::init_tracing();
    let a = start(None, |_| {}).await?;
    let b = start(Some(&a), |_| {}).await?;
    wait_selected(&a, 1).await?;
    let data = content();
    let header = signed(&data)?;
    let half = SIZE / 2;

    let (mut stream, answer) = open(&a, &b, &header).await?;
    assert_eq!(answer, push::Response::Offset(0));
    stream.write_all(&data[..half]).await?;
    stream.flush().await?;
    // Cut it: the receiver keeps what it read.
    drop(stream);

    // The second stream waits for the first one's end at the receiver, then learns the offset.
    let (mut stream, answer) = open(&a, &b, &header).await?;
    let push::Response::Offset(held) = answer else {
        anyhow::bail!("resume answered {answer:?}");
    };
    let held = usize::try_from(held)?;
    assert!(held > 0 && held <= half, "held {held} of the {half} sent");
    let mut events = b.subscribe();
    stream.write_all(&data[held..]).await?;
    stream.flush().await?;
    let last: push::Response = tokio::time::timeout(
        DEADLINE,
        push2::read_frame(&mut stream, push2::RESPONSE_MAX),
    )
    .await??;
    assert_eq!(last, push::Response::Offset(SIZE as u64));
    wait_stored(&b, &mut events, header.id).await?;
    assert_eq!(b.store().read_range(header.id, 0, SIZE as u64).await?, data);
    // A third push of the stored message is a duplicate.
    let (_, answer) = open(&a, &b, &header).await?;
    let push::Response::Error(e) = answer else {
        anyhow::bail!("a stored message answered {answer:?}");
    };
    assert_eq!(e.code, Code::AlreadySeen);
    Ok(())
}

/// An `open` frame announcing more than the limit is refused before its bytes are read, with a
/// reason; bytes that are not a frame are `bad-request`.
#[tokio::test]
async fn bad_open_frames_are_refused_with_a_reason() -> anyhow::Result<()> {
    common::init_tracing();
    let a = start(None, |_| {}).await?;
    let b = start(Some(&a), |_| {}).await?;
    wait_selected(&a, 1).await?;

    let prefix = unsigned_varint_prefix(push2::OPEN_MAX as u64 + 1);
    let (e, _) = refusal(&a, &b, &prefix).await?;
    assert_eq!(e.code, Code::TooBig);
    assert_eq!(
        e.message,
        format!(
            "bad open frame: frame of {} bytes is over the limit of {} bytes",
            push2::OPEN_MAX + 1,
            push2::OPEN_MAX
        )
    );

    let (e, mut stream) = refusal(&a, &b, &[3, 0xff, 0xff, 0xff]).await?;
    assert_eq!(e.code, Code::BadRequest);
    // Nothing more comes: the receiver closed the stream.
    let mut rest = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut rest)).await??;
    assert!(rest.is_empty());
    Ok(())
}

/// A node that does not speak `/mule/push/2` is told apart from a failure.
#[tokio::test]
async fn an_old_node_reports_the_protocol_unsupported() -> anyhow::Result<()> {
    common::init_tracing();
    let a = start(None, |_| {}).await?;
    let b = start(Some(&a), |c| c.push2 = false).await?;
    wait_selected(&a, 1).await?;
    let r = a.net().open_push2(b.peer_id()).await;
    assert!(
        matches!(r, Err(mule::net::RequestError::UnsupportedProtocols)),
        "{r:?}"
    );
    Ok(())
}

/// Opens a `/mule/push/2` stream from `a` to `b`, writes `bytes` and reads the answer, which
/// must be an error; returns it with the stream.
async fn refusal(
    a: &TestNode,
    b: &TestNode,
    bytes: &[u8],
) -> anyhow::Result<(WireError, libp2p::Stream)> {
    let mut stream = a.net().open_push2(b.peer_id()).await?;
    stream.write_all(bytes).await?;
    stream.flush().await?;
    let answer: push::Response = tokio::time::timeout(
        DEADLINE,
        push2::read_frame(&mut stream, push2::RESPONSE_MAX),
    )
    .await??;
    match answer {
        push::Response::Error(e) => Ok((e, stream)),
        other => anyhow::bail!("{bytes:02x?} answered {other:?}"),
    }
}

fn unsigned_varint_prefix(n: u64) -> Vec<u8> {
    let mut buf = unsigned_varint::encode::u64_buffer();
    unsigned_varint::encode::u64(n, &mut buf).to_vec()
}
