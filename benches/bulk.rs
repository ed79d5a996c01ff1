//! `bulk`: one large message A → B on loopback, against a raw libp2p stream carrying the same
//! bytes over the same transport between two bare swarms in this process.
//!
//! - `MULE_BENCH_BULK_BYTES` (default 1 GiB; suffixes k/M/G): message size.
//! - `MULE_BENCH_BULK_QUIC` (default 1): also run the QUIC variant.
//! - `MULE_BENCH_BULK_RUNS` (default 3): runs per transport, baseline and mule alternating;
//!   the medians are reported.
//!
//! Results: ingest time at A (the `send` call: copy into A's store, hashed on the way; against a
//! plain copy of the file), transfer time
//! (`send` returned → B's `Stored`), transfer MB/s and its ratio to the raw stream (goal ≥ 0.8),
//! and the process's peak RSS so far (both nodes share it: an upper bound for either; goal
//! < 64 MiB during a 1 GiB transfer).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use common::{Goal, Record};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, StreamProtocol, Swarm};
use mule::node::Content;

const BENCH: &str = "bulk";
const RAW_PROTOCOL: StreamProtocol = StreamProtocol::new("/mule-bench/raw/1");
/// Write size of the raw baseline.
const RAW_BUF: usize = 256 * 1024;

#[derive(Clone, Copy, Debug)]
enum Transport {
    Tcp,
    Quic,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Quic => "quic",
        }
    }

    fn listen(self) -> Multiaddr {
        use libp2p::multiaddr::Protocol;
        let base = Multiaddr::empty().with(Protocol::Ip4(std::net::Ipv4Addr::LOCALHOST));
        match self {
            Transport::Tcp => base.with(Protocol::Tcp(0)),
            Transport::Quic => base.with(Protocol::Udp(0)).with(Protocol::QuicV1),
        }
    }

    fn stack(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp+noise+yamux",
            Transport::Quic => "quic-v1",
        }
    }
}

fn main() -> anyhow::Result<()> {
    common::init_tracing();
    let bytes = common::env_u64("MULE_BENCH_BULK_BYTES", 1 << 30);
    let quic = common::env_bool("MULE_BENCH_BULK_QUIC", true);
    let runs = common::env_u64("MULE_BENCH_BULK_RUNS", 3).max(1) as usize;
    let rt = common::runtime()?;
    rt.block_on(async move {
        let tmp = tempfile::tempdir().context("tempdir")?;
        let file = tmp.path().join("payload.bin");
        let t = Instant::now();
        common::write_random_file(&file, bytes, 0x6d75_6c65)?;
        progress!(
            "wrote {} MiB payload in {:.2} s",
            bytes >> 20,
            t.elapsed().as_secs_f64()
        );
        let mut transports = vec![Transport::Tcp];
        if quic {
            transports.push(Transport::Quic);
        }
        let host = host_ceilings(bytes, &file, tmp.path())?;
        progress!(
            "host: write+fsync {:.0} MB/s, copy+fsync {:.2} s, sha256 {:.0} MB/s",
            host.disk_mbs,
            host.copy_s,
            host.sha_mbs
        );
        for transport in transports {
            run(transport, bytes, runs, &file, tmp.path(), &host).await?;
        }
        Ok(())
    })
}

/// What this machine can do without mule: for reading the results.
struct Host {
    /// Writing the payload to a new file and fsyncing it.
    disk_mbs: f64,
    /// sha256 in memory.
    sha_mbs: f64,
    /// Seconds to copy the payload file into a new file (read, write, fsync): the floor for an
    /// ingest, which also hashes, signs and commits.
    copy_s: f64,
}

fn host_ceilings(bytes: u64, payload: &Path, tmp: &Path) -> anyhow::Result<Host> {
    use sha2::Digest;
    use std::io::{Read, Write};
    let mut buf = vec![0u8; RAW_BUF];
    let copy = tmp.join("copy-ceiling.bin");
    let t = Instant::now();
    let (mut from, mut to) = (std::fs::File::open(payload)?, std::fs::File::create(&copy)?);
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        to.write_all(&buf[..n])?;
    }
    to.sync_all()?;
    let copy_s = t.elapsed().as_secs_f64();
    drop(to);
    std::fs::remove_file(&copy)?;
    let buf = common::random_bytes(RAW_BUF, 3);
    let path = tmp.join("disk-ceiling.bin");
    let t = Instant::now();
    let mut f = std::fs::File::create(&path)?;
    let mut left = bytes;
    while left > 0 {
        let n = left.min(RAW_BUF as u64) as usize;
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.sync_all()?;
    let disk = t.elapsed();
    drop(f);
    std::fs::remove_file(&path)?;
    let hashed = bytes.min(256 << 20);
    let t = Instant::now();
    let mut h = sha2::Sha256::new();
    let mut left = hashed;
    while left > 0 {
        let n = left.min(RAW_BUF as u64) as usize;
        h.update(&buf[..n]);
        left -= n as u64;
    }
    std::hint::black_box(h.finalize());
    Ok(Host {
        disk_mbs: (common::mb_per_s(bytes, disk) * 10.0).round() / 10.0,
        sha_mbs: (common::mb_per_s(hashed, t.elapsed()) * 10.0).round() / 10.0,
        copy_s,
    })
}

async fn run(
    transport: Transport,
    bytes: u64,
    runs: usize,
    file: &Path,
    tmp: &Path,
    host: &Host,
) -> anyhow::Result<()> {
    let t = transport.name();
    // Baseline and mule alternate, so that load from elsewhere hits both alike.
    let mut raws = Vec::with_capacity(runs);
    let mut mules = Vec::with_capacity(runs);
    for run in 0..runs {
        progress!(
            "{t} run {}/{runs}: raw libp2p-stream, {} MiB",
            run + 1,
            bytes >> 20
        );
        let raw = raw_stream(transport, bytes)
            .await
            .with_context(|| format!("raw {t} baseline"))?;
        progress!(
            "  {:.1} MB/s ({:.2} s)",
            common::mb_per_s(bytes, raw),
            raw.as_secs_f64()
        );
        progress!("{t} run {}/{runs}: mule A -> B", run + 1);
        let m = mule_transfer(transport, bytes, file, tmp)
            .await
            .with_context(|| format!("mule {t} transfer"))?;
        progress!(
            "  ingest {:.2} s, transfer {:.2} s = {:.1} MB/s",
            m.ingest.as_secs_f64(),
            m.transfer.as_secs_f64(),
            common::mb_per_s(bytes, m.transfer),
        );
        raws.push(raw);
        mules.push(m);
    }
    // Medians: the run whose transfer time is the median, and the median raw time.
    raws.sort();
    let raw = raws[raws.len() / 2];
    let raw_mbs = common::mb_per_s(bytes, raw);
    let all_mbs: Vec<f64> = mules
        .iter()
        .map(|m| (common::mb_per_s(bytes, m.transfer) * 10.0).round() / 10.0)
        .collect();
    let all_raw: Vec<f64> = raws
        .iter()
        .map(|r| (common::mb_per_s(bytes, *r) * 10.0).round() / 10.0)
        .collect();
    mules.sort_by_key(|m| m.transfer);
    let m = &mules[mules.len() / 2];
    let mut ingests: Vec<Duration> = mules.iter().map(|m| m.ingest).collect();
    ingests.sort();
    let ingest = ingests[ingests.len() / 2];
    let mbs = common::mb_per_s(bytes, m.transfer);
    progress!(
        "{t} median: ingest {:.2} s, transfer {:.2} s = {:.1} MB/s vs raw {:.1} MB/s (ratio {:.2})",
        ingest.as_secs_f64(),
        m.transfer.as_secs_f64(),
        mbs,
        raw_mbs,
        mbs / raw_mbs
    );

    let since = |a: Option<Instant>, b: Option<Instant>| match (a, b) {
        (Some(a), Some(b)) => Some((b - a).as_secs_f64()),
        _ => None,
    };
    let ctx = |r: Record| {
        r.ctx("transport", t)
            .ctx("bytes", bytes)
            .ctx("runs", runs as u64)
            .ctx("chunk_size", m.chunk_size)
            .ctx("push_window", m.push_window)
    };
    ctx(Record::new(
        BENCH,
        &format!("{t}_transfer_throughput"),
        mbs,
        "MB/s",
    ))
    .baseline(
        raw_mbs,
        &format!(
            "raw libp2p-stream, one {} stream, {} KiB writes (median)",
            transport.stack(),
            RAW_BUF >> 10
        ),
    )
    .goal(Goal::RatioAtLeast(0.8))
    .ctx("what", "median run: `send` returned at A -> `Stored` at B")
    .ctx("all_mb_s", all_mbs)
    .ctx("all_baseline_mb_s", all_raw)
    .ctx("transfer_s", m.transfer.as_secs_f64())
    .ctx("baseline_s", raw.as_secs_f64())
    .ctx(
        "until_first_chunk_s",
        since(Some(m.sent), m.arrival.first_chunk),
    )
    .ctx(
        "chunks_s",
        since(m.arrival.first_chunk, m.arrival.last_chunk),
    )
    .ctx(
        "finish_s",
        since(m.arrival.last_chunk, Some(m.arrival.stored)),
    )
    .ctx(
        "process_hwm_mib",
        // Both nodes and the raw baselines share this process: an upper bound for either node.
        common::self_status_mib("VmHWM:"),
    )
    .ctx("disk_write_fsync_mb_s", host.disk_mbs)
    .ctx("sha256_mb_s", host.sha_mbs)
    .emit();
    let ingest_mbs = common::mb_per_s(bytes, ingest);
    ctx(Record::new(
        BENCH,
        &format!("{t}_ingest_time"),
        ingest.as_secs_f64(),
        "s",
    ))
    .ctx("ingest_mb_per_s", (ingest_mbs * 10.0).round() / 10.0)
    .baseline(
        host.copy_s,
        "copying the file into a new file + fsync, same file system",
    )
    .ctx(
        "what",
        "median node.send(Content::File): copy into A's store hashing on the way + fsync + commit",
    )
    .emit();
    let total = ingest + m.transfer;
    ctx(Record::new(
        BENCH,
        &format!("{t}_end_to_end_throughput"),
        common::mb_per_s(bytes, total),
        "MB/s",
    ))
    .baseline(raw_mbs, "raw libp2p-stream (transfer only)")
    .ctx("what", "median ingest + median-run transfer")
    .ctx("end_to_end_s", total.as_secs_f64())
    .emit();
    Ok(())
}

struct MuleTransfer {
    sent: Instant,
    arrival: common::Arrival,
    ingest: Duration,
    transfer: Duration,
    chunk_size: usize,
    push_window: usize,
}

async fn mule_transfer(
    transport: Transport,
    bytes: u64,
    file: &Path,
    tmp: &Path,
) -> anyhow::Result<MuleTransfer> {
    let dirs = tempfile::tempdir_in(tmp)?;
    let mut config_a = common::pair_config(&dirs.path().join("a"));
    config_a.net.listen = vec![transport.listen()];
    let chunk_size = config_a.chunk_size;
    let push_window = config_a.push_window;
    let (a, addrs) = common::start_node(config_a).await?;
    let mut config_b = common::pair_config(&dirs.path().join("b"));
    config_b.net.listen = vec![transport.listen()];
    config_b.net.bootstrap = addrs;
    let (b, _) = common::start_node(config_b).await?;
    common::wait_selected(&[a.clone(), b.clone()], &[1, 1], Duration::from_secs(30)).await?;

    let mut events = b.subscribe();
    let t0 = Instant::now();
    let id = a
        .send(
            b.peer_id().to_string(),
            Content::File(file.to_path_buf()),
            Duration::from_secs(3600),
        )
        .await?;
    let t1 = Instant::now();
    progress!("  A stored the message in {:.2} s", (t1 - t0).as_secs_f64());
    let arrival = common::wait_stored(&b, &mut events, id, bytes, common::timeout()).await?;
    let stored = b.store().get(id).await?.context("B has no record")?;
    if stored.header.length != bytes {
        bail!("B stored {} bytes, expected {bytes}", stored.header.length);
    }
    common::shutdown_all(vec![a, b]).await;
    Ok(MuleTransfer {
        sent: t1,
        arrival,
        ingest: t1 - t0,
        transfer: arrival.stored - t1,
        chunk_size,
        push_window,
    })
}

fn bare_swarm(transport: Transport) -> anyhow::Result<Swarm<libp2p_stream::Behaviour>> {
    let builder = libp2p::SwarmBuilder::with_new_identity().with_tokio();
    let swarm = match transport {
        Transport::Tcp => builder
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )?
            .with_behaviour(|_| libp2p_stream::Behaviour::new())?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build(),
        Transport::Quic => builder
            .with_quic()
            .with_behaviour(|_| libp2p_stream::Behaviour::new())?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build(),
    };
    Ok(swarm)
}

/// Two bare swarms, one connection, one stream: write `bytes` in 256 KiB buffers, read to EOF.
/// Timed from opening the stream (connection already up) to the reader's EOF.
async fn raw_stream(transport: Transport, bytes: u64) -> anyhow::Result<Duration> {
    let mut listener = bare_swarm(transport)?;
    let mut dialer = bare_swarm(transport)?;
    let listener_id = *listener.local_peer_id();
    listener.listen_on(transport.listen())?;
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = listener.select_next_some().await {
            break address;
        }
    };
    let mut incoming = listener
        .behaviour()
        .new_control()
        .accept(RAW_PROTOCOL)
        .map_err(|_| anyhow::anyhow!("protocol already registered"))?;
    let listener_task = tokio::spawn(async move {
        loop {
            listener.select_next_some().await;
        }
    });
    let reader = tokio::spawn(async move {
        let (_, mut stream) = incoming.next().await.context("no inbound stream")?;
        let mut buf = vec![0u8; RAW_BUF];
        let mut got = 0u64;
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            got += n as u64;
        }
        anyhow::Ok((got, Instant::now()))
    });

    dialer.dial(addr.with(libp2p::multiaddr::Protocol::P2p(listener_id)))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, dialer.select_next_some()).await {
            Err(_) => bail!("raw swarms did not connect within 10 s"),
            Ok(SwarmEvent::ConnectionEstablished { .. }) => break,
            Ok(SwarmEvent::OutgoingConnectionError { error, .. }) => bail!("dial: {error}"),
            Ok(_) => {}
        }
    }
    let mut control = dialer.behaviour().new_control();
    let dialer_task = tokio::spawn(async move {
        loop {
            dialer.select_next_some().await;
        }
    });

    let t0 = Instant::now();
    let mut stream = control
        .open_stream(listener_id, RAW_PROTOCOL)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let buf = common::random_bytes(RAW_BUF, 7);
    let mut left = bytes;
    while left > 0 {
        let n = left.min(RAW_BUF as u64) as usize;
        stream.write_all(&buf[..n]).await?;
        left -= n as u64;
    }
    stream.close().await?;
    let (got, end) = tokio::time::timeout(common::timeout(), reader)
        .await
        .context("raw reader timed out")???;
    listener_task.abort();
    dialer_task.abort();
    if got != bytes {
        bail!("raw stream carried {got} bytes, expected {bytes}");
    }
    Ok(end - t0)
}
