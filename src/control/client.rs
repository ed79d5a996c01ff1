//! The CLI side of the control socket.

use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::{socket_path, Request, Response, MAX_RESPONSE};

/// Why the control socket could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No node is running on this data dir (no socket, or nobody listening).
    #[error("no node is running with data dir {0} (start one with `mule node`)")]
    NotRunning(String),
    /// The conversation failed.
    #[error("control socket: {0}")]
    Io(#[from] std::io::Error),
    /// The node's answer did not parse.
    #[error("control socket: malformed response: {0}")]
    Malformed(String),
}

/// Sends one request to the node serving `data_dir`.
pub async fn call(data_dir: &Path, request: &Request) -> Result<Response, Error> {
    let path = socket_path(data_dir);
    let mut stream = match UnixStream::connect(&path).await {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(Error::NotRunning(data_dir.display().to_string()))
        }
        Err(e) => return Err(e.into()),
    };
    let mut line = serde_json::to_vec(request).map_err(|e| Error::Malformed(e.to_string()))?;
    line.push(b'\n');
    stream.write_all(&line).await?;
    let mut buf = Vec::new();
    stream.take(MAX_RESPONSE).read_to_end(&mut buf).await?;
    serde_json::from_slice(&buf).map_err(|e| Error::Malformed(e.to_string()))
}
