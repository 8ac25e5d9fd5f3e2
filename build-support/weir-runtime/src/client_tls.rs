//! TLS for external endpoints (`--client-tls-cert`, `--client-tls-key`):
//! clients such as `redis-cli --tls` reach a role's endpoints over TLS 1.2 or
//! 1.3 (rustls, ring's primitives). Links between instances do not use it:
//! they are sealed with the deployment key (`secure`).

use crate::error::{Error, Result};
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// The certificate and key an instance's endpoints serve TLS with.
#[derive(Clone)]
pub struct ClientTls {
    pub(crate) acceptor: TlsAcceptor,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientTls(..)")
    }
}

impl ClientTls {
    /// Reads a PEM certificate chain (the server's certificate first) and its
    /// PEM private key.
    pub fn load(cert: &Path, key: &Path) -> Result<ClientTls> {
        let certs = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| Error::new(format!("--client-tls-cert {}: {e}", cert.display())))?;
        if certs.is_empty() {
            return Err(Error::new(format!(
                "--client-tls-cert {}: no PEM certificate in the file",
                cert.display()
            )));
        }
        let private = PrivateKeyDer::from_pem_file(key).map_err(|e| {
            Error::new(format!(
                "--client-tls-key {}: no PEM private key in the file ({e})",
                key.display()
            ))
        })?;
        // ring's provider has no post-quantum key exchange (hence deprecated);
        // aws-lc-rs, which has, would add a C build with cmake to every build.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(certs, private))
            .map_err(|e| {
                Error::new(format!(
                    "--client-tls-cert {} with --client-tls-key {}: {e}",
                    cert.display(),
                    key.display()
                ))
            })?;
        Ok(ClientTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }
}
