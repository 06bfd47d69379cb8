//! TLS for `wss://` backends and `https://` token endpoints (rustls with ring, webpki roots).
//! A leaf module: the client's transport and the token providers both call it.

/// Installs ring as the process's rustls crypto provider, once. awc's connector panics when
/// it is built without one, so every place that builds an awc client calls this first.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means another part of the process installed a provider first: that one serves.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
