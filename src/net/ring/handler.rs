//! The per-connection side of ring selection: hold a selected peer's connections open.

use std::{
    convert::Infallible,
    task::{Context, Poll},
};

use libp2p::{
    core::upgrade::DeniedUpgrade,
    swarm::{
        handler::{ConnectionEvent, FullyNegotiatedInbound, FullyNegotiatedOutbound},
        ConnectionHandler, ConnectionHandlerEvent, SubstreamProtocol,
    },
};

/// Per-connection handler of [`Behaviour`](super::Behaviour): speaks no protocol, only keeps
/// the connection open while its peer is selected.
///
/// The swarm closes a connection once it is idle and no handler wants it kept alive, so this
/// handler holds connections to sync partners open and lets all others expire.
#[derive(Debug, Clone)]
pub struct Handler {
    keep_alive: bool,
}

impl Handler {
    pub(super) fn new(keep_alive: bool) -> Self {
        Self { keep_alive }
    }
}

impl ConnectionHandler for Handler {
    /// Whether the peer is selected, i.e. whether to keep the connection open.
    type FromBehaviour = bool;
    type ToBehaviour = Infallible;
    type InboundProtocol = DeniedUpgrade;
    type OutboundProtocol = DeniedUpgrade;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = ();

    fn listen_protocol(&self) -> SubstreamProtocol<DeniedUpgrade, ()> {
        SubstreamProtocol::new(DeniedUpgrade, ())
    }

    fn connection_keep_alive(&self) -> bool {
        self.keep_alive
    }

    fn poll(
        &mut self,
        _cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<DeniedUpgrade, (), Infallible>> {
        Poll::Pending
    }

    fn on_behaviour_event(&mut self, keep_alive: bool) {
        self.keep_alive = keep_alive;
    }

    fn on_connection_event(&mut self, event: ConnectionEvent<DeniedUpgrade, DeniedUpgrade>) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol, ..
            })
            | ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol, ..
            }) => match protocol {},
            // Nothing else concerns a handler without protocols.
            _ => {}
        }
    }
}
