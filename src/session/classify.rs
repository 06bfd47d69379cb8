//! The one table that says, for every way a link can end, whether the account retries
//! (transient) or stops for good (terminal, with the ZIM event it reports).

use crate::protocol::{close_code, ConnectionEvent, ErrorCode, KickoutReason};

/// Why a link ended or a login failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectCause {
    /// The socket failed: reset, read error, protocol error, stream ended without a close.
    SocketError,
    /// Connecting failed: refused, DNS, handshake, connect timeout, or a chaos outage.
    ConnectFailed,
    /// The server closed the socket with this close code (None: no code given).
    Closed(Option<u16>),
    /// Our heartbeat went unanswered for the heartbeat timeout.
    HeartbeatTimeout,
    /// The server's kickout push.
    Kickout(KickoutReason),
    /// The login (or re-login) reply was an error, or it timed out (6000105).
    LoginRejected(ErrorCode),
    /// The token was not renewed in time (local timer at expire - margin).
    TokenNotRenewed,
    /// Reconnecting for longer than the configured retry window.
    RetryWindowExhausted,
    /// logout() was called.
    Logout,
}

/// What a cause means for the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Retry on the schedule.
    Transient,
    /// Stop for good with (Disconnected, event).
    Terminal(ConnectionEvent),
}

impl DisconnectCause {
    /// The table (docs/zim-semantics.md section 2 and PROTOCOL.md close codes).
    pub fn disposition(&self) -> Disposition {
        use ConnectionEvent as E;
        use Disposition::{Terminal, Transient};
        match self {
            Self::SocketError | Self::ConnectFailed | Self::HeartbeatTimeout => Transient,
            Self::Closed(Some(close_code::KICKED_OUT)) => Terminal(E::KickedOut),
            Self::Closed(Some(close_code::TOKEN_EXPIRED)) => Terminal(E::TokenExpired),
            Self::Closed(Some(close_code::UNREGISTERED)) => Terminal(E::Unregistered),
            // 4001 heartbeat timeout, 1000/1001 going away, 1006, 1007/1009 (our own frame
            // was refused: a bug, but the next link may be fine), anything else: retry.
            Self::Closed(_) => Transient,
            Self::Kickout(KickoutReason::TokenExpired) => Terminal(E::TokenExpired),
            Self::Kickout(KickoutReason::Unregistered) => Terminal(E::Unregistered),
            // 4 and any reason this version does not know: the server kicked us; never retry.
            Self::Kickout(_) => Terminal(E::KickedOut),
            Self::LoginRejected(code) => match *code {
                ErrorCode::NETWORK_ERROR
                | ErrorCode::TIMEOUT
                | ErrorCode::SERVER_FREQUENCY_LIMIT
                | ErrorCode::SERVER_INTERNAL => Transient,
                ErrorCode::TOKEN_EXPIRED => Terminal(E::TokenExpired),
                // invalid, wrong version, lifetime, other user, bad parameter, unknown codes:
                // the same login would fail the same way, so no retry loop.
                _ => Terminal(E::LoginInterrupted),
            },
            Self::TokenNotRenewed => Terminal(E::TokenExpired),
            Self::RetryWindowExhausted => Terminal(E::LoginTimeout),
            Self::Logout => Terminal(E::Success),
        }
    }

    /// The extended data sent with the event: `{reason, code?, message}`.
    pub fn ext(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Self::SocketError => json!({"reason": "socket_error", "message": "connection lost"}),
            Self::ConnectFailed => {
                json!({"reason": "connect_failed", "code": ErrorCode::NETWORK_ERROR, "message": "could not connect"})
            }
            Self::Closed(code) => {
                json!({"reason": "closed", "close_code": code, "message": "server closed the connection"})
            }
            Self::HeartbeatTimeout => {
                json!({"reason": "heartbeat_timeout", "message": "heartbeat unanswered"})
            }
            Self::Kickout(r) => {
                json!({"reason": "kickout", "kickout_reason": r, "message": r.name()})
            }
            Self::LoginRejected(code) => {
                json!({"reason": "login_rejected", "code": code, "message": code.description()})
            }
            Self::TokenNotRenewed => {
                json!({"reason": "token_not_renewed", "code": ErrorCode::TOKEN_EXPIRED, "message": "token expired without renewal"})
            }
            Self::RetryWindowExhausted => {
                json!({"reason": "retry_window_exhausted", "message": "gave up reconnecting"})
            }
            Self::Logout => json!({"reason": "logout", "message": "logged out"}),
        }
    }

    /// A short name for logs and the fleet's record of why an account ended.
    pub fn name(&self) -> String {
        match self {
            Self::SocketError => "socket_error".into(),
            Self::ConnectFailed => "connect_failed".into(),
            Self::Closed(Some(c)) => format!("closed_{c}"),
            Self::Closed(None) => "closed".into(),
            Self::HeartbeatTimeout => "heartbeat_timeout".into(),
            Self::Kickout(r) => format!("kickout_{}", r.as_i32()),
            Self::LoginRejected(code) => format!("login_rejected_{}", code.number()),
            Self::TokenNotRenewed => "token_not_renewed".into(),
            Self::RetryWindowExhausted => "retry_window_exhausted".into(),
            Self::Logout => "logout".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConnectionEvent as E;
    use DisconnectCause as C;
    use Disposition::{Terminal, Transient};

    #[test]
    fn every_cause_is_classified() {
        let table: Vec<(DisconnectCause, Disposition)> = vec![
            (C::SocketError, Transient),
            (C::ConnectFailed, Transient),
            (C::HeartbeatTimeout, Transient),
            (C::Closed(None), Transient),
            (C::Closed(Some(1000)), Transient),
            (C::Closed(Some(1001)), Transient),
            (C::Closed(Some(1006)), Transient),
            (C::Closed(Some(1007)), Transient),
            (C::Closed(Some(1009)), Transient),
            (C::Closed(Some(4001)), Transient),
            (C::Closed(Some(4004)), Terminal(E::KickedOut)),
            (C::Closed(Some(4005)), Terminal(E::TokenExpired)),
            (C::Closed(Some(4006)), Terminal(E::Unregistered)),
            (C::Kickout(KickoutReason::KickedOut), Terminal(E::KickedOut)),
            (
                C::Kickout(KickoutReason::TokenExpired),
                Terminal(E::TokenExpired),
            ),
            (
                C::Kickout(KickoutReason::Unregistered),
                Terminal(E::Unregistered),
            ),
            (
                C::Kickout(KickoutReason::Unknown(9)),
                Terminal(E::KickedOut),
            ),
            (C::LoginRejected(ErrorCode::NETWORK_ERROR), Transient),
            (C::LoginRejected(ErrorCode::TIMEOUT), Transient),
            (
                C::LoginRejected(ErrorCode::SERVER_FREQUENCY_LIMIT),
                Transient,
            ),
            (C::LoginRejected(ErrorCode::SERVER_INTERNAL), Transient),
            (
                C::LoginRejected(ErrorCode::TOKEN_EXPIRED),
                Terminal(E::TokenExpired),
            ),
            (
                C::LoginRejected(ErrorCode::TOKEN_INVALID),
                Terminal(E::LoginInterrupted),
            ),
            (
                C::LoginRejected(ErrorCode::TOKEN_VERSION),
                Terminal(E::LoginInterrupted),
            ),
            (
                C::LoginRejected(ErrorCode::TOKEN_TOO_SHORT_LIFETIME),
                Terminal(E::LoginInterrupted),
            ),
            (
                C::LoginRejected(ErrorCode::TOKEN_TOO_LONG_LIFETIME),
                Terminal(E::LoginInterrupted),
            ),
            (
                C::LoginRejected(ErrorCode::LOGGED_IN_AS_OTHER_USER),
                Terminal(E::LoginInterrupted),
            ),
            (
                C::LoginRejected(ErrorCode::INVALID_PARAMETER),
                Terminal(E::LoginInterrupted),
            ),
            (
                C::LoginRejected(ErrorCode(6999999)),
                Terminal(E::LoginInterrupted),
            ),
            (C::TokenNotRenewed, Terminal(E::TokenExpired)),
            (C::RetryWindowExhausted, Terminal(E::LoginTimeout)),
            (C::Logout, Terminal(E::Success)),
        ];
        for (cause, want) in table {
            assert_eq!(cause.disposition(), want, "{cause:?}");
        }
    }

    #[test]
    fn ext_carries_reason_and_code() {
        let ext = C::LoginRejected(ErrorCode::TOKEN_INVALID).ext();
        assert_eq!(ext["reason"], "login_rejected");
        assert_eq!(ext["code"], 6000103);
        assert_eq!(ext["message"], "token invalid");
        assert_eq!(C::Closed(Some(4004)).ext()["close_code"], 4004);
        assert_eq!(C::Kickout(KickoutReason::Unregistered).name(), "kickout_6");
    }
}
