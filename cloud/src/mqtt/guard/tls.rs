//! TLS on the device port, from `mqtt_tls_cert` / `mqtt_tls_key` (PEM).
//!
//! The crypto provider is aws-lc-rs, the one provider of the whole build
//! (sqlx is built with `tls-rustls-aws-lc-rs` too): it is named here
//! explicitly rather than taken from a process default that another crate
//! might have installed.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::super::{MqttConfig, MqttError};

/// The acceptor when both files are configured, `None` for plain MQTT.
pub(super) fn acceptor(config: &MqttConfig) -> Result<Option<TlsAcceptor>, MqttError> {
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        return Ok(None);
    };
    let chain = certificates(cert)?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|error| MqttError::Tls(format!("mqtt_tls_key {}: {error}", key.display())))?;
    let server = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|error| MqttError::Tls(error.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| MqttError::Tls(format!("mqtt_tls_cert and mqtt_tls_key: {error}")))?;
    Ok(Some(TlsAcceptor::from(Arc::new(server))))
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, MqttError> {
    let invalid = |error: &dyn std::fmt::Display| {
        MqttError::Tls(format!("mqtt_tls_cert {}: {error}", path.display()))
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|error| invalid(&error))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| invalid(&error))?;
    if chain.is_empty() {
        return Err(invalid(&"no certificate in the file"));
    }
    Ok(chain)
}
