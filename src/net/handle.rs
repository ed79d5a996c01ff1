//! The cloneable [`Handle`] through which the app commands the network task.

use libp2p::request_response::ResponseChannel;
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use libp2p_stream::OpenStreamError;
use tokio::sync::{mpsc, oneshot};

#[cfg(doc)]
use super::{Config, Event};
use super::{RequestError, Status};
use crate::protocol::{diff, names, push, push2, repo, Frame};

/// Commands for the event loop. Built by [`Handle`]'s methods.
#[derive(Debug)]
pub(crate) enum Command {
    Diff(PeerId, diff::Request, Reply<diff::Response>),
    Push(PeerId, Frame<push::Request>, Reply<push::Response>),
    Repo(PeerId, Frame<repo::Request>, Reply<repo::Response>),
    RespondDiff(ResponseChannel<diff::Response>, diff::Response),
    RespondPush(ResponseChannel<push::Response>, push::Response),
    RespondRepo(ResponseChannel<repo::Response>, repo::Response),
    Names(PeerId, names::Request, Reply<names::Response>),
    RespondNames(ResponseChannel<names::Response>, names::Response),
    ReportError(PeerId),
    SetTrusted(PeerId, bool),
    Disconnect(PeerId),
    CoolDown(PeerId, std::time::Duration),
    Dial(Multiaddr),
    Status(oneshot::Sender<Status>),
    Shutdown,
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, RequestError>>;

/// A cloneable handle to the network task.
#[derive(Clone)]
pub struct Handle {
    pub(super) commands: mpsc::Sender<Command>,
    /// Opens and accepts plain streams (`/mule/push/2`) without a round trip through the loop:
    /// libp2p-stream hands them to the connection tasks directly.
    pub(super) streams: libp2p_stream::Control,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

impl Handle {
    async fn send(&self, command: Command) -> Result<(), RequestError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| RequestError::Shutdown)
    }

    async fn request<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, RequestError> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx)).await?;
        rx.await.map_err(|_| RequestError::Shutdown)?
    }

    /// Asks `peer` which of `request.ids` it holds.
    pub async fn diff(
        &self,
        peer: PeerId,
        request: diff::Request,
    ) -> Result<diff::Response, RequestError> {
        self.request(|r| Command::Diff(peer, request, r)).await
    }

    /// Sends a push request (or, in tests, a crafted frame).
    pub async fn push(
        &self,
        peer: PeerId,
        request: Frame<push::Request>,
    ) -> Result<push::Response, RequestError> {
        self.request(|r| Command::Push(peer, request, r)).await
    }

    /// Sends a repository request.
    pub async fn repo(
        &self,
        peer: PeerId,
        request: Frame<repo::Request>,
    ) -> Result<repo::Response, RequestError> {
        self.request(|r| Command::Repo(peer, request, r)).await
    }

    /// Answers an inbound diff request.
    pub async fn respond_diff(
        &self,
        ch: ResponseChannel<diff::Response>,
        r: diff::Response,
    ) -> Result<(), RequestError> {
        self.send(Command::RespondDiff(ch, r)).await
    }

    /// Answers an inbound push request.
    pub async fn respond_push(
        &self,
        ch: ResponseChannel<push::Response>,
        r: push::Response,
    ) -> Result<(), RequestError> {
        self.send(Command::RespondPush(ch, r)).await
    }

    /// Answers an inbound repository request.
    pub async fn respond_repo(
        &self,
        ch: ResponseChannel<repo::Response>,
        r: repo::Response,
    ) -> Result<(), RequestError> {
        self.send(Command::RespondRepo(ch, r)).await
    }

    /// Sends this node's certificate chains to `peer` and returns the peer's
    /// (`/mule/names/1`). The dialer calls it right after [`Event::Connected`].
    pub async fn names(
        &self,
        peer: PeerId,
        request: names::Request,
    ) -> Result<names::Response, RequestError> {
        self.request(|r| Command::Names(peer, request, r)).await
    }

    /// Answers an inbound names exchange with this node's own chains.
    pub async fn respond_names(
        &self,
        ch: ResponseChannel<names::Response>,
        r: names::Response,
    ) -> Result<(), RequestError> {
        self.send(Command::RespondNames(ch, r)).await
    }

    /// Marks (`true`) or unmarks `peer` as trusted. With [`Config::trusted_only`] only trusted
    /// peers take ring selection slots, so this may select or deselect peers.
    pub async fn set_trusted(&self, peer: PeerId, trusted: bool) -> Result<(), RequestError> {
        self.send(Command::SetTrusted(peer, trusted)).await
    }

    /// Counts an error against `peer` for ring selection (10 in an hour make it bad).
    pub async fn report_error(&self, peer: PeerId) -> Result<(), RequestError> {
        self.send(Command::ReportError(peer)).await
    }

    /// Closes every connection to `peer`.
    pub async fn disconnect(&self, peer: PeerId) -> Result<(), RequestError> {
        self.send(Command::Disconnect(peer)).await
    }

    /// Closes every connection to `peer` and refuses its connections, inbound and outbound,
    /// for `duration`: it went on asking after being refused for its rate
    /// ([`crate::node::cooldown`]).
    pub async fn cool_down(
        &self,
        peer: PeerId,
        duration: std::time::Duration,
    ) -> Result<(), RequestError> {
        self.send(Command::CoolDown(peer, duration)).await
    }

    /// Dials an address (a bootstrap peer found later, a test).
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), RequestError> {
        self.send(Command::Dial(addr)).await
    }

    /// Peers, addresses and selection, for `mule status`.
    pub async fn status(&self) -> Result<Status, RequestError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Status(tx)).await?;
        rx.await.map_err(|_| RequestError::Shutdown)
    }

    /// Opens a `/mule/push/2` stream to `peer`, dialing it if need be.
    /// [`RequestError::UnsupportedProtocols`] means the peer speaks only `/mule/push/1`.
    pub async fn open_push2(&self, peer: PeerId) -> Result<libp2p::Stream, RequestError> {
        let protocol = StreamProtocol::new(push2::PROTOCOL);
        match self.streams.clone().open_stream(peer, protocol).await {
            Ok(stream) => Ok(stream),
            Err(OpenStreamError::UnsupportedProtocol(_)) => Err(RequestError::UnsupportedProtocols),
            Err(OpenStreamError::Io(e)) => Err(RequestError::Io(e.into())),
            Err(e) => Err(RequestError::Io(
                std::io::Error::other(e.to_string()).into(),
            )),
        }
    }

    /// Starts accepting inbound `/mule/push/2` streams; the node calls it once. `None` if it
    /// was already called.
    pub fn accept_push2(&self) -> Option<libp2p_stream::IncomingStreams> {
        self.streams
            .clone()
            .accept(StreamProtocol::new(push2::PROTOCOL))
            .ok()
    }

    /// Stops the event loop (it also stops when every handle is dropped).
    pub async fn shutdown(&self) -> Result<(), RequestError> {
        self.send(Command::Shutdown).await
    }
}
