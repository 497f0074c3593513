//! TLS termination: certificates loaded from PEM files, chosen by SNI, reloaded when their
//! files change (a failed reload keeps the certificates in use).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

use crate::config::CertificateFiles;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A listener's certificates, the default first.
#[derive(Debug)]
pub struct CertStore {
    files: Vec<CertificateFiles>,
    keys: ArcSwap<Vec<Arc<CertifiedKey>>>,
    /// The files' modification times and sizes at the last load.
    stamps: Mutex<Vec<FileStamp>>,
}

type FileStamp = Option<(SystemTime, u64)>;

impl CertStore {
    /// Loads every pair; any unreadable or mismatched one refuses the whole set.
    pub fn load(files: Vec<CertificateFiles>) -> Result<Self, String> {
        let keys = load_all(&files)?;
        Ok(Self {
            stamps: Mutex::new(stamps(&files)),
            files,
            keys: ArcSwap::from_pointee(keys),
        })
    }

    pub fn files(&self) -> &[CertificateFiles] {
        &self.files
    }

    /// Reloads when a file changed since the last load; `Ok(true)` when it did reload.
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let now = stamps(&self.files);
        let mut seen = self.stamps.lock().unwrap_or_else(|p| p.into_inner());
        if *seen == now {
            return Ok(false);
        }
        // Remember the attempt either way, so a broken file is reported once, not every tick.
        *seen = now;
        self.keys.store(Arc::new(load_all(&self.files)?));
        Ok(true)
    }

    /// The rustls acceptor for this store; `alpn` lists the protocols offered.
    pub fn acceptor(self: &Arc<Self>, alpn: &[&[u8]]) -> Result<TlsAcceptor, String> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|err| format!("TLS setup: {err}"))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SniResolver {
                store: self.clone(),
            }));
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

fn stamps(files: &[CertificateFiles]) -> Vec<FileStamp> {
    files
        .iter()
        .flat_map(|pair| [&pair.cert_file, &pair.key_file])
        .map(|path| {
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        })
        .collect()
}

fn load_all(files: &[CertificateFiles]) -> Result<Vec<Arc<CertifiedKey>>, String> {
    let provider = provider();
    files
        .iter()
        .map(|pair| load_pair(pair, &provider).map(Arc::new))
        .collect()
}

fn load_pair(pair: &CertificateFiles, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let chain = read_chain(&pair.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&pair.key_file).map_err(|err| {
        format!(
            "{}: no usable private key (PEM PKCS#8, PKCS#1 or SEC1): {err}",
            pair.key_file.display()
        )
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|err| {
        format!(
            "{} with {}: {err}",
            pair.cert_file.display(),
            pair.key_file.display()
        )
    })
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|err| format!("{}: {err}", path.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()));
    }
    Ok(chain)
}

/// The first certificate valid for the client's SNI name, else the default (the first).
#[derive(Debug)]
struct SniResolver {
    store: Arc<CertStore>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let keys = self.store.keys.load();
        let wanted = hello
            .server_name()
            .and_then(|name| ServerName::try_from(name.to_owned()).ok());
        if let Some(name) = wanted {
            let matching = keys.iter().find(|key| {
                key.end_entity_cert().is_ok_and(|cert| {
                    webpki::EndEntityCert::try_from(cert)
                        .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(&name).is_ok())
                })
            });
            if let Some(key) = matching {
                return Some(key.clone());
            }
        }
        keys.first().cloned()
    }
}
