//! `--health ADDR`: an HTTP endpoint that says whether this instance is
//! ready, for a Kubernetes readiness probe or a rolling upgrade to wait on.
//!
//! `GET /ready` answers `200 ready` once the instance runs (every peer it
//! cannot go without linked, its endpoints listening) and is linked with at
//! least one instance of every role it exchanges records with; `503` and the
//! reason otherwise: a new instance that its peers refuse (another build,
//! say) never becomes ready, so an upgrade waiting on it stops there. Any
//! other path is `404`. Each request is read within 2 s (at most 4 KiB) and
//! answered once; the connection is then closed.

use crate::error::{Error, Result};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Whether the instance is ready, shared by the node (which sets it) and the
/// endpoint (which reports it).
#[derive(Clone, Debug)]
pub struct Health(Arc<Mutex<std::result::Result<(), String>>>);

impl Default for Health {
    fn default() -> Self {
        Health(Arc::new(Mutex::new(Err(
            "starting: linking with its peers".into(),
        ))))
    }
}

impl Health {
    /// Ready, or not and why.
    pub fn set(&self, state: std::result::Result<(), String>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }

    /// What was last set.
    pub fn get(&self) -> std::result::Result<(), String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

const READ_LIMIT: usize = 4096;
const READ_TIME: Duration = Duration::from_secs(2);

/// Binds `address` now (a bad address is an error before anything else
/// starts), and serves it on a task for as long as the runtime runs.
pub async fn serve(address: &str, health: Health) -> Result<()> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| Error::new(format!("cannot listen for --health on {address}: {e}")))?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of descriptors, say: not a reason to spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let health = health.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(READ_TIME, answer(stream, &health)).await;
            });
        }
    });
    Ok(())
}

async fn answer(mut stream: TcpStream, health: &Health) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut buf = [0u8; 512];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < READ_LIMIT {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let line = request.split(|&b| b == b'\r').next().unwrap_or_default();
    let (status, body) = match line.split(|&b| b == b' ').nth(1) {
        Some(b"/ready") => match health.get() {
            Ok(()) => ("200 OK", "ready\n".to_string()),
            Err(why) => ("503 Service Unavailable", format!("not ready: {why}\n")),
        },
        _ => ("404 Not Found", "the one path here is /ready\n".to_string()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
