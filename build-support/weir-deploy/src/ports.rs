//! Ports for topologies on this machine.

use crate::error::DeployError;
use std::net::TcpListener;

/// A TCP port the OS considers free on 127.0.0.1 right now (for topologies).
pub fn free_port() -> Result<u16, DeployError> {
    // The port is released before its instance binds it, so the system may
    // hand it out again meanwhile: never give one port twice in a process
    // (two instances of one topology would share an address).
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..1000 {
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| DeployError::new(format!("cannot find a free port: {e}")))?;
        let port = listener
            .local_addr()
            .map(|a| a.port())
            .map_err(|e| DeployError::new(format!("cannot find a free port: {e}")))?;
        if given.insert(port) {
            return Ok(port);
        }
    }
    Err(DeployError::new(format!(
        "cannot find a free port: {} given out already",
        given.len()
    )))
}
