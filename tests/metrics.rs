//! The `--metrics` endpoint of real nodes, scraped over 127.0.0.1 with a plain TCP client: a
//! delivered message and a refused request show up in the receiver's counters, libp2p's own
//! metrics are there, and anything but `/metrics` is 404.

mod common;

use std::time::Duration;

use anyhow::Context;
use common::{start, wait_selected, wait_stored, DEADLINE};
use mule::message::MessageId;
use mule::metrics::Server;
use mule::node::Content;
use mule::protocol::{repo, Code, Frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `request` as is and returns the status code and the body.
async fn http(server: &Server, request: &str) -> anyhow::Result<(u16, String)> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(server.local_addr()).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        anyhow::Ok(answer)
    };
    let answer = tokio::time::timeout(DEADLINE, exchange)
        .await
        .context("no answer from the metrics endpoint")??;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .with_context(|| format!("no blank line after the head: {answer:?}"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status in {head:?}"))?;
    if status == 200 {
        anyhow::ensure!(
            head.contains("Content-Type: application/openmetrics-text"),
            "{head}"
        );
    }
    Ok((status, body.to_owned()))
}

async fn scrape(server: &Server) -> anyhow::Result<String> {
    let (status, body) = http(server, "GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n").await?;
    anyhow::ensure!(status == 200, "scrape answered {status}: {body}");
    Ok(body)
}

/// The value of the sample named exactly `series` (name and labels as encoded).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .find_map(|v| v.parse().ok())
}

#[tokio::test]
async fn counters_rejections_and_libp2p_metrics_are_scraped() -> anyhow::Result<()> {
    common::init_tracing();
    let a = start(None, |_| {}).await?;
    let b = start(Some(&a), |c| c.metrics = true).await?;
    let registry = b.metrics().context("metrics were asked for")?;
    let server = Server::start("127.0.0.1:0".parse()?, registry).await?;
    assert_ne!(server.local_addr().port(), 0);
    wait_selected(&a, 1).await?;

    let before = scrape(&server).await?;
    assert_eq!(sample(&before, "mule_messages_received_total"), Some(0.0));
    assert!(before.contains("# HELP mule_rejections Requests this node refused"));

    let mut events = b.subscribe();
    let id = a
        .send(
            "*",
            Content::Bytes(b"counted".to_vec()),
            Duration::from_secs(3600),
        )
        .await?;
    wait_stored(&b, &mut events, id).await?;

    // not-found: A pulls from B a message B does not hold.
    let r = a
        .net()
        .repo(
            b.peer_id(),
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

    let after = scrape(&server).await?;
    assert_eq!(sample(&after, "mule_messages_received_total"), Some(1.0));
    assert_eq!(sample(&after, "mule_bytes_received_total"), Some(7.0));
    assert_eq!(
        sample(&after, "mule_rejections_total{reason=\"not-found\"}"),
        Some(1.0)
    );
    assert_eq!(sample(&after, "mule_store_messages"), Some(1.0));
    assert_eq!(sample(&after, "mule_store_bytes"), Some(7.0));
    assert!(sample(&after, "mule_store_quota_bytes").is_some_and(|q| q >= 7.0));
    assert!(sample(&after, "mule_peers_connected").is_some_and(|n| n >= 1.0));
    let info = format!("mule_node_info{{peer_id=\"{}\"", b.peer_id());
    assert!(after.contains(&info), "{after}");
    for libp2p in [
        "libp2p_swarm_connections_established_total",
        "libp2p_bandwidth_bytes_total{",
    ] {
        assert!(after.contains(libp2p), "{libp2p} missing: {after}");
    }
    assert!(after.trim_end().ends_with("# EOF"));

    // The sender counts what it handed over.
    assert_eq!(a.counters().messages_sent, 1);

    server.stop().await;
    for n in [a, b] {
        n.node.shutdown().await?;
    }
    Ok(())
}

#[tokio::test]
async fn only_get_metrics_is_served() -> anyhow::Result<()> {
    common::init_tracing();
    let a = start(None, |c| c.metrics = true).await?;
    let server = Server::start("127.0.0.1:0".parse()?, a.metrics().context("no metrics")?).await?;

    assert_eq!(http(&server, "GET / HTTP/1.1\r\n\r\n").await?.0, 404);
    assert_eq!(
        http(&server, "GET /metricsx HTTP/1.1\r\n\r\n").await?.0,
        404
    );
    assert_eq!(
        http(&server, "POST /metrics HTTP/1.1\r\n\r\n").await?.0,
        405
    );
    assert_eq!(http(&server, "hello\r\n\r\n").await?.0, 400);
    let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(9000));
    assert_eq!(http(&server, &huge).await?.0, 431);
    let (status, body) = http(&server, "HEAD /metrics HTTP/1.1\r\n\r\n").await?;
    assert_eq!((status, body.as_str()), (200, ""));
    // Still serving after all that.
    scrape(&server).await?;

    // A node started without metrics has no registry; a taken port is a clear error.
    let b = start(None, |_| {}).await?;
    assert!(b.metrics().is_none());
    let taken = server.local_addr();
    let err = Server::start(taken, a.metrics().context("no metrics")?)
        .await
        .err()
        .context("a second server bound the same port")?;
    assert!(
        err.to_string()
            .starts_with(&format!("cannot serve metrics on {taken}: ")),
        "{err}"
    );

    server.stop().await;
    for n in [a, b] {
        n.node.shutdown().await?;
    }
    Ok(())
}
