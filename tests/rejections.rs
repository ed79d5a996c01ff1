//! Every wire error a receiver can give, produced by a crafted request and observed as the
//! right code on the sender's side (and counted on the receiver's).

mod common;

use common::{start, wait_selected, TestNode};
use libp2p::PeerId;
use mule::identity::Identity;
use mule::message::{now_ms, Draft, Header, MessageId};
use mule::protocol::{diff, push, repo, Code, Frame};
use serde_bytes::ByteBuf;

fn draft(recipient: &str) -> Draft {
    Draft {
        recipient: recipient.into(),
        created_ms: now_ms(),
        lifespan_ms: 3_600_000,
        chains: Vec::new(),
    }
}

fn sign(d: Draft, content: &[u8]) -> anyhow::Result<Header> {
    Ok(d.sign(&Identity::from_seed([42; 32]), content)?)
}

fn chunk(header: &Header, offset: u64, data: &[u8]) -> Frame<push::Request> {
    Frame::Ok(push::Request::Chunk {
        header: Box::new(header.clone()),
        offset,
        data: data.to_vec(),
    })
}

async fn push(
    from: &TestNode,
    to: PeerId,
    frame: Frame<push::Request>,
) -> anyhow::Result<push::Response> {
    Ok(from.net().push(to, frame).await?)
}

fn code(r: &push::Response) -> Option<Code> {
    match r {
        push::Response::Error(e) => Some(e.code.clone()),
        push::Response::Offset(_) | push::Response::Batch(_) => None,
    }
}

#[tokio::test]
async fn each_rejection_has_its_code() -> anyhow::Result<()> {
    common::init_tracing();
    let a = start(None, |_| {}).await?;
    let b = start(Some(&a), |c| {
        c.limits.max_length = 10 << 20;
        c.limits.max_hops = 3;
    })
    .await?;
    let c = start(Some(&a), |_| {}).await?;
    wait_selected(&a, 2).await?;
    wait_selected(&c, 1).await?;
    let bp = b.peer_id();

    // already-seen: the same whole message twice.
    let m = sign(draft("*"), b"once is enough")?;
    assert_eq!(
        push(&a, bp, chunk(&m, 0, b"once is enough")).await?,
        push::Response::Offset(14)
    );
    assert_eq!(
        code(&push(&a, bp, chunk(&m, 0, b"once is enough")).await?),
        Some(Code::AlreadySeen)
    );
    let r = a
        .net()
        .push(bp, Frame::Ok(push::Request::ResumeOffset { id: m.id }))
        .await?;
    assert_eq!(code(&r), Some(Code::AlreadySeen));

    // busy: A is mid-transfer of a large message; C offers the same one.
    let big = vec![5u8; 200_000];
    let mb = sign(draft("*"), &big)?;
    assert_eq!(
        push(&a, bp, chunk(&mb, 0, &big[..1000])).await?,
        push::Response::Offset(1000)
    );
    assert_eq!(
        code(&push(&c, bp, chunk(&mb, 0, &big[..1000])).await?),
        Some(Code::Busy)
    );

    // incorrect-offset: A goes back to offset 0.
    assert_eq!(
        code(&push(&a, bp, chunk(&mb, 0, &big[..1000])).await?),
        Some(Code::IncorrectOffset { have: 1000 })
    );
    // resume-offset reports what is held.
    let r = a
        .net()
        .push(bp, Frame::Ok(push::Request::ResumeOffset { id: mb.id }))
        .await?;
    assert_eq!(r, push::Response::Offset(1000));

    // content-mismatch: right length, wrong bytes.
    let mc = sign(draft("*"), b"the real thing")?;
    assert_eq!(
        code(&push(&a, bp, chunk(&mc, 0, b"a fake thing!!")).await?),
        Some(Code::ContentMismatch)
    );

    // expired.
    let old = sign(
        Draft {
            created_ms: now_ms() - 7_200_000,
            lifespan_ms: 3_600_000,
            ..draft("*")
        },
        b"old news",
    )?;
    assert_eq!(
        code(&push(&a, bp, chunk(&old, 0, b"old news")).await?),
        Some(Code::Expired)
    );

    // invalid-signature: a signed field changed after signing (and the id recomputed to match).
    let mut forged = sign(draft("*"), b"forged")?;
    forged.recipient = "someone-else".into();
    forged.id = forged.compute_id()?;
    assert_eq!(
        code(&push(&a, bp, chunk(&forged, 0, b"forged")).await?),
        Some(Code::InvalidSignature)
    );

    // too-big: over B's content limit, and a frame over the protocol limit.
    let tb = Draft {
        recipient: "*".into(),
        created_ms: now_ms(),
        lifespan_ms: 60_000,
        chains: vec![],
    }
    .sign_digest(&Identity::from_seed([42; 32]), 11 << 20, [0; 32])?;
    assert_eq!(
        code(&push(&a, bp, chunk(&tb, 0, b"x")).await?),
        Some(Code::TooBig)
    );
    let r = a
        .net()
        .push(
            bp,
            Frame::TooBig {
                limit: push::REQUEST_MAX,
            },
        )
        .await?;
    assert_eq!(code(&r), Some(Code::TooBig));

    // too-many-hops: B accepts at most 3.
    let mut hops = sign(draft("*"), b"well travelled")?;
    hops.hops = vec![ByteBuf::from(PeerId::random().to_bytes()); 4];
    assert_eq!(
        code(&push(&a, bp, chunk(&hops, 0, b"well travelled")).await?),
        Some(Code::TooManyHops)
    );

    // bad-request: garbage, and a diff over the id limit.
    let r = a
        .net()
        .push(bp, Frame::Malformed("this is not CBOR".into()))
        .await?;
    assert_eq!(code(&r), Some(Code::BadRequest));
    let ids = vec![MessageId([1; 32]); diff::MAX_IDS + 1];
    match a
        .net()
        .diff(bp, diff::Request { ids, claim: false })
        .await?
    {
        diff::Response::Error(e) => assert_eq!(e.code, Code::BadRequest),
        other => anyhow::bail!("expected bad-request, got {other:?}"),
    }

    // not-found: pulling what B does not hold.
    let r = a
        .net()
        .repo(
            bp,
            Frame::Ok(repo::Request::Pull {
                id: MessageId([3; 32]),
                offset: 0,
                length: 10,
            }),
        )
        .await?;
    assert!(
        matches!(r, repo::Response::Error(ref e) if e.code == Code::NotFound),
        "{r:?}"
    );

    // B counted what it refused.
    let rejections = b.counters().rejections;
    for name in [
        "busy",
        "incorrect-offset",
        "content-mismatch",
        "expired",
        "invalid-signature",
        "too-big",
        "too-many-hops",
        "bad-request",
        "not-found",
    ] {
        assert!(
            rejections.get(name).copied().unwrap_or(0) >= 1,
            "{name} not counted: {rejections:?}"
        );
    }
    assert!(b.counters().duplicates >= 2);
    Ok(())
}

#[tokio::test]
async fn no_route_and_rate_limit() -> anyhow::Result<()> {
    common::init_tracing();
    let x = start(None, |_| {}).await?;
    let d = start(Some(&x), |c| {
        c.relay = false;
        c.access.requests_per_second = 0.001;
        c.access.burst = 4;
    })
    .await?;
    wait_selected(&x, 1).await?;
    let dp = d.peer_id();
    // A collector that does not relay takes what is addressed to it and nothing else.
    let other = sign(draft("campfire/alice"), b"not for you")?;
    assert_eq!(
        code(&push(&x, dp, chunk(&other, 0, b"not for you")).await?),
        Some(Code::NoRoute)
    );
    let mine = sign(draft(&dp.to_string()), b"for the collector")?;
    assert_eq!(
        push(&x, dp, chunk(&mine, 0, b"for the collector")).await?,
        push::Response::Offset(17)
    );
    // Two more requests use up the burst of 4; the fifth is refused.
    for _ in 0..2 {
        let r = x
            .net()
            .diff(
                dp,
                diff::Request {
                    ids: vec![mine.id],
                    claim: false,
                },
            )
            .await?;
        assert_eq!(r, diff::Response::Has(vec![true]));
    }
    match x
        .net()
        .diff(
            dp,
            diff::Request {
                ids: vec![mine.id],
                claim: false,
            },
        )
        .await?
    {
        diff::Response::Error(e) => assert_eq!(e.code, Code::RateLimitExceeded),
        other => anyhow::bail!("expected rate-limit-exceeded, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn blocked_peer_is_not_authorized() -> anyhow::Result<()> {
    common::init_tracing();
    let y = start(None, |_| {}).await?;
    let yp = y.peer_id();
    let f = start(Some(&y), move |c| {
        c.access.blocked.insert(yp);
    })
    .await?;
    wait_selected(&y, 1).await?;
    let m = sign(draft("*"), b"let me in")?;
    assert_eq!(
        code(&push(&y, f.peer_id(), chunk(&m, 0, b"let me in")).await?),
        Some(Code::NotAuthorized)
    );
    Ok(())
}

/// A batch is judged message by message: one answer each, in order.
#[tokio::test]
async fn batch_answers_each_message() -> anyhow::Result<()> {
    common::init_tracing();
    let a = start(None, |_| {}).await?;
    let b = start(Some(&a), |_| {}).await?;
    wait_selected(&a, 1).await?;
    let bp = b.peer_id();
    let good = sign(draft("*"), b"first")?;
    let seen = sign(draft("*"), b"second")?;
    assert_eq!(
        push(&a, bp, chunk(&seen, 0, b"second")).await?,
        push::Response::Offset(6)
    );
    let mut forged = sign(draft("*"), b"third")?;
    forged.sha256 = [0; 32];
    let short = sign(draft("*"), b"fourth")?;
    let whole = |h: &Header, d: &[u8]| push::Whole {
        header: h.clone(),
        data: d.to_vec(),
    };
    let batch = vec![
        whole(&good, b"first"),
        whole(&seen, b"second"),
        whole(&forged, b"third"),
        whole(&short, b"four"),
    ];
    let r = a
        .net()
        .push(bp, Frame::Ok(push::Request::Batch(batch)))
        .await?;
    let push::Response::Batch(items) = r else {
        anyhow::bail!("expected a batch answer, got {r:?}");
    };
    let codes: Vec<Option<Code>> = items.into_iter().map(|i| i.map(|e| e.code)).collect();
    assert_eq!(
        codes,
        vec![
            None,
            Some(Code::AlreadySeen),
            Some(Code::InvalidSignature),
            Some(Code::BadRequest)
        ]
    );
    assert!(b.store().exists(good.id).await?);
    assert!(!b.store().exists(forged.id).await?);
    Ok(())
}

/// A chunk refused for its bounds (past the end, or empty before the end) must not open a
/// transfer: otherwise its sender would own the message and everyone else would get `busy`.
#[tokio::test]
async fn refused_chunks_open_no_transfer() -> anyhow::Result<()> {
    common::init_tracing();
    let a = start(None, |_| {}).await?;
    let b = start(Some(&a), |_| {}).await?;
    let c = start(Some(&a), |_| {}).await?;
    wait_selected(&a, 2).await?;
    wait_selected(&c, 1).await?;
    let bp = b.peer_id();
    let big = vec![9u8; 200_000];
    let m = sign(draft("*"), &big)?;

    let past_end = push(&a, bp, chunk(&m, 199_999, &[1, 2])).await?;
    assert_eq!(code(&past_end), Some(Code::BadRequest), "{past_end:?}");
    let empty_early = push(&a, bp, chunk(&m, 0, &[])).await?;
    assert_eq!(
        code(&empty_early),
        Some(Code::BadRequest),
        "{empty_early:?}"
    );

    // C is not told `busy`: no slot is owned by A.
    assert_eq!(
        push(&c, bp, chunk(&m, 0, &big[..100_000])).await?,
        push::Response::Offset(100_000)
    );
    assert_eq!(
        push(&c, bp, chunk(&m, 100_000, &big[100_000..])).await?,
        push::Response::Offset(200_000)
    );
    assert!(b.store().exists(m.id).await?);
    Ok(())
}

/// One peer cannot hold every transfer slot: beyond its share, its new transfers are answered
/// `busy` while another peer still opens one.
#[tokio::test]
async fn open_transfers_are_capped_per_peer() -> anyhow::Result<()> {
    common::init_tracing();
    let a = start(None, |_| {}).await?;
    let b = start(Some(&a), |_| {}).await?;
    let c = start(Some(&a), |_| {}).await?;
    wait_selected(&a, 2).await?;
    wait_selected(&c, 1).await?;
    let bp = b.peer_id();
    let big = vec![3u8; 200_000];
    let mut last = None;
    for i in 0..17u8 {
        let mut content = big.clone();
        content[0] = i;
        let m = sign(draft("*"), &content)?;
        last = Some(push(&a, bp, chunk(&m, 0, &content[..1000])).await?);
        if i < 16 {
            assert_eq!(last, Some(push::Response::Offset(1000)), "transfer {i}");
        }
    }
    let refused = last.ok_or_else(|| anyhow::anyhow!("no answer"))?;
    assert_eq!(code(&refused), Some(Code::Busy), "{refused:?}");
    let other = sign(draft("*"), &big)?;
    assert_eq!(
        push(&c, bp, chunk(&other, 0, &big[..1000])).await?,
        push::Response::Offset(1000)
    );
    Ok(())
}

#[tokio::test]
async fn a_diff_claims_lacking_ids_for_the_first_asker() -> anyhow::Result<()> {
    common::init_tracing();
    let c = start(None, |_| {}).await?;
    let a = start(Some(&c), |_| {}).await?;
    let x = start(Some(&c), |_| {}).await?;
    wait_selected(&a, 1).await?;
    wait_selected(&x, 1).await?;
    let cp = c.peer_id();
    let m = sign(draft("*"), b"news travels fast")?;
    let ask = |from: &TestNode, claim: bool| {
        let net = from.net().clone();
        let ids = vec![m.id];
        async move { net.diff(cp, diff::Request { ids, claim }).await }
    };
    use diff::{Response, State};
    // A asks first and is told to push; X, asking meanwhile, is told to hold back.
    assert_eq!(ask(&a, true).await?, Response::States(vec![State::Lacks]));
    assert_eq!(ask(&x, true).await?, Response::States(vec![State::Claimed]));
    // The claimer keeps its claim; an old-style question still gets the plain answer.
    assert_eq!(ask(&a, true).await?, Response::States(vec![State::Lacks]));
    assert_eq!(ask(&x, false).await?, Response::Has(vec![false]));
    // Once A pushed it, everyone hears it is held.
    assert_eq!(
        push(&a, cp, chunk(&m, 0, b"news travels fast")).await?,
        push::Response::Offset(17)
    );
    assert_eq!(ask(&x, true).await?, Response::States(vec![State::Has]));
    Ok(())
}
