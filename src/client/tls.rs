//! TLS for `wss://` backends and `https://` token endpoints (rustls with ring, webpki roots).

/// Installs ring as the process's rustls crypto provider, once. awc's connector panics when
/// it is built without one, so every place that builds an awc client calls this first.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means another part of the process installed a provider first: that one serves.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// A `wss://` URL goes through a TLS handshake: against a plain TCP listener that handshake
    /// fails with an error (no panic for a missing crypto provider, no hang).
    #[actix_rt::test]
    async fn wss_reaches_a_tls_handshake() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            // answer the ClientHello with plain text, then close
            if let Ok((mut s, _)) = listener.accept() {
                use std::io::Write;
                let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
            }
        });
        let url = format!("wss://localhost:{}/ws", addr.port());
        let result = super::super::connection::open(url, Duration::from_secs(5)).await;
        let err = result
            .err()
            .expect("a plain TCP peer cannot complete a TLS handshake");
        assert!(!err.to_string().contains("timed out"), "{err}");
    }
}
