//! The node side of the control socket.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use super::{socket_path, views, Request, Response, MAX_REQUEST};
use crate::node::{Content, Node};

/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds the socket, replacing a stale one, owner-only.
pub fn bind(data_dir: &Path) -> std::io::Result<UnixListener> {
    let path = socket_path(data_dir);
    std::fs::create_dir_all(data_dir)?;
    if path.exists() {
        // The store lock already guarantees no other node uses this data dir: the file is stale.
        std::fs::remove_file(&path)?;
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves requests until `stop` turns true; removes the socket file on the way out.
pub async fn serve(listener: UnixListener, node: Node, mut stop: watch::Receiver<bool>) {
    let path = socket_path(&node.config().data_dir);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let node = node.clone();
                    tokio::spawn(async move {
                        if let Err(e) = handle(stream, node).await {
                            tracing::debug!(error = %e, "control connection failed");
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "control socket accept failed"),
            }
        }
    }
    let _ = std::fs::remove_file(path);
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
            lifespan_ms,
        } => {
            let content = match (text, file) {
                (Some(t), None) => Content::Bytes(t.into_bytes()),
                (None, Some(f)) => Content::File(f),
                _ => return Response::Error("give exactly one of text and file".into()),
            };
            match node
                .send(to, content, Duration::from_millis(lifespan_ms))
                .await
            {
                Ok(id) => Response::Sent(id.to_string()),
                Err(e) => Response::Error(e.to_string()),
            }
        }
        Request::List => match views::list(node.store()).await {
            Ok(v) => Response::Messages(v),
            Err(e) => Response::Error(e.to_string()),
        },
        Request::Inbox => {
            match views::inbox(node.store(), &node.config().data_dir, &node.peer_id()).await {
                Ok(v) => Response::Messages(v),
                Err(e) => Response::Error(e.to_string()),
            }
        }
        Request::Status => match node.status().await {
            Ok(s) => Response::Status(Box::new(s)),
            Err(e) => Response::Error(e.to_string()),
        },
    }
}
