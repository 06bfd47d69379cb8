//! Token04: the ZEGO token format (docs/zim-semantics.md section 4).
//!
//! `"04"` + standard base64 (with padding) of, all integers big-endian:
//! - GCM (current): `expire i64 | nonce_len u16 (12) | nonce | ct_len u16 | ciphertext+tag | mode u8 (1)`
//! - CBC (legacy):  `expire i64 | iv_len u16 (16) | iv | ct_len u16 | ciphertext (PKCS#7)`
//!
//! The key is the 32-character server secret's own bytes (AES-256). The plaintext is compact
//! JSON `{"app_id","user_id","nonce","ctime","expire","payload"}`; it is parsed, never compared
//! byte for byte, because generators order the fields differently.
//!
//! The client never decrypts: [`read_expiry`](crate::token::token04::read_expiry) and
//! [`client_check`](crate::token::token04::client_check) read only the clear header.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::Aes256Gcm;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use cbc::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

use crate::protocol::{ErrorCode, Secret};

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// The version prefix of every Token04.
pub const PREFIX: &str = "04";
/// Length of the server secret (AES-256 key bytes).
pub const SECRET_LEN: usize = 32;
/// GCM nonce length.
pub const GCM_NONCE_LEN: usize = 12;
/// CBC IV length.
pub const CBC_IV_LEN: usize = 16;
/// Trailing mode byte of the GCM layout.
const MODE_GCM: u8 = 1;
/// Shortest token a client accepts (ZIM: shorter is 6000103).
pub const MIN_TOKEN_CHARS: usize = 31;

/// What a Token04 says. Field order is the interop vectors' JSON order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The application id.
    pub app_id: u32,
    /// The user id.
    pub user_id: String,
    /// A random nonce.
    pub nonce: i32,
    /// Unix seconds when the token was made.
    pub ctime: i64,
    /// Unix seconds when the token expires.
    pub expire: i64,
    /// Application payload (empty here).
    #[serde(default)]
    pub payload: String,
}

/// Which cipher layout a token uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// AES-256-GCM, 12-byte nonce, trailing mode byte 1 (current).
    Gcm,
    /// AES-256-CBC, 16-byte IV, PKCS#7 (legacy, still accepted).
    Cbc,
}

/// Why a token could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Shorter than 31 characters (6000103).
    #[error("token shorter than {MIN_TOKEN_CHARS} characters")]
    TooShort,
    /// Not version "04" (6000107).
    #[error("token version is not \"04\"")]
    Version,
    /// Not base64.
    #[error("token is not valid base64")]
    Base64,
    /// The bytes are not laid out as Token04.
    #[error("token layout is malformed: {0}")]
    Layout(&'static str),
    /// The server secret has the wrong length.
    #[error("server secret must be {SECRET_LEN} bytes, got {0}")]
    SecretLength(usize),
    /// The nonce or IV has the wrong length.
    #[error("nonce or iv must be {expected} bytes, got {got}")]
    NonceLength {
        /// The length it must have.
        expected: usize,
        /// The length it has.
        got: usize,
    },
    /// Does not decrypt with this secret.
    #[error("token does not decrypt with this secret")]
    Decrypt,
    /// The claims are not the JSON Token04 carries.
    #[error("token claims are not valid JSON")]
    Claims,
    /// The expiry in the header and in the claims differ.
    #[error("token header expiry and claims expiry differ")]
    ExpiryMismatch,
}

impl TokenError {
    /// The ZIM code a caller answers with.
    pub fn code(&self) -> ErrorCode {
        match self {
            TokenError::Version => ErrorCode::TOKEN_VERSION,
            TokenError::SecretLength(_) | TokenError::NonceLength { .. } => {
                ErrorCode::INVALID_PARAMETER
            }
            _ => ErrorCode::TOKEN_INVALID,
        }
    }
}

/// Client-side lifetime rules (docs/zim-semantics.md section 4). Tests shorten them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientTokenLimits {
    /// Less than this left: 6000108. Default 30 s.
    pub min_lifetime_secs: i64,
    /// More than this away: 6000109. Default 24 days.
    pub max_lifetime_secs: i64,
}

impl Default for ClientTokenLimits {
    fn default() -> Self {
        Self {
            min_lifetime_secs: 30,
            max_lifetime_secs: 24 * 24 * 3600,
        }
    }
}

/// Unix seconds now, from the crate's one clock.
fn now_unix() -> i64 {
    i64::try_from(crate::clock::unix_secs()).unwrap_or(i64::MAX)
}

fn key_bytes(secret: &Secret) -> Result<&[u8], TokenError> {
    let key = secret.expose().as_bytes();
    if key.len() != SECRET_LEN {
        return Err(TokenError::SecretLength(key.len()));
    }
    Ok(key)
}

/// A fresh GCM token for `user_id`: random nonce (both the claims nonce and the cipher
/// nonce), made now, expiring `ttl_secs` from now.
pub fn generate(
    app_id: u32,
    user_id: &str,
    secret: &Secret,
    ttl_secs: i64,
) -> Result<Secret, TokenError> {
    let mut rng = rand::thread_rng();
    let now = now_unix();
    let claims = Claims {
        app_id,
        user_id: user_id.to_owned(),
        nonce: rng.gen(),
        ctime: now,
        expire: now.saturating_add(ttl_secs),
        payload: String::new(),
    };
    let mut nonce = [0u8; GCM_NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    encode(&claims, secret, Layout::Gcm, &nonce).map(Secret::new)
}

/// Builds a token deterministically from its parts (rebuilds the interop vectors byte for
/// byte). `nonce_or_iv` is 12 bytes for GCM, 16 for CBC.
pub fn encode(
    claims: &Claims,
    secret: &Secret,
    layout: Layout,
    nonce_or_iv: &[u8],
) -> Result<String, TokenError> {
    let key = key_bytes(secret)?;
    let expected = match layout {
        Layout::Gcm => GCM_NONCE_LEN,
        Layout::Cbc => CBC_IV_LEN,
    };
    if nonce_or_iv.len() != expected {
        return Err(TokenError::NonceLength {
            expected,
            got: nonce_or_iv.len(),
        });
    }
    let plaintext = serde_json::to_vec(claims).map_err(|_| TokenError::Claims)?;
    let ciphertext = match layout {
        Layout::Gcm => {
            let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| TokenError::Decrypt)?;
            cipher
                .encrypt(
                    aes_gcm::Nonce::from_slice(nonce_or_iv),
                    plaintext.as_slice(),
                )
                .map_err(|_| TokenError::Decrypt)?
        }
        Layout::Cbc => Aes256CbcEnc::new_from_slices(key, nonce_or_iv)
            .map_err(|_| TokenError::Decrypt)?
            .encrypt_padded_vec_mut::<Pkcs7>(&plaintext),
    };
    let ct_len = u16::try_from(ciphertext.len()).map_err(|_| TokenError::Layout("too long"))?;
    let mut bytes = Vec::with_capacity(8 + 2 + expected + 2 + ciphertext.len() + 1);
    bytes.extend_from_slice(&claims.expire.to_be_bytes());
    bytes.extend_from_slice(&(expected as u16).to_be_bytes());
    bytes.extend_from_slice(nonce_or_iv);
    bytes.extend_from_slice(&ct_len.to_be_bytes());
    bytes.extend_from_slice(&ciphertext);
    if layout == Layout::Gcm {
        bytes.push(MODE_GCM);
    }
    let mut token = String::with_capacity(2 + bytes.len() * 4 / 3 + 4);
    token.push_str(PREFIX);
    BASE64.encode_string(&bytes, &mut token);
    Ok(token)
}

/// The clear parts of a token.
struct Parsed<'a> {
    expire: i64,
    layout: Layout,
    nonce: &'a [u8],
    ciphertext: &'a [u8],
}

fn decode_body(token: &str) -> Result<Vec<u8>, TokenError> {
    let body = token.strip_prefix(PREFIX).ok_or(TokenError::Version)?;
    BASE64.decode(body).map_err(|_| TokenError::Base64)
}

fn take<'a>(bytes: &mut &'a [u8], n: usize, what: &'static str) -> Result<&'a [u8], TokenError> {
    if bytes.len() < n {
        return Err(TokenError::Layout(what));
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Ok(head)
}

fn be_u16(b: &[u8]) -> usize {
    u16::from_be_bytes([b[0], b[1]]) as usize
}

fn parse(bytes: &[u8]) -> Result<Parsed<'_>, TokenError> {
    let mut rest = bytes;
    let expire_bytes = take(&mut rest, 8, "no expiry")?;
    let expire = i64::from_be_bytes(
        expire_bytes
            .try_into()
            .map_err(|_| TokenError::Layout("no expiry"))?,
    );
    let nonce_len = be_u16(take(&mut rest, 2, "no nonce length")?);
    let layout = match nonce_len {
        GCM_NONCE_LEN => Layout::Gcm,
        CBC_IV_LEN => Layout::Cbc,
        _ => return Err(TokenError::Layout("nonce length is neither 12 nor 16")),
    };
    let nonce = take(&mut rest, nonce_len, "nonce cut short")?;
    let ct_len = be_u16(take(&mut rest, 2, "no ciphertext length")?);
    let ciphertext = take(&mut rest, ct_len, "ciphertext cut short")?;
    match (layout, rest) {
        (Layout::Gcm, [MODE_GCM]) | (Layout::Cbc, []) => {}
        _ => return Err(TokenError::Layout("unexpected trailing bytes")),
    }
    Ok(Parsed {
        expire,
        layout,
        nonce,
        ciphertext,
    })
}

/// Decrypts and parses a token (either layout). Checks only the cryptography and that the
/// clear expiry matches the encrypted one; app, user and time checks are the caller's.
pub fn verify(token: &str, secret: &Secret) -> Result<Claims, TokenError> {
    let key = key_bytes(secret)?;
    let bytes = decode_body(token)?;
    let parsed = parse(&bytes)?;
    let plaintext = match parsed.layout {
        Layout::Gcm => Aes256Gcm::new_from_slice(key)
            .map_err(|_| TokenError::Decrypt)?
            .decrypt(aes_gcm::Nonce::from_slice(parsed.nonce), parsed.ciphertext)
            .map_err(|_| TokenError::Decrypt)?,
        Layout::Cbc => Aes256CbcDec::new_from_slices(key, parsed.nonce)
            .map_err(|_| TokenError::Decrypt)?
            .decrypt_padded_vec_mut::<Pkcs7>(parsed.ciphertext)
            .map_err(|_| TokenError::Decrypt)?,
    };
    let claims: Claims = serde_json::from_slice(&plaintext).map_err(|_| TokenError::Claims)?;
    if claims.expire != parsed.expire {
        return Err(TokenError::ExpiryMismatch);
    }
    Ok(claims)
}

/// The expiry (unix seconds) from the token's clear header, without decrypting.
pub fn read_expiry(token: &str) -> Result<i64, TokenError> {
    let bytes = decode_body(token)?;
    let head: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or(TokenError::Layout("no expiry"))?;
    Ok(i64::from_be_bytes(head))
}

/// The checks a ZIM client makes before sending a token; returns its expiry (unix seconds).
/// Order and codes as docs/zim-semantics.md section 4: 6000103 shorter than 31 characters (or
/// unreadable), 6000107 prefix not "04", 6000106 expired, 6000108 less than
/// `min_lifetime_secs` left, 6000109 more than `max_lifetime_secs` away.
pub fn client_check(
    token: &str,
    now_unix: i64,
    limits: &ClientTokenLimits,
) -> Result<i64, ErrorCode> {
    if token.len() < MIN_TOKEN_CHARS {
        return Err(ErrorCode::TOKEN_INVALID);
    }
    if !token.starts_with(PREFIX) {
        return Err(ErrorCode::TOKEN_VERSION);
    }
    let expire = read_expiry(token).map_err(|e| e.code())?;
    let left = expire.saturating_sub(now_unix);
    if left <= 0 {
        return Err(ErrorCode::TOKEN_EXPIRED);
    }
    if left < limits.min_lifetime_secs {
        return Err(ErrorCode::TOKEN_TOO_SHORT_LIFETIME);
    }
    if left > limits.max_lifetime_secs {
        return Err(ErrorCode::TOKEN_TOO_LONG_LIFETIME);
    }
    Ok(expire)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "fa94dd0f974cf2e293728a526b028271";
    const CBC_VECTOR: &str = "04AAAAAGCLx8AAEGV4bjYybGJva29hOG44anAAcGWCw6utyxH2DEPArGHIW+uFtLMjAbYbXXoL81Y07fsYjfbtTn9mBL4AAO0fjm8DMbN290akErOffxI3bS2rROlLxu31U1EYWuwrtjfcvsHhsPJYAjXPg79+haYqVAor99iA1Z3AWRsqttkYgf/h6+k=";
    const GCM_VECTOR: &str = "04AAAAAGCLx8AADDAxMjM0NTY3ODlhYgBzCyp4BFmXo9vH6W67++pmKSYP/GBrslcVz6p0LJgT/ryXLGlZoAbYSE1TjBsrJ/wnDmG/PTJ4VpLpoHBpx7lf/meMypjYwBLEUfjBkFrD6DO8+X++4ld1ePOxlAUibUcZLDgaUhOZqHRiRn7UQVZga72MeQE=";

    fn vector_claims() -> Claims {
        Claims {
            app_id: 1,
            user_id: "demo".into(),
            nonce: 123456789,
            ctime: 1619769776,
            expire: 1619773376,
            payload: String::new(),
        }
    }

    fn secret() -> Secret {
        Secret::from(SECRET)
    }

    #[test]
    fn cbc_vector_decrypts_and_rebuilds() {
        assert_eq!(verify(CBC_VECTOR, &secret()).unwrap(), vector_claims());
        let rebuilt = encode(
            &vector_claims(),
            &secret(),
            Layout::Cbc,
            b"exn62lbokoa8n8jp",
        )
        .unwrap();
        assert_eq!(rebuilt, CBC_VECTOR);
    }

    #[test]
    fn gcm_vector_decrypts_and_rebuilds() {
        assert_eq!(verify(GCM_VECTOR, &secret()).unwrap(), vector_claims());
        let rebuilt = encode(&vector_claims(), &secret(), Layout::Gcm, b"0123456789ab").unwrap();
        assert_eq!(rebuilt, GCM_VECTOR);
    }

    #[test]
    fn vectors_plaintext_is_the_documented_json() {
        assert_eq!(
            serde_json::to_string(&vector_claims()).unwrap(),
            r#"{"app_id":1,"user_id":"demo","nonce":123456789,"ctime":1619769776,"expire":1619773376,"payload":""}"#
        );
    }

    #[test]
    fn read_expiry_needs_no_secret() {
        assert_eq!(read_expiry(GCM_VECTOR).unwrap(), 1619773376);
        assert_eq!(read_expiry(CBC_VECTOR).unwrap(), 1619773376);
        assert_eq!(read_expiry("05AAAA"), Err(TokenError::Version));
        assert_eq!(read_expiry("04!!!"), Err(TokenError::Base64));
        assert_eq!(read_expiry("04AAAA"), Err(TokenError::Layout("no expiry")));
    }

    #[test]
    fn generate_round_trips() {
        let token = generate(7, "alice", &secret(), 3600).unwrap();
        let claims = verify(token.expose(), &secret()).unwrap();
        assert_eq!((claims.app_id, claims.user_id.as_str()), (7, "alice"));
        assert_eq!(claims.expire - claims.ctime, 3600);
        assert!((claims.ctime - now_unix()).abs() <= 1);
        assert_eq!(read_expiry(token.expose()).unwrap(), claims.expire);
        let other = generate(7, "alice", &secret(), 3600).unwrap();
        assert_ne!(token, other, "nonce must be random");
    }

    #[test]
    fn wrong_secret_and_tampering_are_refused() {
        let other = Secret::from("00000000000000000000000000000000");
        assert_eq!(verify(GCM_VECTOR, &other), Err(TokenError::Decrypt));
        assert_eq!(
            verify(CBC_VECTOR, &other).unwrap_err().code(),
            ErrorCode::TOKEN_INVALID
        );
        assert_eq!(
            verify(GCM_VECTOR, &Secret::from("short")),
            Err(TokenError::SecretLength(5))
        );
        // flip one ciphertext byte of the GCM token: the tag no longer matches
        let mut bytes = BASE64.decode(&GCM_VECTOR[2..]).unwrap();
        bytes[30] ^= 1;
        let tampered = format!("04{}", BASE64.encode(&bytes));
        assert_eq!(verify(&tampered, &secret()), Err(TokenError::Decrypt));
        // change the clear expiry: refused even though the ciphertext is intact
        let mut bytes = BASE64.decode(&GCM_VECTOR[2..]).unwrap();
        bytes[7] ^= 1;
        let moved = format!("04{}", BASE64.encode(&bytes));
        assert_eq!(verify(&moved, &secret()), Err(TokenError::ExpiryMismatch));
        // drop the GCM mode byte
        let mut bytes = BASE64.decode(&GCM_VECTOR[2..]).unwrap();
        bytes.pop();
        let cut = format!("04{}", BASE64.encode(&bytes));
        assert_eq!(
            verify(&cut, &secret()),
            Err(TokenError::Layout("unexpected trailing bytes"))
        );
        assert_eq!(
            verify(&GCM_VECTOR.replacen("04", "03", 1), &secret())
                .unwrap_err()
                .code(),
            ErrorCode::TOKEN_VERSION
        );
    }

    #[test]
    fn encode_refuses_bad_lengths() {
        assert_eq!(
            encode(&vector_claims(), &secret(), Layout::Gcm, b"short"),
            Err(TokenError::NonceLength {
                expected: 12,
                got: 5
            })
        );
        assert_eq!(
            encode(&vector_claims(), &Secret::from("x"), Layout::Cbc, &[0; 16]),
            Err(TokenError::SecretLength(1))
        );
    }

    #[test]
    fn client_check_codes() {
        let limits = ClientTokenLimits::default();
        let expire = 1619773376;
        assert_eq!(client_check(GCM_VECTOR, expire - 3600, &limits), Ok(expire));
        assert_eq!(
            client_check("04short", 0, &limits),
            Err(ErrorCode::TOKEN_INVALID)
        );
        assert_eq!(
            client_check(&GCM_VECTOR.replacen("04", "03", 1), 0, &limits),
            Err(ErrorCode::TOKEN_VERSION)
        );
        assert_eq!(
            client_check(&format!("04{}", "!".repeat(40)), 0, &limits),
            Err(ErrorCode::TOKEN_INVALID)
        );
        assert_eq!(
            client_check(GCM_VECTOR, expire, &limits),
            Err(ErrorCode::TOKEN_EXPIRED)
        );
        assert_eq!(
            client_check(GCM_VECTOR, expire + 1, &limits),
            Err(ErrorCode::TOKEN_EXPIRED)
        );
        assert_eq!(
            client_check(GCM_VECTOR, expire - 29, &limits),
            Err(ErrorCode::TOKEN_TOO_SHORT_LIFETIME)
        );
        assert_eq!(client_check(GCM_VECTOR, expire - 30, &limits), Ok(expire));
        let max = limits.max_lifetime_secs;
        assert_eq!(client_check(GCM_VECTOR, expire - max, &limits), Ok(expire));
        assert_eq!(
            client_check(GCM_VECTOR, expire - max - 1, &limits),
            Err(ErrorCode::TOKEN_TOO_LONG_LIFETIME)
        );
        let short = ClientTokenLimits {
            min_lifetime_secs: 1,
            max_lifetime_secs: 10,
        };
        assert_eq!(client_check(GCM_VECTOR, expire - 2, &short), Ok(expire));
    }
}
