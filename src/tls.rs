//! TLS of both faces (docs/tls.md), rustls with ring throughout. A leaf module.
//!
//! - The client's trust ([`ClientTrust`]): the public webpki roots plus, optionally, the CA
//!   certificates of a `ca_file`, for `wss://` backends and `https://` token endpoints alike.
//! - The reference server's certificate and key ([`server_config`]), read from PEM files.
//! - A rejected server certificate told apart from other connect failures
//!   (`certificate_rejection`), so it can be logged once with its reason.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Installs ring as the process's rustls crypto provider, once. awc's connector panics when
/// it is built without one, so every place that builds an awc client calls this first.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means another part of the process installed a provider first: that one serves.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A TLS file that cannot be used. Every message names the settings key and the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file is missing or cannot be read.
    #[error("{key} ({}): cannot read the file: {source}", path.display())]
    Unreadable {
        /// The settings key that names the file.
        key: String,
        /// The file.
        path: PathBuf,
        /// Why reading failed.
        source: io::Error,
    },
    /// The file holds no PEM item of the kind the key needs.
    #[error("{key} ({}): {what}", path.display())]
    NotPem {
        /// The settings key that names the file.
        key: String,
        /// The file.
        path: PathBuf,
        /// What was looked for and not found.
        what: &'static str,
    },
    /// The PEM item is there but rustls cannot use it.
    #[error("{key} ({}): {reason}", path.display())]
    Unusable {
        /// The settings key that names the file.
        key: String,
        /// The file.
        path: PathBuf,
        /// rustls's reason.
        reason: String,
    },
    /// The private key is not the key of the certificate.
    #[error(
        "{key_key} ({}) does not match the certificate of {cert_key} ({})",
        key_path.display(),
        cert_path.display()
    )]
    KeyMismatch {
        /// The settings key of the private key file.
        key_key: String,
        /// The private key file.
        key_path: PathBuf,
        /// The settings key of the certificate file.
        cert_key: String,
        /// The certificate file.
        cert_path: PathBuf,
    },
}

/// A settings key and the file it names.
#[derive(Debug, Clone, Copy)]
pub struct KeyedFile<'a> {
    /// The settings key, e.g. `server.tls.cert_file`.
    pub key: &'a str,
    /// The file.
    pub path: &'a Path,
}

impl KeyedFile<'_> {
    fn read(&self) -> Result<Vec<u8>, TlsError> {
        std::fs::read(self.path).map_err(|source| TlsError::Unreadable {
            key: self.key.to_owned(),
            path: self.path.to_owned(),
            source,
        })
    }

    fn not_pem(&self, what: &'static str) -> TlsError {
        TlsError::NotPem {
            key: self.key.to_owned(),
            path: self.path.to_owned(),
            what,
        }
    }

    fn unusable(&self, reason: impl fmt::Display) -> TlsError {
        TlsError::Unusable {
            key: self.key.to_owned(),
            path: self.path.to_owned(),
            reason: reason.to_string(),
        }
    }

    /// Every certificate of the PEM file (at least one).
    fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        const NONE: &str = "no PEM certificate (-----BEGIN CERTIFICATE-----) in the file";
        let bytes = self.read()?;
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.unusable(format!("not a PEM certificate file: {e}")))?;
        if certs.is_empty() {
            return Err(self.not_pem(NONE));
        }
        Ok(certs)
    }

    /// The first private key of the PEM file.
    fn private_key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        use rustls::pki_types::pem::Error;
        let bytes = self.read()?;
        PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
            Error::NoItemsFound => {
                self.not_pem("no PEM private key (PKCS#8, PKCS#1 or SEC1) in the file")
            }
            other => self.unusable(format!("not a PEM private key file: {other}")),
        })
    }
}

fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server's TLS configuration from a PEM certificate chain (leaf first) and its PEM
/// private key. Any problem is a [`TlsError`] naming the key and the file.
pub fn server_config(
    cert: KeyedFile<'_>,
    key: KeyedFile<'_>,
) -> Result<rustls::ServerConfig, TlsError> {
    let chain = cert.certificates()?;
    let private_key = key.private_key()?;
    let builder = rustls::ServerConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .map_err(|e| cert.unusable(e))?
        .with_no_client_auth();
    builder
        .with_single_cert(chain, private_key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
                key_key: key.key.to_owned(),
                key_path: key.path.to_owned(),
                cert_key: cert.key.to_owned(),
                cert_path: cert.path.to_owned(),
            },
            rustls::Error::InvalidCertificate(reason) => cert.unusable(reason),
            other => key.unusable(other),
        })
}

/// What a client trusts: the public webpki roots and, when a `ca_file` is set, the CA
/// certificates in it. Cheap to clone; the same trust is used for the backend's `wss://`
/// and the token endpoint's `https://`.
#[derive(Clone)]
pub struct ClientTrust {
    /// Tells trusts apart in the per-thread client caches.
    id: u64,
    ca_file: Option<PathBuf>,
    config: Arc<rustls::ClientConfig>,
}

static NEXT_TRUST_ID: AtomicU64 = AtomicU64::new(1);

impl ClientTrust {
    /// The public webpki roots only (what a client trusts without `ca_file`).
    pub fn public_roots() -> Self {
        static PUBLIC: LazyLock<ClientTrust> = LazyLock::new(|| ClientTrust {
            id: 0,
            ca_file: None,
            config: client_config(public_store()),
        });
        PUBLIC.clone()
    }

    /// The public roots plus every CA certificate of the PEM file `ca_file`; the error names
    /// the settings `key` and the file.
    pub fn with_ca_file(key: &str, ca_file: &Path) -> Result<Self, TlsError> {
        let file = KeyedFile { key, path: ca_file };
        let mut store = public_store();
        for cert in file.certificates()? {
            store
                .add(cert)
                .map_err(|e| file.unusable(format!("not a usable CA certificate: {e}")))?;
        }
        Ok(Self {
            id: NEXT_TRUST_ID.fetch_add(1, Ordering::Relaxed),
            ca_file: Some(ca_file.to_owned()),
            config: client_config(store),
        })
    }

    /// [`ClientTrust::with_ca_file`] when a file is set, the public roots otherwise.
    pub fn from_setting(key: &str, ca_file: Option<&Path>) -> Result<Self, TlsError> {
        match ca_file {
            Some(path) => Self::with_ca_file(key, path),
            None => Ok(Self::public_roots()),
        }
    }

    /// The extra CA file, when one is trusted.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// The rustls configuration for an awc connector (`Connector::rustls_0_23`): this trust,
    /// HTTP/1.1 by ALPN (WebSockets do not run over h2).
    pub fn rustls_config(&self) -> Arc<rustls::ClientConfig> {
        Arc::clone(&self.config)
    }
}

impl Default for ClientTrust {
    fn default() -> Self {
        Self::public_roots()
    }
}

impl fmt::Debug for ClientTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTrust")
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

fn public_store() -> rustls::RootCertStore {
    rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

fn client_config(roots: rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    let mut config = rustls::ClientConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Trusts one thread keeps an awc client for; an older one is dropped beyond this (a
/// settings reload that changes `ca_file` makes a new trust).
const CLIENTS_PER_THREAD: usize = 4;

/// One thread's awc clients, one per [`ClientTrust`] (awc clients are `Rc`-based: they never
/// cross threads). Declare it in a `thread_local!`.
pub(crate) struct ClientCache(RefCell<Vec<(u64, awc::Client)>>);

impl ClientCache {
    /// An empty cache.
    pub const fn new() -> Self {
        Self(RefCell::new(Vec::new()))
    }

    /// This thread's client for `trust`, built by `build` from the trust's rustls
    /// configuration the first time.
    pub fn get(
        &self,
        trust: &ClientTrust,
        build: impl FnOnce(Arc<rustls::ClientConfig>) -> awc::Client,
    ) -> awc::Client {
        let mut clients = self.0.borrow_mut();
        if let Some((_, client)) = clients.iter().find(|(id, _)| *id == trust.id) {
            return client.clone();
        }
        install_crypto_provider();
        let client = build(trust.rustls_config());
        if clients.len() >= CLIENTS_PER_THREAD {
            clients.remove(0);
        }
        clients.push((trust.id, client.clone()));
        client
    }
}

/// Why the server's certificate was refused, when that is what `error` says; `None` for
/// every other failure. The text says "certificate" and the reason.
pub(crate) fn certificate_rejection(error: &io::Error) -> Option<String> {
    let rustls_error = error.get_ref()?.downcast_ref::<rustls::Error>()?;
    let reason = match rustls_error {
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => {
            "certificate issued by a CA the client does not trust (UnknownIssuer): \
             set ca_file to the CA that signed it"
                .to_owned()
        }
        rustls::Error::InvalidCertificate(reason) => reason.to_string(),
        rustls::Error::NoCertificatesPresented => "the server sent no certificate".to_owned(),
        _ => return None,
    };
    let reason = if reason.contains("certificate") {
        reason
    } else {
        format!("certificate rejected: {reason}")
    };
    Some(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory with a CA-signed certificate and key for 127.0.0.1, and another key.
    fn files(name: &str) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("zimfleet-tls-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        let paths = (
            dir.join("ca.crt"),
            dir.join("server.crt"),
            dir.join("server.key"),
            dir.join("other.key"),
        );
        std::fs::write(&paths.0, ca_cert.pem()).unwrap();
        std::fs::write(&paths.1, cert.pem()).unwrap();
        std::fs::write(&paths.2, key.serialize_pem()).unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        std::fs::write(&paths.3, other.serialize_pem()).unwrap();
        paths
    }

    fn keyed<'a>(key: &'a str, path: &'a Path) -> KeyedFile<'a> {
        KeyedFile { key, path }
    }

    #[test]
    fn server_files_row_by_row() {
        let (ca, cert, key, other) = files("server");
        let missing = cert.with_file_name("missing.pem");
        let ok = server_config(keyed("c", &cert), keyed("k", &key));
        assert!(ok.is_ok(), "{:?}", ok.err());
        let rows: [(&Path, &Path, String); 4] = [
            (
                &missing,
                &key,
                format!(
                    "c ({}): cannot read the file: No such file or directory (os error 2)",
                    missing.display()
                ),
            ),
            (
                &key,
                &key,
                format!(
                    "c ({}): no PEM certificate (-----BEGIN CERTIFICATE-----) in the file",
                    key.display()
                ),
            ),
            (
                &cert,
                &ca,
                format!(
                    "k ({}): no PEM private key (PKCS#8, PKCS#1 or SEC1) in the file",
                    ca.display()
                ),
            ),
            (
                &cert,
                &other,
                format!(
                    "k ({}) does not match the certificate of c ({})",
                    other.display(),
                    cert.display()
                ),
            ),
        ];
        for (c, k, message) in rows {
            let error = server_config(keyed("c", c), keyed("k", k)).unwrap_err();
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn a_ca_file_adds_to_the_public_roots_and_prints_only_its_path() {
        let (ca, _, key, _) = files("trust");
        let trust = ClientTrust::with_ca_file("ca_file", &ca).unwrap();
        assert_eq!(trust.ca_file(), Some(ca.as_path()));
        assert_ne!(trust.id, ClientTrust::public_roots().id);
        assert_eq!(
            format!("{trust:?}"),
            format!("ClientTrust {{ ca_file: Some({ca:?}) }}")
        );
        assert_eq!(ClientTrust::from_setting("ca_file", None).unwrap().id, 0);
        let error = ClientTrust::with_ca_file("ca_file", &key).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "ca_file ({}): no PEM certificate (-----BEGIN CERTIFICATE-----) in the file",
                key.display()
            )
        );
    }

    #[test]
    fn only_certificate_errors_are_told_apart() {
        let tls = |e: rustls::Error| io::Error::new(io::ErrorKind::InvalidData, e);
        let unknown = tls(rustls::CertificateError::UnknownIssuer.into());
        assert_eq!(
            certificate_rejection(&unknown).as_deref(),
            Some(
                "certificate issued by a CA the client does not trust (UnknownIssuer): set \
                 ca_file to the CA that signed it"
            )
        );
        let expired = tls(rustls::CertificateError::Expired.into());
        assert_eq!(
            certificate_rejection(&expired).as_deref(),
            Some("certificate rejected: Expired")
        );
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(certificate_rejection(&refused), None);
        let alert = tls(rustls::Error::AlertReceived(
            rustls::AlertDescription::HandshakeFailure,
        ));
        assert_eq!(certificate_rejection(&alert), None);
    }

    #[actix_rt::test]
    async fn a_thread_keeps_a_client_per_trust_and_at_most_a_few() {
        let (ca, ..) = files("cache");
        let cache = ClientCache::new();
        let mut built = 0;
        let public = ClientTrust::public_roots();
        for _ in 0..3 {
            cache.get(&public, |_| {
                built += 1;
                awc::Client::default()
            });
        }
        assert_eq!(built, 1, "one client per trust");
        for _ in 0..CLIENTS_PER_THREAD + 2 {
            let trust = ClientTrust::with_ca_file("ca_file", &ca).unwrap();
            cache.get(&trust, |_| awc::Client::default());
        }
        assert_eq!(cache.0.borrow().len(), CLIENTS_PER_THREAD);
    }
}
