//! Token providers: where an account's token comes from at login and at each renewal.
//!
//! - [`StaticToken`]: one fixed token (tests, short runs).
//! - [`GeneratedToken`]: mints a Token04 per call from app id and server secret (development,
//!   load tests; the secret then lives in this process).
//! - [`HttpTokenProvider`]: asks an HTTP endpoint (the production shape: the app's own token
//!   server). The reference server's `POST /admin/tokens` answers the same JSON.
//!
//! The futures are not `Send`: they run on the arbiter of whoever asks (an account, the
//! renewal service). No token, secret or bearer ever reaches a log line or an error text.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::protocol::{ErrorCode, Secret, ZimError};
use crate::tls::{ClientCache, ClientTrust};
use crate::token::token04::{self, TokenError};
use crate::token::TokenProvider;

type TokenFuture = Pin<Box<dyn Future<Output = Result<Secret, ZimError>> + 'static>>;

/// Always the same token.
#[derive(Debug, Clone)]
pub struct StaticToken(pub Secret);

impl TokenProvider for StaticToken {
    fn token(&self, _user_id: &str) -> TokenFuture {
        let token = self.0.clone();
        Box::pin(async move { Ok(token) })
    }
}

/// Mints a Token04 (GCM) per call from the app id and the 32-character server secret,
/// valid `ttl_secs` from the moment of the call. A wrong secret length fails every call with
/// 6000001; check it once with [`GeneratedToken::new`].
#[derive(Debug, Clone)]
pub struct GeneratedToken {
    /// The application id the tokens are for.
    pub app_id: u32,
    /// The 32-character server secret.
    pub server_secret: Secret,
    /// Lifetime of each token, seconds.
    pub ttl_secs: u64,
}

impl GeneratedToken {
    /// A generator whose secret has been checked (it must be 32 bytes).
    pub fn new(app_id: u32, server_secret: Secret, ttl_secs: u64) -> Result<Self, TokenError> {
        let len = server_secret.expose().len();
        if len != token04::SECRET_LEN {
            return Err(TokenError::SecretLength(len));
        }
        Ok(Self {
            app_id,
            server_secret,
            ttl_secs,
        })
    }

    /// A token for `user_id` now (the same as the provider call, without a future).
    pub fn mint(&self, user_id: &str) -> Result<Secret, ZimError> {
        let ttl = i64::try_from(self.ttl_secs).unwrap_or(i64::MAX);
        token04::generate(self.app_id, user_id, &self.server_secret, ttl)
            .map_err(|e| ZimError::new(e.code(), e.to_string()))
    }
}

impl TokenProvider for GeneratedToken {
    fn token(&self, user_id: &str) -> TokenFuture {
        let minted = self.mint(user_id);
        Box::pin(async move { minted })
    }
}

/// Largest reply body the HTTP provider reads (a token is a few hundred bytes).
const MAX_REPLY_BYTES: usize = 64 * 1024;

/// Asks an HTTP endpoint for a token: `POST url` with `{"user_id": "...", "ttl_secs": n}`
/// (`ttl_secs` only when set) and `Authorization: Bearer ...` when `bearer` is set; expects
/// `{"token": "...", "expire_at": n}` with a 2xx status.
///
/// Failures: 6000104 for a connection error or a non-2xx status, 6000105 when no complete
/// reply arrives within `timeout`, 6000103 for a reply that is not that JSON (or has an empty
/// token), 6000001 for a URL that cannot be parsed. `http://` and `https://` (rustls: the
/// public webpki roots plus the CA of `trust`'s `ca_file`, docs/tls.md; a refused
/// certificate is 6000104 with "certificate" and the reason in the message).
#[derive(Debug, Clone)]
pub struct HttpTokenProvider {
    /// The token endpoint (`http://` or `https://`).
    pub url: String,
    /// Sent as `Authorization: Bearer`, when set.
    pub bearer: Option<Secret>,
    /// Lifetime asked for, seconds (the endpoint decides when unset).
    pub ttl_secs: Option<u64>,
    /// Deadline of one whole call: connect, request, reply body.
    pub timeout: Duration,
    /// Whom an `https://` endpoint may be (the same trust as the fleet's backend).
    pub trust: ClientTrust,
}

impl HttpTokenProvider {
    /// A provider without bearer or ttl and a 5 s deadline.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            bearer: None,
            ttl_secs: None,
            timeout: Duration::from_secs(5),
            trust: ClientTrust::public_roots(),
        }
    }
}

#[derive(Serialize)]
struct TokenRequest<'a> {
    user_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl_secs: Option<u64>,
}

#[derive(Deserialize)]
struct TokenReply {
    token: Secret,
    #[allow(dead_code)] // part of the reply's contract; the account reads expiry from the token
    expire_at: i64,
}

thread_local! {
    /// One awc client per thread and trust: it is `Rc`-based and must not cross arbiters.
    static HTTP_CLIENTS: ClientCache = const { ClientCache::new() };
}

fn http_client(trust: &ClientTrust) -> awc::Client {
    HTTP_CLIENTS.with(|clients| {
        clients.get(trust, |tls| {
            // HTTP/1.1 by the trust's ALPN (awc's `max_http_version` would replace the
            // connector's TLS, and with it the `ca_file`).
            awc::Client::builder()
                .disable_redirects()
                .connector(awc::Connector::new().rustls_0_23(tls))
                .finish()
        })
    })
}

impl TokenProvider for HttpTokenProvider {
    fn token(&self, user_id: &str) -> TokenFuture {
        let url = self.url.clone();
        let bearer = self.bearer.clone();
        let ttl_secs = self.ttl_secs;
        let timeout = self.timeout;
        let user_id = user_id.to_owned();
        let trust = self.trust.clone();
        Box::pin(async move {
            let call = fetch_token(url, bearer, ttl_secs, timeout, user_id, trust);
            match actix_rt::time::timeout(timeout, call).await {
                Ok(result) => result,
                Err(_elapsed) => Err(ZimError::new(
                    ErrorCode::TIMEOUT,
                    format!(
                        "token endpoint gave no reply within {} ms",
                        timeout.as_millis()
                    ),
                )),
            }
        })
    }
}

async fn fetch_token(
    url: String,
    bearer: Option<Secret>,
    ttl_secs: Option<u64>,
    timeout: Duration,
    user_id: String,
    trust: ClientTrust,
) -> Result<Secret, ZimError> {
    let uri: awc::http::Uri = url
        .parse()
        .ok()
        .filter(|uri: &awc::http::Uri| uri.scheme().is_some() && uri.host().is_some())
        .ok_or_else(|| {
            ZimError::new(
                ErrorCode::INVALID_PARAMETER,
                "token endpoint URL is not an absolute http:// or https:// URL",
            )
        })?;
    let mut request = http_client(&trust).post(uri).timeout(timeout);
    if let Some(bearer) = &bearer {
        let mut value =
            awc::http::header::HeaderValue::from_str(&format!("Bearer {}", bearer.expose()))
                .map_err(|_| {
                    ZimError::new(
                        ErrorCode::INVALID_PARAMETER,
                        "token endpoint bearer is not a valid header value",
                    )
                })?;
        value.set_sensitive(true);
        request = request.insert_header((awc::http::header::AUTHORIZATION, value));
    }
    let body = TokenRequest {
        user_id: &user_id,
        ttl_secs,
    };
    let mut response = request.send_json(&body).await.map_err(send_error)?;
    let status = response.status();
    if !status.is_success() {
        return Err(ZimError::new(
            ErrorCode::NETWORK_ERROR,
            format!("token endpoint answered HTTP {}", status.as_u16()),
        ));
    }
    let bytes = response
        .body()
        .limit(MAX_REPLY_BYTES)
        .await
        .map_err(|e| match e {
            awc::error::PayloadError::Overflow => ZimError::new(
                ErrorCode::TOKEN_INVALID,
                format!("token endpoint reply is larger than {MAX_REPLY_BYTES} bytes"),
            ),
            other => ZimError::new(
                ErrorCode::NETWORK_ERROR,
                format!("token endpoint reply was cut off: {other}"),
            ),
        })?;
    parse_reply(&bytes)
}

/// The reply's token, or 6000103. serde's own message is not used: it may quote the body.
fn parse_reply(bytes: &[u8]) -> Result<Secret, ZimError> {
    let reply: TokenReply = serde_json::from_slice(bytes).map_err(|e| {
        ZimError::new(
            ErrorCode::TOKEN_INVALID,
            format!(
                "token endpoint reply is not {{\"token\": string, \"expire_at\": integer}} JSON \
                 ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            ),
        )
    })?;
    if reply.token.is_empty() {
        return Err(ZimError::new(
            ErrorCode::TOKEN_INVALID,
            "token endpoint reply has an empty token",
        ));
    }
    Ok(reply.token)
}

fn send_error(error: awc::error::SendRequestError) -> ZimError {
    use awc::error::{ConnectError, SendRequestError};
    match error {
        SendRequestError::Timeout | SendRequestError::Connect(ConnectError::Timeout) => {
            ZimError::new(ErrorCode::TIMEOUT, format!("token endpoint: {error}"))
        }
        SendRequestError::Url(_) | SendRequestError::Http(_) => ZimError::new(
            ErrorCode::INVALID_PARAMETER,
            format!("token endpoint URL is invalid: {error}"),
        ),
        SendRequestError::Connect(ConnectError::Io(io)) => {
            match crate::tls::certificate_rejection(&io) {
                Some(reason) => ZimError::new(
                    ErrorCode::NETWORK_ERROR,
                    format!("token endpoint: {reason}"),
                ),
                None => ZimError::new(ErrorCode::NETWORK_ERROR, format!("token endpoint: {io}")),
            }
        }
        other => ZimError::new(ErrorCode::NETWORK_ERROR, format!("token endpoint: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn static_token_is_always_the_same() {
        let provider = StaticToken(Secret::from("04abc"));
        assert_eq!(provider.token("u1").await.unwrap().expose(), "04abc");
        assert_eq!(provider.token("u2").await.unwrap().expose(), "04abc");
    }

    const SECRET: &str = "fa94dd0f974cf2e293728a526b028271";

    #[actix_rt::test]
    async fn generated_tokens_verify_with_the_secret() {
        let provider = GeneratedToken::new(7, Secret::from(SECRET), 3600).unwrap();
        let token = provider.token("alice").await.unwrap();
        let claims = token04::verify(token.expose(), &Secret::from(SECRET)).unwrap();
        assert_eq!((claims.app_id, claims.user_id.as_str()), (7, "alice"));
        assert_eq!(claims.expire - claims.ctime, 3600);
        let other = provider.token("alice").await.unwrap();
        assert_ne!(token, other, "each call mints a fresh token");
    }

    #[actix_rt::test]
    async fn a_short_secret_is_refused() {
        let err = GeneratedToken::new(7, Secret::from("short"), 3600).unwrap_err();
        assert_eq!(err, TokenError::SecretLength(5));
        let unchecked = GeneratedToken {
            app_id: 7,
            server_secret: Secret::from("short"),
            ttl_secs: 3600,
        };
        let err = unchecked.token("alice").await.unwrap_err();
        assert_eq!(err.code, ErrorCode::INVALID_PARAMETER);
        assert_eq!(err.msg, "server secret must be 32 bytes, got 5");
    }

    #[test]
    fn reply_parsing_never_quotes_the_body() {
        let ok = parse_reply(br#"{"token":"04xyz","expire_at":5}"#).unwrap();
        assert_eq!(ok.expose(), "04xyz");

        let err = parse_reply(br#"{"token":"04leaky","expire_at":"04leaky"}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::TOKEN_INVALID);
        assert!(!err.msg.contains("leaky"), "{}", err.msg);

        let err = parse_reply(b"not json").unwrap_err();
        assert_eq!(err.code, ErrorCode::TOKEN_INVALID);

        let err = parse_reply(br#"{"token":"","expire_at":5}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::TOKEN_INVALID);
        assert_eq!(err.msg, "token endpoint reply has an empty token");
    }

    #[actix_rt::test]
    async fn unreachable_endpoint_is_a_network_error() {
        // Port 9 on loopback: nothing listens (connection refused).
        let provider = HttpTokenProvider::new("http://127.0.0.1:9/token");
        let err = provider.token("u1").await.unwrap_err();
        assert_eq!(err.code, ErrorCode::NETWORK_ERROR, "{err}");
    }

    #[actix_rt::test]
    async fn bad_url_is_an_invalid_parameter() {
        let provider = HttpTokenProvider::new("not a url");
        let err = provider.token("u1").await.unwrap_err();
        assert_eq!(err.code, ErrorCode::INVALID_PARAMETER, "{err}");
        assert_eq!(
            err.msg,
            "token endpoint URL is not an absolute http:// or https:// URL"
        );
    }

    #[actix_rt::test]
    async fn silent_endpoint_times_out() {
        // A listener that accepts and never answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let provider = HttpTokenProvider {
            timeout: Duration::from_millis(150),
            ..HttpTokenProvider::new(format!("http://{addr}/token"))
        };
        let started = std::time::Instant::now();
        let err = provider.token("u1").await.unwrap_err();
        assert_eq!(err.code, ErrorCode::TIMEOUT, "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(listener);
    }
}
