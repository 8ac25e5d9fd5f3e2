//! Writing the files a deployment hands out: manifests, certificates, keys.

use crate::error::DeployError;
use std::io::Write as _;
use std::path::Path;

/// Writes `text` to `path`, replacing what was there; `private` files (keys,
/// Secrets) are readable by their owner only.
pub(crate) fn write(path: &Path, text: &str, private: bool) -> Result<(), DeployError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    options
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| DeployError::new(format!("cannot write {}: {e}", path.display())))
}
