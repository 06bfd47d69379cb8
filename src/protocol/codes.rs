//! ZIM error codes (ZIM-SEMANTICS.md section 5): a typed value that carries its number.

use serde::{Deserialize, Serialize};

/// A ZIM error code. `0` means success on the wire; every other value is an error number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ErrorCode(pub u32);

macro_rules! codes {
    ($($(#[$m:meta])* $name:ident = $num:expr, $text:expr;)+) => {
        impl ErrorCode {
            $($(#[$m])* pub const $name: ErrorCode = ErrorCode($num);)+

            /// Every code this version names, for docs and tests.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode($num)),+];

            /// A short English description (the ZIM meaning).
            pub const fn description(self) -> &'static str {
                match self.0 {
                    0 => "success",
                    $($num => $text,)+
                    _ => "unknown error code",
                }
            }

            /// The constant's name, e.g. `NOT_LOGGED_IN`.
            pub const fn name(self) -> &'static str {
                match self.0 {
                    0 => "SUCCESS",
                    $($num => stringify!($name),)+
                    _ => "UNKNOWN",
                }
            }
        }
    };
}

codes! {
    INVALID_PARAMETER = 6000001, "invalid parameter";
    CLIENT_FREQUENCY_LIMIT = 6000004, "client-side frequency limit";
    SERVER_FREQUENCY_LIMIT = 6000005, "server-side frequency limit";
    SERVER_INTERNAL = 6000007, "server internal error";
    TOKEN_INVALID = 6000103, "token invalid";
    NETWORK_ERROR = 6000104, "network error";
    TIMEOUT = 6000105, "request timed out";
    TOKEN_EXPIRED = 6000106, "token expired";
    TOKEN_VERSION = 6000107, "token version wrong";
    TOKEN_TOO_SHORT_LIFETIME = 6000108, "token lifetime too short (< 30 s)";
    TOKEN_TOO_LONG_LIFETIME = 6000109, "token lifetime too long (> 24 days)";
    LOGGED_IN_AS_OTHER_USER = 6000111, "login as another user while logged in";
    NOT_LOGGED_IN = 6000121, "not logged in";
    MESSAGE_TARGET_NOT_EXIST = 6000204, "message target does not exist";
    ROOM_CREATE_FAILED = 6000303, "create room failed";
    ROOM_ENTER_FAILED = 6000304, "join or enter room failed";
    ROOM_LEAVE_FAILED = 6000306, "leave room failed";
    ALREADY_IN_ROOM = 6000320, "already in the room";
    NOT_IN_ROOM = 6000321, "not in the room";
    ROOM_NOT_EXIST = 6000322, "room does not exist";
    ROOM_ALREADY_EXISTS = 6000323, "room already exists";
    ROOM_LIMIT = 6000325, "joined-rooms limit reached";
    ROOM_CONNECTING = 6000326, "room is still connecting";
}

impl ErrorCode {
    /// Success on the wire.
    pub const OK: ErrorCode = ErrorCode(0);

    /// The number, as ZIM documents it.
    pub const fn number(self) -> u32 {
        self.0
    }

    /// Whether the code is success (0).
    pub const fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// Whether a retry of the same call may succeed (network and timeout).
    pub const fn is_retryable(self) -> bool {
        matches!(self.0, 6000104 | 6000105)
    }
}

impl std::fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.0, self.description())
    }
}

/// A ZIM error as a value: the code plus a human message. Every layer that answers a caller
/// with a ZIM outcome uses this, so a bot can match on `err.code`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("ZIM error {code}: {msg}")]
pub struct ZimError {
    pub code: ErrorCode,
    pub msg: String,
}

impl ZimError {
    pub fn new(code: ErrorCode, msg: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
        }
    }

    /// The error with the code's own description as message.
    pub fn from_code(code: ErrorCode) -> Self {
        Self::new(code, code.description())
    }
}

impl From<ErrorCode> for ZimError {
    fn from(code: ErrorCode) -> Self {
        Self::from_code(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_exact() {
        assert_eq!(ErrorCode::NOT_LOGGED_IN.number(), 6000121);
        assert_eq!(ErrorCode::ROOM_CONNECTING.number(), 6000326);
        assert_eq!(ErrorCode::TOKEN_TOO_LONG_LIFETIME.number(), 6000109);
        assert_eq!(ErrorCode::ALL.len(), 23);
        assert_eq!(
            serde_json::to_string(&ErrorCode::NOT_IN_ROOM).unwrap(),
            "6000321"
        );
        assert_eq!(format!("{:?}", ErrorCode::TIMEOUT), "TIMEOUT(6000105)");
        assert!(ErrorCode::TIMEOUT.is_retryable());
        assert!(!ErrorCode::TOKEN_EXPIRED.is_retryable());
    }
}
