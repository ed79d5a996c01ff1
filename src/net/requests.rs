//! Request-response bookkeeping of the event loop: outbound requests waiting for their answer,
//! and the reduction of a protocol's events to "a request came in" or "a reply is due".

use std::collections::HashMap;

use libp2p::request_response::{self, OutboundFailure, OutboundRequestId, ResponseChannel};
use libp2p::PeerId;

use super::{Reply, RequestError};

/// Outbound requests of one protocol waiting for their response.
pub(super) struct Pending<T> {
    replies: HashMap<OutboundRequestId, Reply<T>>,
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Self {
            replies: HashMap::new(),
        }
    }
}

impl<T> Pending<T> {
    /// Remembers whom to tell when request `id` completes.
    pub(super) fn insert(&mut self, id: OutboundRequestId, reply: Reply<T>) {
        self.replies.insert(id, reply);
    }

    /// Hands the outcome of request `id` to its requester.
    pub(super) fn resolve(&mut self, id: OutboundRequestId, result: Result<T, RequestError>) {
        if let Some(reply) = self.replies.remove(&id) {
            // The requester may have given up; that is its business.
            let _ = reply.send(result);
        }
    }
}

/// What a request-response event means to the loop.
pub(super) enum Outcome<Req, Resp> {
    /// A peer asks; answer through the channel.
    Request(PeerId, Req, ResponseChannel<Resp>),
    /// One of our requests completed.
    Response(OutboundRequestId, Result<Resp, RequestError>),
    /// Nothing to do.
    None,
}

/// Reduces one request-response event to its [`Outcome`].
pub(super) fn outcome<Req, Resp>(event: request_response::Event<Req, Resp>) -> Outcome<Req, Resp> {
    use request_response::{Event as E, Message};
    match event {
        E::Message {
            peer,
            message: Message::Request {
                request, channel, ..
            },
            ..
        } => Outcome::Request(peer, request, channel),
        E::Message {
            message:
                Message::Response {
                    request_id,
                    response,
                },
            ..
        } => Outcome::Response(request_id, Ok(response)),
        E::OutboundFailure {
            request_id,
            error,
            peer,
            ..
        } => {
            tracing::debug!(%peer, %error, "request failed");
            Outcome::Response(request_id, Err(outbound_error(error)))
        }
        E::InboundFailure { peer, error, .. } => {
            tracing::debug!(%peer, %error, "inbound request failed");
            Outcome::None
        }
        E::ResponseSent { .. } => Outcome::None,
    }
}

fn outbound_error(e: OutboundFailure) -> RequestError {
    match e {
        OutboundFailure::DialFailure => RequestError::Dial,
        OutboundFailure::Timeout => RequestError::Timeout,
        OutboundFailure::ConnectionClosed => RequestError::ConnectionClosed,
        OutboundFailure::UnsupportedProtocols => RequestError::UnsupportedProtocols,
        OutboundFailure::Io(e) => RequestError::Io(e.into()),
    }
}
