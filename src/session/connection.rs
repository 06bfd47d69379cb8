//! The account's connection state machine (docs/zim-semantics.md section 2) as pure code:
//! an input gives the pair to emit (if any) and the effects the actor must carry out.

use super::classify::{DisconnectCause, Disposition};
use crate::protocol::{ConnectionEvent, ConnectionState};

/// What happened to the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnInput {
    /// login() was called.
    Login,
    /// The login (or re-login) reply was a success.
    LoginOk,
    /// The login failed or the link ended, for this cause.
    Lost(DisconnectCause),
    /// A retry timer fired.
    RetryDue,
}

/// What the actor must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnEffect {
    /// Open a socket and send login (through the admission limiter).
    Connect,
    /// Wait the next delay of the retry schedule, then feed [`ConnInput::RetryDue`].
    ScheduleRetry,
    /// Drop the socket (if any) and fail or re-queue requests in flight.
    CloseLink,
    /// T0: every connected or entering room goes (Connecting, NetworkInterrupted).
    RoomsInterrupted,
    /// T1: every interrupted room sends its room heartbeat now.
    RoomsResume,
    /// Enter the rooms of the account's spec (the first login only).
    RoomsFirstEntry,
    /// Every room ends (Disconnected, NetworkDisconnected).
    RoomsEnd,
    /// Send what waits in the outbox.
    FlushOutbox,
    /// Answer everything waiting with 6000121 and stop the account for good.
    EndAccount,
}

/// A pair to emit, with its extended data.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnEmit {
    pub state: ConnectionState,
    pub event: ConnectionEvent,
    pub ext: serde_json::Value,
}

/// The result of one input.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConnStep {
    pub emit: Option<ConnEmit>,
    pub effects: Vec<ConnEffect>,
    /// Set when this step ended the account: why.
    pub ended: Option<DisconnectCause>,
}

/// The machine. `Copy`-small: one per account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionMachine {
    state: ConnectionState,
    last_event: ConnectionEvent,
    /// Whether a login ever succeeded (a failed first login retries without Reconnecting).
    ever_connected: bool,
    /// A terminal Disconnected was reached: every input is ignored from now on.
    terminal: bool,
}

impl Default for ConnectionMachine {
    fn default() -> Self {
        Self {
            state: ConnectionState::Disconnected,
            last_event: ConnectionEvent::Success,
            ever_connected: false,
            terminal: false,
        }
    }
}

impl ConnectionMachine {
    pub fn state(&self) -> ConnectionState {
        self.state
    }
    pub fn last_event(&self) -> ConnectionEvent {
        self.last_event
    }
    pub fn is_terminal(&self) -> bool {
        self.terminal
    }
    pub fn is_connected(&self) -> bool {
        self.state == ConnectionState::Connected
    }

    fn set(
        &mut self,
        state: ConnectionState,
        event: ConnectionEvent,
        ext: serde_json::Value,
    ) -> Option<ConnEmit> {
        self.state = state;
        self.last_event = event;
        Some(ConnEmit { state, event, ext })
    }

    /// Feeds one input.
    pub fn step(&mut self, input: ConnInput) -> ConnStep {
        use ConnEffect::*;
        use ConnectionEvent as E;
        use ConnectionState as S;
        if self.terminal {
            return ConnStep::default();
        }
        let empty = || serde_json::json!({});
        match (self.state, input) {
            (S::Disconnected, ConnInput::Login) => ConnStep {
                emit: self.set(S::Connecting, E::ActiveLogin, empty()),
                effects: vec![Connect],
                ended: None,
            },
            (S::Connecting | S::Reconnecting, ConnInput::RetryDue) => ConnStep {
                effects: vec![Connect],
                ..ConnStep::default()
            },
            (S::Connecting, ConnInput::LoginOk) => {
                self.ever_connected = true;
                ConnStep {
                    emit: self.set(S::Connected, E::Success, empty()),
                    effects: vec![RoomsFirstEntry, FlushOutbox],
                    ended: None,
                }
            }
            (S::Reconnecting, ConnInput::LoginOk) => ConnStep {
                emit: self.set(S::Connected, E::Success, empty()),
                effects: vec![RoomsResume, FlushOutbox],
                ended: None,
            },
            (state, ConnInput::Lost(cause)) if state != S::Disconnected => {
                match cause.disposition() {
                    Disposition::Terminal(event) => {
                        self.terminal = true;
                        ConnStep {
                            emit: self.set(S::Disconnected, event, cause.ext()),
                            effects: vec![CloseLink, RoomsEnd, EndAccount],
                            ended: Some(cause),
                        }
                    }
                    Disposition::Transient if state == S::Connected => ConnStep {
                        emit: self.set(S::Reconnecting, E::LoginInterrupted, cause.ext()),
                        effects: vec![CloseLink, RoomsInterrupted, ScheduleRetry],
                        ended: None,
                    },
                    // Connecting (first login) or Reconnecting: keep the state, retry later.
                    Disposition::Transient => ConnStep {
                        effects: vec![CloseLink, ScheduleRetry],
                        ..ConnStep::default()
                    },
                }
            }
            // Anything else (a late reply, a duplicate login, a retry after success) is
            // ignored: the actor's generation checks make these rare, the machine makes
            // them harmless.
            _ => ConnStep::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ErrorCode, KickoutReason};
    use ConnEffect::*;
    use ConnectionEvent as E;
    use ConnectionState as S;
    use DisconnectCause as C;

    fn pair(step: &ConnStep) -> Option<(i32, i32)> {
        step.emit
            .as_ref()
            .map(|e| (e.state.as_i32(), e.event.as_i32()))
    }

    fn connected() -> ConnectionMachine {
        let mut m = ConnectionMachine::default();
        m.step(ConnInput::Login);
        m.step(ConnInput::LoginOk);
        m
    }

    fn reconnecting() -> ConnectionMachine {
        let mut m = connected();
        m.step(ConnInput::Lost(C::SocketError));
        m
    }

    #[test]
    fn login_starts_with_connecting_active_login() {
        let mut m = ConnectionMachine::default();
        let s = m.step(ConnInput::Login);
        assert_eq!(pair(&s), Some((1, 1)));
        assert_eq!(s.effects, [Connect]);
    }

    #[test]
    fn login_succeeds_connected_success_and_enters_rooms() {
        let mut m = ConnectionMachine::default();
        m.step(ConnInput::Login);
        let s = m.step(ConnInput::LoginOk);
        assert_eq!(pair(&s), Some((2, 0)));
        assert_eq!(s.effects, [RoomsFirstEntry, FlushOutbox]);
        assert!(m.is_connected());
    }

    #[test]
    fn transport_lost_is_reconnecting_login_interrupted_and_rooms_t0() {
        for cause in [
            C::SocketError,
            C::HeartbeatTimeout,
            C::Closed(Some(4001)),
            C::Closed(None),
        ] {
            let mut m = connected();
            let s = m.step(ConnInput::Lost(cause.clone()));
            assert_eq!(pair(&s), Some((3, 3)), "{cause:?}");
            assert_eq!(s.effects, [CloseLink, RoomsInterrupted, ScheduleRetry]);
            assert_eq!(s.ended, None);
            assert_eq!(s.emit.unwrap().ext["reason"], cause.ext()["reason"]);
        }
    }

    #[test]
    fn failed_retries_stay_reconnecting_silently_and_retry_forever() {
        let mut m = reconnecting();
        for _ in 0..100 {
            assert_eq!(m.step(ConnInput::RetryDue).effects, [Connect]);
            let s = m.step(ConnInput::Lost(C::ConnectFailed));
            assert_eq!(pair(&s), None);
            assert_eq!(s.effects, [CloseLink, ScheduleRetry]);
        }
        assert_eq!(m.state(), S::Reconnecting);
    }

    #[test]
    fn a_retrys_relogin_succeeds_connected_success_and_rooms_t1() {
        let mut m = reconnecting();
        m.step(ConnInput::RetryDue);
        let s = m.step(ConnInput::LoginOk);
        assert_eq!(pair(&s), Some((2, 0)));
        assert_eq!(s.effects, [RoomsResume, FlushOutbox]);
    }

    #[test]
    fn retry_window_exhausted_is_disconnected_login_timeout() {
        let mut m = reconnecting();
        let s = m.step(ConnInput::Lost(C::RetryWindowExhausted));
        assert_eq!(pair(&s), Some((0, 2)));
        assert_eq!(s.effects, [CloseLink, RoomsEnd, EndAccount]);
        assert!(m.is_terminal());
    }

    #[test]
    fn first_login_rejected_token_invalid_is_disconnected_login_interrupted_with_code() {
        for code in [ErrorCode::TOKEN_INVALID, ErrorCode::TOKEN_VERSION] {
            let mut m = ConnectionMachine::default();
            m.step(ConnInput::Login);
            let s = m.step(ConnInput::Lost(C::LoginRejected(code)));
            assert_eq!(pair(&s), Some((0, 3)));
            assert_eq!(s.emit.as_ref().unwrap().ext["code"], code.number());
            assert_eq!(s.effects, [CloseLink, RoomsEnd, EndAccount]);
        }
    }

    #[test]
    fn relogin_rejected_token_invalid_is_disconnected_login_interrupted() {
        let mut m = reconnecting();
        let s = m.step(ConnInput::Lost(C::LoginRejected(ErrorCode::TOKEN_INVALID)));
        assert_eq!(pair(&s), Some((0, 3)));
        assert!(m.is_terminal());
    }

    #[test]
    fn relogin_rejected_token_expired_is_disconnected_token_expired() {
        let mut m = reconnecting();
        let s = m.step(ConnInput::Lost(C::LoginRejected(ErrorCode::TOKEN_EXPIRED)));
        assert_eq!(pair(&s), Some((0, 5)));
    }

    #[test]
    fn first_login_network_failure_retries_without_reconnecting() {
        let mut m = ConnectionMachine::default();
        m.step(ConnInput::Login);
        let s = m.step(ConnInput::Lost(C::ConnectFailed));
        assert_eq!(pair(&s), None);
        assert_eq!(s.effects, [CloseLink, ScheduleRetry]);
        assert_eq!(m.state(), S::Connecting);
        m.step(ConnInput::RetryDue);
        assert_eq!(pair(&m.step(ConnInput::LoginOk)), Some((2, 0)));
    }

    #[test]
    fn kickout_other_device_is_disconnected_kicked_out_by_push_or_close_code() {
        for cause in [C::Kickout(KickoutReason::KickedOut), C::Closed(Some(4004))] {
            let mut m = connected();
            let s = m.step(ConnInput::Lost(cause));
            assert_eq!(pair(&s), Some((0, 4)));
            assert_eq!(s.effects, [CloseLink, RoomsEnd, EndAccount]);
        }
        // also while Reconnecting (the re-login's socket got the push)
        let mut m = reconnecting();
        assert_eq!(
            pair(&m.step(ConnInput::Lost(C::Closed(Some(4004))))),
            Some((0, 4))
        );
    }

    #[test]
    fn kickout_unregistered_is_disconnected_unregistered() {
        for cause in [
            C::Kickout(KickoutReason::Unregistered),
            C::Closed(Some(4006)),
        ] {
            let mut m = connected();
            assert_eq!(pair(&m.step(ConnInput::Lost(cause))), Some((0, 6)));
        }
    }

    #[test]
    fn token_not_renewed_is_disconnected_token_expired() {
        for cause in [
            C::TokenNotRenewed,
            C::Kickout(KickoutReason::TokenExpired),
            C::Closed(Some(4005)),
        ] {
            let mut m = connected();
            let s = m.step(ConnInput::Lost(cause.clone()));
            assert_eq!(pair(&s), Some((0, 5)), "{cause:?}");
            assert_eq!(s.ended, Some(cause));
        }
    }

    #[test]
    fn logout_is_disconnected_success_and_terminal() {
        let mut m = connected();
        let s = m.step(ConnInput::Lost(C::Logout));
        assert_eq!(pair(&s), Some((0, 0)));
        assert_eq!(s.effects, [CloseLink, RoomsEnd, EndAccount]);
        assert_eq!((m.state(), m.last_event()), (S::Disconnected, E::Success));
    }

    #[test]
    fn after_a_terminal_end_nothing_moves_the_machine() {
        let mut m = connected();
        m.step(ConnInput::Lost(C::Kickout(KickoutReason::KickedOut)));
        for input in [
            ConnInput::Login,
            ConnInput::LoginOk,
            ConnInput::RetryDue,
            ConnInput::Lost(C::SocketError),
        ] {
            assert_eq!(m.step(input), ConnStep::default());
        }
        assert_eq!((m.state(), m.last_event()), (S::Disconnected, E::KickedOut));
    }

    #[test]
    fn stray_inputs_are_ignored() {
        let mut m = connected();
        assert_eq!(m.step(ConnInput::LoginOk), ConnStep::default());
        assert_eq!(m.step(ConnInput::RetryDue), ConnStep::default());
        assert_eq!(m.step(ConnInput::Login), ConnStep::default());
        let mut idle = ConnectionMachine::default();
        assert_eq!(
            idle.step(ConnInput::Lost(C::SocketError)),
            ConnStep::default()
        );
    }
}
