//! A small HTTP/1.1 server for one resource, `/metrics`: one request per connection, answered
//! and closed (`Connection: close`), which is all a Prometheus scrape needs.
//!
//! The endpoint may face the network, so its input is bounded: the request head is read up to
//! [`MAX_HEAD`] bytes within [`READ_TIMEOUT`], the body is never read, at most
//! [`MAX_CONNECTIONS`] connections are served at once (more wait to be accepted), and a client
//! that does not take the answer within a deadline is dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use super::Error;
use crate::node::metrics::{Metrics, CONTENT_TYPE};

/// Largest request head (request line and headers) read; a longer one is answered 431.
pub const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to read the answer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most connections served at once; a scraper needs one.
pub const MAX_CONNECTIONS: usize = 16;
/// How long, and how many bytes, unread input is drained after the answer before closing:
/// closing with unread bytes makes the kernel reset the connection, which can discard the
/// answer before the client reads it (a refused oversized head, a request with a body).
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: u64 = 64 * 1024;
/// The pause after a failed accept (out of file descriptors, say), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A served metrics endpoint; [`Server::stop`] ends it.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Server {
    /// Binds `addr` and serves `metrics` from a task of its own.
    pub async fn start(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<Self, Error> {
        let fail = |source| Error::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(fail)?;
        let bound = listener.local_addr().map_err(fail)?;
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(serve(listener, metrics, stop_rx));
        tracing::info!(addr = %bound, "serving metrics");
        Ok(Self {
            addr: bound,
            stop,
            task,
        })
    }

    /// The address actually bound (the OS's choice of port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and drops the connections in progress (a scrape is retried anyway).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "metrics server task failed");
        }
    }
}

async fn serve(listener: TcpListener, metrics: Arc<Metrics>, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = accept(&listener, &slots) => match accepted {
                Ok((stream, peer, permit)) => {
                    let metrics = metrics.clone();
                    connections.spawn(async move {
                        if let Err(e) = handle(stream, &metrics).await {
                            tracing::debug!(%peer, error = %e, "metrics connection failed");
                        }
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
    connections.shutdown().await;
}

/// Waits for a free connection slot, then for a client.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> std::io::Result<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
    let permit = slots
        .clone()
        .acquire_owned()
        .await
        .map_err(std::io::Error::other)?;
    let (stream, peer) = listener.accept().await?;
    Ok((stream, peer, permit))
}

async fn handle(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Err(_) => return Ok(()), // too slow: closed unanswered
        Ok(head) => head?,
    };
    let response = match head {
        Head::Closed => return Ok(()),
        Head::TooLarge => Response::status(TOO_LARGE.0, TOO_LARGE.1),
        Head::Complete(bytes) => match route(&bytes) {
            Route::Metrics { body } => match metrics.encode().await {
                Ok(text) => Response {
                    status: (200, "OK"),
                    content_type: CONTENT_TYPE,
                    allow: false,
                    body: text.into_bytes(),
                    send_body: body,
                },
                Err(e) => {
                    tracing::warn!(error = %e, "metrics scrape failed");
                    Response::status(500, "Internal Server Error")
                }
            },
            other => {
                let (code, reason) = other.status();
                Response {
                    allow: other == Route::MethodNotAllowed,
                    ..Response::status(code, reason)
                }
            }
        },
    };
    let write = async {
        stream.write_all(&response.to_bytes()).await?;
        stream.shutdown().await
    };
    tokio::time::timeout(WRITE_TIMEOUT, write)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "client did not read"))??;
    let (mut rest, mut sink) = ((&mut stream).take(LINGER_BYTES), tokio::io::sink());
    // Whatever happens here, the answer is out.
    let _ = tokio::time::timeout(LINGER, tokio::io::copy(&mut rest, &mut sink)).await;
    Ok(())
}

/// What reading a request head gave.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    /// Everything up to and including the blank line.
    Complete(Vec<u8>),
    /// No blank line within [`MAX_HEAD`] bytes.
    TooLarge,
    /// The client closed before a complete head.
    Closed,
}

/// Reads up to the blank line that ends the head, at most [`MAX_HEAD`] bytes.
async fn read_head<R: AsyncRead + Unpin>(reader: &mut R) -> std::io::Result<Head> {
    let mut buf = vec![0u8; MAX_HEAD];
    let mut len = 0;
    while len < MAX_HEAD {
        let n = reader.read(&mut buf[len..]).await?;
        if n == 0 {
            return Ok(Head::Closed);
        }
        // The terminator may straddle two reads.
        let from = len.saturating_sub(3);
        len += n;
        if let Some(end) = find_blank_line(&buf[from..len]) {
            buf.truncate(from + end);
            return Ok(Head::Complete(buf));
        }
    }
    Ok(Head::TooLarge)
}

/// The offset just past the first `\r\n\r\n` (or bare `\n\n`, which RFC 9112 lets servers
/// accept) in `bytes`.
fn find_blank_line(bytes: &[u8]) -> Option<usize> {
    let crlf = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    let lf = bytes.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// `GET /metrics` (`body`) or `HEAD /metrics` (headers only).
    Metrics {
        /// Whether the answer carries the body.
        body: bool,
    },
    /// Any other path.
    NotFound,
    /// `/metrics` with a method other than GET or HEAD.
    MethodNotAllowed,
    /// Not an HTTP/1.x request line.
    BadRequest,
}

/// The answer to a head over [`MAX_HEAD`].
const TOO_LARGE: (u16, &str) = (431, "Request Header Fields Too Large");

impl Route {
    /// The status line an answer to this route carries (a scrape that works: 200).
    fn status(&self) -> (u16, &'static str) {
        match self {
            Route::Metrics { .. } => (200, "OK"),
            Route::NotFound => (404, "Not Found"),
            Route::MethodNotAllowed => (405, "Method Not Allowed"),
            Route::BadRequest => (400, "Bad Request"),
        }
    }
}

/// The status a client gets that sends `reads` (one slice per read, then closes its side), as
/// far as the request decides it (a scrape that works: 200); `None`: closed unanswered.
///
/// The whole handling of a request's bytes without a socket or a registry, for the fuzz target
/// `http_head`: whatever the bytes and however they are split into reads, nothing panics, the
/// head read stays within [`MAX_HEAD`], and the split never changes the answer.
pub fn status_for(reads: &[&[u8]]) -> std::io::Result<Option<u16>> {
    let mut reader = Reads { reads, at: 0 };
    let head = futures::executor::block_on(read_head(&mut reader))?;
    Ok(match head {
        Head::Closed => None,
        Head::TooLarge => Some(TOO_LARGE.0),
        Head::Complete(bytes) => {
            if bytes.len() > MAX_HEAD {
                return Err(std::io::Error::other("head read past MAX_HEAD"));
            }
            Some(route(&bytes).status().0)
        }
    })
}

/// An in-memory reader that hands out its slices one per read (a longer slice than the
/// caller's buffer over several reads).
struct Reads<'a> {
    reads: &'a [&'a [u8]],
    at: usize,
}

impl AsyncRead for Reads<'_> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        // Empty slices would read as the end of input: skip them.
        while let Some((first, rest)) = self.reads.split_first() {
            if first.is_empty() {
                self.reads = rest;
                continue;
            }
            let n = (first.len() - self.at).min(buf.remaining());
            buf.put_slice(&first[self.at..self.at + n]);
            self.at += n;
            if self.at == first.len() {
                self.reads = rest;
                self.at = 0;
            }
            break;
        }
        std::task::Poll::Ready(Ok(()))
    }
}

/// Decides from the request line alone; headers are not needed to answer.
fn route(head: &[u8]) -> Route {
    let Ok(text) = std::str::from_utf8(head) else {
        return Route::BadRequest;
    };
    let line = text.lines().next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if !matches!(version, "HTTP/1.0" | "HTTP/1.1") || !target.starts_with('/') {
        return Route::BadRequest;
    }
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    match (method, path) {
        ("GET", "/metrics") => Route::Metrics { body: true },
        ("HEAD", "/metrics") => Route::Metrics { body: false },
        (_, "/metrics") => Route::MethodNotAllowed,
        _ => Route::NotFound,
    }
}

/// An answer, always closing the connection.
#[derive(Debug)]
struct Response {
    status: (u16, &'static str),
    content_type: &'static str,
    /// Whether to say which methods `/metrics` takes (405).
    allow: bool,
    body: Vec<u8>,
    /// False for HEAD: the headers describe the body, which is left out.
    send_body: bool,
}

impl Response {
    /// A plain-text answer whose body is its status line.
    fn status(code: u16, reason: &'static str) -> Self {
        Self {
            status: (code, reason),
            content_type: "text/plain; charset=utf-8",
            allow: false,
            body: format!("{code} {reason}\n").into_bytes(),
            send_body: true,
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let (code, reason) = self.status;
        let allow = if self.allow {
            "Allow: GET, HEAD\r\n"
        } else {
            ""
        };
        let mut out = format!(
            "HTTP/1.1 {code} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{allow}\
             Connection: close\r\n\r\n",
            self.content_type,
            self.body.len()
        )
        .into_bytes();
        if self.send_body {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_request_line() {
        let r = |s: &str| route(s.as_bytes());
        assert_eq!(
            r("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Metrics { body: true }
        );
        assert_eq!(
            r("GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Route::Metrics { body: true }
        );
        assert_eq!(
            r("HEAD /metrics HTTP/1.1\r\n\r\n"),
            Route::Metrics { body: false }
        );
        assert_eq!(r("GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(r("GET /metrics/x HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(r("POST /metrics HTTP/1.1\r\n\r\n"), Route::MethodNotAllowed);
        assert_eq!(r("GET /metrics HTTP/2\r\n\r\n"), Route::BadRequest);
        assert_eq!(r("GET /metrics\r\n\r\n"), Route::BadRequest);
        assert_eq!(r("GET  /metrics HTTP/1.1\r\n\r\n"), Route::BadRequest);
        assert_eq!(
            r("GET http://x/metrics HTTP/1.1\r\n\r\n"),
            Route::BadRequest
        );
        assert_eq!(route(b"GET /\xff HTTP/1.1\r\n\r\n"), Route::BadRequest);
    }

    #[tokio::test]
    async fn head_is_bounded() -> std::io::Result<()> {
        let request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nbody";
        assert_eq!(
            read_head(&mut &request[..]).await?,
            Head::Complete(request[..request.len() - 4].to_vec())
        );
        assert_eq!(
            read_head(&mut &b"GET /metrics HTTP/1.1\n\n"[..]).await?,
            Head::Complete(b"GET /metrics HTTP/1.1\n\n".to_vec())
        );
        assert_eq!(
            read_head(&mut &b"GET /metrics HTTP/1.1\r\n"[..]).await?,
            Head::Closed
        );
        let endless = vec![b'a'; MAX_HEAD + 1];
        assert_eq!(read_head(&mut &endless[..]).await?, Head::TooLarge);
        // A terminator split across reads is still found.
        let (mut client, mut server) = tokio::io::duplex(64);
        let reader = tokio::spawn(async move { read_head(&mut server).await });
        client.write_all(b"GET /metrics HTTP/1.1\r\n\r").await?;
        client.flush().await?;
        tokio::task::yield_now().await;
        client.write_all(b"\n").await?;
        let head = reader.await.map_err(std::io::Error::other)??;
        assert_eq!(
            head,
            Head::Complete(b"GET /metrics HTTP/1.1\r\n\r\n".to_vec())
        );
        Ok(())
    }

    #[test]
    fn status_for_does_not_depend_on_how_reads_split_the_bytes() -> std::io::Result<()> {
        let request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(status_for(&[request])?, Some(200));
        for cut in 0..request.len() {
            let (a, b) = request.split_at(cut);
            assert_eq!(status_for(&[a, b])?, Some(200), "cut at {cut}");
        }
        assert_eq!(
            status_for(&[b"POST /metrics HTTP/1.1\r\n", b"\r\n"])?,
            Some(405)
        );
        assert_eq!(status_for(&[b"GET /x HTTP/1.1\n\n"])?, Some(404));
        assert_eq!(status_for(&[b"nonsense\n\n"])?, Some(400));
        assert_eq!(status_for(&[&[b'a'; MAX_HEAD + 1]])?, Some(431));
        assert_eq!(status_for(&[b"GET /metrics HTTP/1.1\r\n"])?, None);
        assert_eq!(status_for(&[])?, None);
        Ok(())
    }

    #[test]
    fn head_answer_has_no_body() {
        let mut r = Response::status(200, "OK");
        r.send_body = false;
        let text = String::from_utf8_lossy(&r.to_bytes()).into_owned();
        assert!(
            text.ends_with("Content-Length: 7\r\nConnection: close\r\n\r\n"),
            "{text}"
        );
    }
}
