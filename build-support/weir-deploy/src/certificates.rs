//! Certificates for external endpoints served over TLS
//! (`--client-tls-cert`, `--client-tls-key`), made here for local and test
//! deployments: a private certificate authority, and a server certificate it
//! signs. Clients trust the authority (`redis-cli --tls --cacert ca.pem`).
//! For a deployment others use, bring certificates from your own authority.

use crate::error::DeployError;
use crate::files::write;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use std::path::{Path, PathBuf};

/// Where [`client_certificates`] put its files.
#[derive(Debug, Clone)]
pub struct ClientCertificates {
    /// The authority's certificate: what clients trust.
    pub ca: PathBuf,
    /// The server's certificate, for `--client-tls-cert`.
    pub cert: PathBuf,
    /// Its private key (mode 0600), for `--client-tls-key`.
    pub key: PathBuf,
}

/// Makes (or, if they are all there, keeps) in `dir`: `ca.pem`, and
/// `server.pem` and `server.key` for the host names and addresses in
/// `names`. The authority's own key is never written: nothing else can be
/// signed with it.
pub fn client_certificates(dir: &Path, names: &[&str]) -> Result<ClientCertificates, DeployError> {
    let files = ClientCertificates {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    };
    if [&files.ca, &files.cert, &files.key]
        .iter()
        .all(|f| f.exists())
    {
        return Ok(files);
    }
    let failed =
        |e: rcgen::Error| DeployError::new(format!("cannot make client certificates: {e}"));
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Weir local client CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().map_err(failed)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(failed)?;
    let issuer = Issuer::new(ca, ca_key);

    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut server = CertificateParams::new(names.clone()).map_err(failed)?;
    server.distinguished_name.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    server.use_authority_key_identifier_extension = true;
    let server_key = KeyPair::generate().map_err(failed)?;
    let server_cert = server.signed_by(&server_key, &issuer).map_err(failed)?;

    std::fs::create_dir_all(dir)
        .map_err(|e| DeployError::new(format!("cannot create {}: {e}", dir.display())))?;
    write(&files.ca, &ca_cert.pem(), false)?;
    write(&files.cert, &server_cert.pem(), false)?;
    write(&files.key, &server_key.serialize_pem(), true)?;
    Ok(files)
}
