//! The node side of the control socket, served on top of a running [`Node`].
//!
//! [`Server::start`] binds the socket and serves it from one task; each connection gets its
//! own task, at most [`MAX_CONNECTIONS`] at once, all tracked so that [`Server::stop`] waits
//! for the requests in progress (up to [`DRAIN_TIMEOUT`]) before it removes the socket.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use super::{socket_path, views, Request, Response, MAX_REQUEST};
use crate::node::pull::Source;
use crate::node::{Letter, Node, Privacy, PullOptions};

/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Most control connections served at once; more wait to be accepted.
pub const MAX_CONNECTIONS: usize = 64;
/// How long stopping waits for requests in progress before it aborts them.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the control socket could not be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Creating, replacing or binding the socket file failed.
    #[error("cannot serve the control socket at {path}: {source}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The blocking setup task failed.
    #[error("control socket setup failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A served control socket; [`Server::stop`] ends it.
#[derive(Debug)]
pub struct Server {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Server {
    /// Binds `<data-dir>/control.sock` (owner-only, replacing a stale one) and serves `node`.
    pub async fn start(node: Node) -> Result<Self, Error> {
        let dir = node.config().data_dir.clone();
        let listener = tokio::task::spawn_blocking(move || bind(&dir)).await??;
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(serve(listener, node, stop_rx));
        Ok(Self { stop, task })
    }

    /// Stops accepting, lets requests in progress finish (bounded), removes the socket file.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "control server task failed");
        }
    }
}

/// Prepares the socket file: the directory exists, no stale socket, owner-only.
fn bind(data_dir: &Path) -> Result<UnixListener, Error> {
    let path = socket_path(data_dir);
    let fail = |source| Error::Bind {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(data_dir).map_err(fail)?;
    if path.exists() {
        // The store lock already guarantees no other node uses this data dir: the file is stale.
        std::fs::remove_file(&path).map_err(fail)?;
    }
    let listener = UnixListener::bind(&path).map_err(fail)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
    Ok(listener)
}

/// Serves requests until `stop` turns true, then drains the connections and removes the socket.
async fn serve(listener: UnixListener, node: Node, mut stop: watch::Receiver<bool>) {
    let path = socket_path(&node.config().data_dir);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = accept(&listener, &slots) => match accepted {
                Ok((stream, permit)) => {
                    let node = node.clone();
                    connections.spawn(async move {
                        if let Err(e) = handle(stream, node).await {
                            tracing::debug!(error = %e, "control connection failed");
                        }
                        drop(permit);
                    });
                }
                Err(e) => tracing::warn!(error = %e, "control socket accept failed"),
            }
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("control requests still running at shutdown; aborting them");
        connections.shutdown().await;
    }
    let shown = path.display().to_string();
    match tokio::task::spawn_blocking(move || std::fs::remove_file(path)).await {
        Ok(Err(e)) if e.kind() != std::io::ErrorKind::NotFound => {
            // Harmless: the next node replaces a stale socket file when it binds.
            tracing::warn!(path = %shown, error = %e, "cannot remove the control socket");
        }
        _ => {}
    }
}

/// Waits for a free connection slot, then for a client.
async fn accept(
    listener: &UnixListener,
    slots: &Arc<Semaphore>,
) -> std::io::Result<(UnixStream, tokio::sync::OwnedSemaphorePermit)> {
    let permit = slots
        .clone()
        .acquire_owned()
        .await
        .map_err(std::io::Error::other)?;
    let (stream, _) = listener.accept().await?;
    Ok((stream, permit))
}

async fn handle(stream: UnixStream, node: Node) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_REQUEST));
    tokio::time::timeout(READ_TIMEOUT, reader.read_line(&mut line))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no request"))??;
    let response = match serde_json::from_str::<Request>(&line) {
        Ok(request) => answer(request, &node).await,
        Err(e) => Response::Error(format!("malformed control request: {e}")),
    };
    let mut out = serde_json::to_vec(&response).map_err(std::io::Error::other)?;
    out.push(b'\n');
    write.write_all(&out).await?;
    write.shutdown().await
}

async fn answer(request: Request, node: &Node) -> Response {
    match request {
        Request::Send {
            to,
            text,
            file,
            group,
            invite,
            lifespan_ms,
        } => {
            let parts = Letter::from_parts(&node.config().data_dir, text, file, invite.as_deref())
                .and_then(|l| Ok((l, Privacy::from_group(group.as_deref())?)));
            let (letter, privacy) = match parts {
                Ok(p) => p,
                Err(e) => return Response::Error(e.to_string()),
            };
            match node
                .post(to, letter, &privacy, Duration::from_millis(lifespan_ms))
                .await
            {
                Ok(posted) => Response::Sent(posted),
                Err(e) => Response::Error(e.to_string()),
            }
        }
        Request::List => match views::list(node.store(), node.roots()).await {
            Ok(v) => Response::Messages(v),
            Err(e) => Response::Error(e.to_string()),
        },
        Request::Inbox { save_dir } => {
            let reader = views::Reader {
                data_dir: &node.config().data_dir,
                identity: node.identity(),
                me: node.me(),
                roots: node.roots(),
                save_dir,
            };
            match views::inbox(node.store(), &reader).await {
                Ok(v) => Response::Messages(v),
                Err(e) => Response::Error(e.to_string()),
            }
        }
        Request::Status => match node.status().await {
            Ok(s) => Response::Status(Box::new(s)),
            Err(e) => Response::Error(e.to_string()),
        },
        Request::Pull {
            from,
            for_me,
            since_ms,
        } => {
            let source = match from.parse::<Source>() {
                Ok(s) => s,
                Err(e) => return Response::Error(e.to_string()),
            };
            let options = PullOptions {
                for_me,
                since_ms,
                progress: None,
            };
            match node.pull_from(source, options).await {
                Ok(report) => Response::Pulled(report),
                Err(e) => Response::Error(e.to_string()),
            }
        }
    }
}
