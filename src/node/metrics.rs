//! The node's Prometheus registry (`mule node --metrics`), built from the same live state that
//! `mule status` reports, so nothing is counted twice.
//!
//! What the node's tasks already keep in memory (traffic counters, refusals by reason, sync
//! queues, transfers in flight) is read at scrape time by a [`Collector`], under the same short
//! std locks `mule status` takes and never across an await. What lives in another task (the
//! Swarm task's peers and queues, the store's message count) is asked for by [`Metrics::encode`]
//! before it encodes, each answer bounded by [`REFRESH_TIMEOUT`], and kept in gauges: a busy
//! Swarm task delays a scrape, never the other way round. libp2p's own metrics (connections,
//! identify, Kademlia, ping, bytes by transport) share the registry under `libp2p_`.
//!
//! Names start with `mule_`; counters are encoded with the `_total` suffix (OpenMetrics text).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::ctx::Ctx;
use super::transfers::Direction;

/// How long a scrape waits for the Swarm task or the store before it reports the last values.
pub const REFRESH_TIMEOUT: Duration = Duration::from_secs(5);

/// The content type of [`Metrics::encode`]'s output (OpenMetrics text, as prometheus-client
/// writes it; Prometheus asks for it first).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Why a scrape could not be encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A metric refused to encode (a bug: every value here is encodable).
    #[error("cannot encode the metrics")]
    Encode(#[from] std::fmt::Error),
}

/// A node's metrics registry. Shared by the HTTP server's connection tasks; it holds the node's
/// state weakly, so it never keeps a stopped node's store open.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    ctx: Weak<Ctx>,
    gauges: Gauges,
}

/// Values another task owns, refreshed before each scrape.
#[derive(Debug, Default)]
struct Gauges {
    connected: Gauge,
    selected: Gauge,
    known: Gauge,
    messages: Gauge,
    queued_requests: Gauge,
    queued_peer_events: Gauge,
    backlog: Gauge,
    /// A counter the Swarm task keeps, copied at each refresh, encoded by [`State`].
    busy: Arc<AtomicU64>,
}

impl Metrics {
    /// Completes `registry` (where the network already put libp2p's metrics) with the node's.
    pub(super) fn new(mut registry: Registry, ctx: &Arc<Ctx>) -> Self {
        let gauges = Gauges::default();
        let r = &mut registry;
        r.register(
            "mule_node",
            "This node: its peer id and mule version",
            Info::new(vec![
                ("peer_id", ctx.peer_id.to_string()),
                ("version", env!("CARGO_PKG_VERSION").to_owned()),
            ]),
        );
        let gauge = |r: &mut Registry, name: &str, help: &str, g: &Gauge| {
            r.register(name, help, g.clone());
        };
        gauge(
            r,
            "mule_peers_connected",
            "Peers with an open connection",
            &gauges.connected,
        );
        gauge(
            r,
            "mule_peers_selected",
            "Peers ring selection chose to sync with",
            &gauges.selected,
        );
        gauge(
            r,
            "mule_peers_known",
            "Peers discovery reported",
            &gauges.known,
        );
        gauge(
            r,
            "mule_store_messages",
            "Complete messages held in the store",
            &gauges.messages,
        );
        gauge(
            r,
            "mule_net_queued_requests",
            "Inbound requests waiting for the node in the network task's queue",
            &gauges.queued_requests,
        );
        gauge(
            r,
            "mule_net_queued_peer_events",
            "Peer events (selection, connections) waiting for the node in their channel",
            &gauges.queued_peer_events,
        );
        gauge(
            r,
            "mule_net_peer_event_backlog",
            "Peer events that did not fit their channel and wait in the network task's backlog",
            &gauges.backlog,
        );
        registry.register_collector(Box::new(State {
            ctx: Arc::downgrade(ctx),
            net_busy: gauges.busy.clone(),
        }));
        Self {
            registry,
            ctx: Arc::downgrade(ctx),
            gauges,
        }
    }

    /// Asks the Swarm task and the store for their numbers, then encodes every metric as
    /// OpenMetrics text ([`CONTENT_TYPE`]). A part that does not answer within
    /// [`REFRESH_TIMEOUT`] keeps its last values; a stopped node reports its last values.
    pub async fn encode(&self) -> Result<String, Error> {
        self.refresh().await;
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    async fn refresh(&self) {
        let Some((net, store)) = self.ctx.upgrade().map(|c| (c.net.clone(), c.store.clone()))
        else {
            return;
        };
        let g = &self.gauges;
        match tokio::time::timeout(REFRESH_TIMEOUT, net.status()).await {
            Ok(Ok(s)) => {
                g.connected.set(to_i64(s.connected.len()));
                g.selected.set(to_i64(s.selected.len()));
                g.known.set(to_i64(s.known));
                g.queued_requests.set(to_i64(s.queued_requests));
                g.queued_peer_events.set(to_i64(s.queued_peer_events));
                g.backlog.set(to_i64(s.backlog));
                g.busy.store(s.busy, Relaxed);
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "metrics: no network status"),
            Err(_) => tracing::debug!("metrics: network status timed out"),
        }
        match tokio::time::timeout(REFRESH_TIMEOUT, store.len()).await {
            Ok(Ok(n)) => {
                g.messages.set(i64::try_from(n).unwrap_or(i64::MAX));
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "metrics: no store count"),
            Err(_) => tracing::debug!("metrics: store count timed out"),
        }
    }
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Reads the node's in-memory state at scrape time. Help texts end in a full stop, as the
/// registry adds one to those registered with it.
#[derive(Debug)]
struct State {
    ctx: Weak<Ctx>,
    net_busy: Arc<AtomicU64>,
}

impl Collector for State {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(ctx) = self.ctx.upgrade() else {
            return Ok(());
        };
        let c = ctx.counters.snapshot();
        let counters = [
            (
                "mule_messages_sent",
                "Messages handed complete to a peer that accepted them.",
                c.messages_sent,
            ),
            (
                "mule_messages_received",
                "Messages received complete from peers (pushed or pulled).",
                c.messages_received,
            ),
            (
                "mule_bytes_sent",
                "Content bytes sent in push chunks.",
                c.bytes_sent,
            ),
            (
                "mule_bytes_received",
                "Content bytes accepted from peers.",
                c.bytes_received,
            ),
            (
                "mule_content_transfers",
                "Content transfers accepted (the first chunk of a message from a peer).",
                c.content_transfers,
            ),
            (
                "mule_duplicates",
                "Pushes of messages already held, answered already-seen.",
                c.duplicates,
            ),
            (
                "mule_peers_cooled_down",
                "Times a peer was cut off for a cool-down: it kept asking after being refused \
                 for its rate.",
                c.peers_cooled_down,
            ),
            (
                "mule_net_busy_answers",
                "Inbound requests the network task answered busy because the node's request \
                 queue was full (not in mule_rejections, which counts the node's own refusals).",
                self.net_busy.load(Relaxed),
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }

        let mut family = encoder.encode_descriptor(
            "mule_rejections",
            "Requests this node refused, by wire error code.",
            None,
            MetricType::Counter,
        )?;
        for (reason, n) in &c.rejections {
            ConstCounter::new(*n).encode(family.encode_family(&[("reason", reason.as_str())])?)?;
        }

        // The quota meter is kept in memory (recomputed at every start), so this costs no scan.
        let usage = ctx.store.usage();
        for (name, help, value) in [
            (
                "mule_store_bytes",
                "Store quota in use: content bytes of complete messages plus the declared bytes \
                 of transfers in progress.",
                usage.used,
            ),
            (
                "mule_store_quota_bytes",
                "The store quota (--max-store-bytes).",
                usage.quota,
            ),
        ] {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }

        // Copied under the lock, encoded after it is released.
        let queues = ctx.queues.lock().unwrap_or_else(|p| p.into_inner()).clone();
        gauges(
            &mut encoder,
            "mule_sync_queue_messages",
            "Messages waiting to be pushed, per selected peer.",
            "peer",
            queues
                .iter()
                .map(|(peer, len)| (peer.as_str(), *len as u64)),
        )?;

        let transfers = ctx.transfers().snapshot(Instant::now());
        let mut per_direction = [(Direction::In, "in", 0, 0), (Direction::Out, "out", 0, 0)];
        for t in &transfers {
            for (direction, _, count, left) in &mut per_direction {
                if *direction == t.direction {
                    *count += 1;
                    *left += t.length.saturating_sub(t.done);
                }
            }
        }
        gauges(
            &mut encoder,
            "mule_transfers_in_flight",
            "Multi-chunk transfers in progress, by direction.",
            "direction",
            per_direction
                .iter()
                .map(|(_, label, count, _)| (*label, *count)),
        )?;
        gauges(
            &mut encoder,
            "mule_transfer_bytes_remaining",
            "Bytes still to move in the transfers in progress, by direction.",
            "direction",
            per_direction
                .iter()
                .map(|(_, label, _, left)| (*label, *left)),
        )?;
        Ok(())
    }
}

/// One gauge family with one label, a sample per `(label value, value)`.
fn gauges<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    samples: impl IntoIterator<Item = (&'a str, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (value, n) in samples {
        ConstGauge::new(n).encode(family.encode_family(&[(label, value)])?)?;
    }
    Ok(())
}
