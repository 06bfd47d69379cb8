//! The room state machine (docs/zim-semantics.md section 3) as pure code, with T0/T1/T2 and the
//! recovery policy applied after T2.

use std::time::Duration;

use crate::protocol::{ErrorCode, RoomEvent, RoomKickoutReason, RoomState};

/// How a room is entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomEntry {
    Create,
    Join,
    Enter,
}

/// What a room does after T2 says ConnectTimeout (membership expired).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnConnectTimeout {
    Join,
    Enter,
    Leave,
}

/// What a room does after T2 says RoomNotExist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnRoomNotExist {
    Create,
    Enter,
    Leave,
}

/// Room recovery policy (defaults: ConnectTimeout -> join, RoomNotExist -> enter; at most 5
/// restarts in 60 s, then the room stays out and the bot is told).
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveryPolicy {
    pub on_connect_timeout: OnConnectTimeout,
    pub on_room_not_exist: OnRoomNotExist,
    pub max_restarts: u32,
    pub restart_window: Duration,
}

impl Default for RecoveryPolicy {
    fn default() -> Self {
        Self {
            on_connect_timeout: OnConnectTimeout::Join,
            on_room_not_exist: OnRoomNotExist::Enter,
            max_restarts: 5,
            restart_window: Duration::from_secs(60),
        }
    }
}

impl RecoveryPolicy {
    /// The restart the policy calls for after `event`, or None to stay out.
    pub fn recovery_for(&self, event: RoomEvent) -> Option<RoomEntry> {
        match event {
            RoomEvent::ConnectTimeout | RoomEvent::NetworkDisconnected => {
                match self.on_connect_timeout {
                    OnConnectTimeout::Join => Some(RoomEntry::Join),
                    OnConnectTimeout::Enter => Some(RoomEntry::Enter),
                    OnConnectTimeout::Leave => None,
                }
            }
            RoomEvent::RoomNotExist => match self.on_room_not_exist {
                OnRoomNotExist::Create => Some(RoomEntry::Create),
                OnRoomNotExist::Enter => Some(RoomEntry::Enter),
                OnRoomNotExist::Leave => None,
            },
            _ => None,
        }
    }
}

/// What happened to the room (or to its account).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomInput {
    /// createRoom / joinRoom / enterRoom called; `recovery` when the supervisor restarts it.
    Start {
        entry: RoomEntry,
        recovery: bool,
    },
    /// The entry reply was a success (`created`: enter made a new room).
    EntryOk {
        created: bool,
    },
    /// The entry failed with this code (6000105 for a timeout).
    EntryFailed(ErrorCode),
    HeartbeatOk,
    /// A room heartbeat failed with this code (6000105 for a timeout).
    HeartbeatFailed(ErrorCode),
    /// T0: the account went Reconnecting.
    AccountReconnecting,
    /// T1: the account is Connected again.
    AccountConnected,
    /// The account ended terminally.
    AccountEnded,
    Kickout(RoomKickoutReason),
    LeaveOk,
}

/// What the actor must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomEffect {
    /// Send room_create / room_join / room_enter (through the admission limiter, once the
    /// account is Connected).
    SendEntry(RoomEntry),
    /// Send room_heartbeat now.
    SendHeartbeat,
    /// Fetch room_history after the last seq seen and deliver what was missed.
    CatchUp,
    /// The room is a new incarnation: message seqs start again.
    ResetSeq,
    /// Restart the room session with this entry (the supervisor applies its budget).
    Restart(RoomEntry),
    /// Stay out and tell the bot (policy "leave", or a recovery that cannot succeed).
    GiveUp,
    /// The room session is over (left, kicked, entry failed): forget it.
    Remove,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not in a session (new, or ended).
    Out,
    /// The entry request is pending or waits for the connection.
    Entering(RoomEntry),
    /// Entry accepted; the first room heartbeat is pending.
    Confirming,
    Active,
    /// T0: waiting for the account.
    Interrupted,
    /// T1: the heartbeat that tells T2 is pending.
    Resuming,
}

/// A pair to emit, with its extended data.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomEmit {
    pub state: RoomState,
    pub event: RoomEvent,
    pub ext: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RoomStep {
    pub emit: Option<RoomEmit>,
    pub effects: Vec<RoomEffect>,
}

/// One room session's machine.
#[derive(Debug, Clone)]
pub struct RoomMachine {
    state: RoomState,
    last_event: RoomEvent,
    phase: Phase,
    /// The session is a supervisor restart: catch up on messages when connected.
    recovery: bool,
}

impl Default for RoomMachine {
    fn default() -> Self {
        Self {
            state: RoomState::Disconnected,
            last_event: RoomEvent::Success,
            phase: Phase::Out,
            recovery: false,
        }
    }
}

impl RoomMachine {
    pub fn state(&self) -> RoomState {
        self.state
    }
    pub fn last_event(&self) -> RoomEvent {
        self.last_event
    }
    /// Whether a room heartbeat is due on the periodic tick: in session, or waiting for the
    /// answer that confirms the entry or tells T2 (sent again if that one was lost).
    pub fn wants_heartbeat(&self) -> bool {
        matches!(
            self.phase,
            Phase::Active | Phase::Confirming | Phase::Resuming
        )
    }
    /// The entry still to send, if the room is entering.
    pub fn pending_entry(&self) -> Option<RoomEntry> {
        match self.phase {
            Phase::Entering(e) => Some(e),
            _ => None,
        }
    }
    pub fn is_out(&self) -> bool {
        self.phase == Phase::Out
    }
    pub fn is_connected(&self) -> bool {
        self.phase == Phase::Active
    }

    fn emit(
        &mut self,
        state: RoomState,
        event: RoomEvent,
        ext: serde_json::Value,
    ) -> Option<RoomEmit> {
        self.state = state;
        self.last_event = event;
        Some(RoomEmit { state, event, ext })
    }

    /// Ends the session with `event` and the recovery the policy calls for.
    fn lost(
        &mut self,
        event: RoomEvent,
        code: Option<ErrorCode>,
        policy: &RecoveryPolicy,
    ) -> RoomStep {
        self.phase = Phase::Out;
        let emit = self.emit(RoomState::Disconnected, event, ext(code));
        let mut effects = Vec::with_capacity(2);
        if event == RoomEvent::RoomNotExist {
            effects.push(RoomEffect::ResetSeq);
        }
        effects.push(match policy.recovery_for(event) {
            Some(entry) => RoomEffect::Restart(entry),
            None => RoomEffect::GiveUp,
        });
        RoomStep { emit, effects }
    }

    /// Ends the session for good with `event`.
    fn ended(&mut self, event: RoomEvent, code: Option<ErrorCode>) -> RoomStep {
        self.phase = Phase::Out;
        RoomStep {
            emit: self.emit(RoomState::Disconnected, event, ext(code)),
            effects: vec![RoomEffect::Remove],
        }
    }

    /// Feeds one input; `policy` decides recovery after T2.
    pub fn step(&mut self, input: RoomInput, policy: &RecoveryPolicy) -> RoomStep {
        use Phase as P;
        use RoomEffect::*;
        use RoomEvent as E;
        use RoomInput as I;
        use RoomState as S;
        let none = RoomStep::default;
        match (self.phase, input) {
            (P::Out, I::Start { entry, recovery }) => {
                self.phase = P::Entering(entry);
                self.recovery = recovery;
                let event = match entry {
                    RoomEntry::Create => E::ActiveCreate,
                    RoomEntry::Join | RoomEntry::Enter => E::ActiveEnter,
                };
                let mut effects = vec![SendEntry(entry)];
                if entry == RoomEntry::Create {
                    effects.push(ResetSeq);
                }
                RoomStep {
                    emit: self.emit(S::Connecting, event, serde_json::json!({})),
                    effects,
                }
            }
            (P::Entering(_), I::EntryOk { created }) => {
                self.phase = P::Confirming;
                let mut effects = vec![SendHeartbeat];
                if created {
                    effects.push(ResetSeq);
                }
                RoomStep {
                    emit: None,
                    effects,
                }
            }
            // A join sent again after a lost link finds us in already: that is success.
            (P::Entering(RoomEntry::Join), I::EntryFailed(ErrorCode::ALREADY_IN_ROOM)) => {
                self.step(I::EntryOk { created: false }, policy)
            }
            (P::Entering(entry), I::EntryFailed(code)) => {
                let event = match (entry, code) {
                    (RoomEntry::Create, _) => E::CreateFailed,
                    (_, ErrorCode::ROOM_NOT_EXIST) => E::RoomNotExist,
                    (_, ErrorCode::TIMEOUT | ErrorCode::NETWORK_ERROR) => E::NetworkDisconnected,
                    _ => E::EnterFailed,
                };
                // A restart that fails on a lost room or a timeout goes on by the policy
                // (bounded by the supervisor's budget); any other failure ends the room.
                if self.recovery && matches!(event, E::RoomNotExist | E::NetworkDisconnected) {
                    self.lost(event, Some(code), policy)
                } else {
                    self.ended(event, Some(code))
                }
            }
            (P::Confirming | P::Resuming, I::HeartbeatOk) => {
                self.phase = P::Active;
                let catch_up = self.recovery || self.last_event == E::NetworkInterrupted;
                self.recovery = false;
                RoomStep {
                    emit: self.emit(S::Connected, E::Success, serde_json::json!({})),
                    effects: if catch_up { vec![CatchUp] } else { vec![] },
                }
            }
            (P::Confirming | P::Resuming | P::Active, I::HeartbeatFailed(code)) => match code {
                ErrorCode::NOT_IN_ROOM => self.lost(E::ConnectTimeout, Some(code), policy),
                ErrorCode::ROOM_NOT_EXIST => self.lost(E::RoomNotExist, Some(code), policy),
                // a timeout or a server hiccup: the next heartbeat tells
                _ => none(),
            },
            (P::Confirming | P::Active, I::AccountReconnecting) => {
                self.phase = P::Interrupted;
                RoomStep {
                    emit: self.emit(S::Connecting, E::NetworkInterrupted, serde_json::json!({})),
                    effects: vec![],
                }
            }
            // The heartbeat of T1 was lost with the link: wait for the next T1.
            (P::Resuming, I::AccountReconnecting) => {
                self.phase = P::Interrupted;
                none()
            }
            (P::Interrupted, I::AccountConnected) => {
                self.phase = P::Resuming;
                RoomStep {
                    emit: None,
                    effects: vec![SendHeartbeat],
                }
            }
            // The entry request was lost with the link: send it again (join treats
            // "already in the room" as success, enter is idempotent).
            (P::Entering(entry), I::AccountConnected) => RoomStep {
                emit: None,
                effects: vec![SendEntry(entry)],
            },
            (P::Out, I::AccountEnded) => none(),
            (_, I::AccountEnded) => self.ended(E::NetworkDisconnected, None),
            (P::Out | P::Entering(_), I::Kickout(_)) => none(),
            (_, I::Kickout(reason)) => match reason {
                RoomKickoutReason::RoomDestroyed => self.lost(E::RoomNotExist, None, policy),
                RoomKickoutReason::OtherDevice => self.ended(E::KickedOutByOtherDevice, None),
                _ => self.ended(E::KickedOut, None),
            },
            (P::Out, I::LeaveOk) => none(),
            (_, I::LeaveOk) => self.ended(E::Success, None),
            _ => none(),
        }
    }
}

fn ext(code: Option<ErrorCode>) -> serde_json::Value {
    match code {
        Some(code) => serde_json::json!({"code": code, "message": code.description()}),
        None => serde_json::json!({}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RoomEffect::*;
    use RoomInput as I;

    fn policy() -> RecoveryPolicy {
        RecoveryPolicy::default()
    }

    fn pair(step: &RoomStep) -> Option<(i32, i32)> {
        step.emit
            .as_ref()
            .map(|e| (e.state.as_i32(), e.event.as_i32()))
    }

    fn run(m: &mut RoomMachine, input: RoomInput) -> RoomStep {
        m.step(input, &policy())
    }

    fn entered(entry: RoomEntry) -> RoomMachine {
        let mut m = RoomMachine::default();
        run(
            &mut m,
            I::Start {
                entry,
                recovery: false,
            },
        );
        run(&mut m, I::EntryOk { created: false });
        run(&mut m, I::HeartbeatOk);
        assert!(m.is_connected());
        m
    }

    fn interrupted() -> RoomMachine {
        let mut m = entered(RoomEntry::Join);
        run(&mut m, I::AccountReconnecting);
        m
    }

    fn resuming() -> RoomMachine {
        let mut m = interrupted();
        run(&mut m, I::AccountConnected);
        m
    }

    #[test]
    fn create_room_starts_connecting_active_create() {
        let mut m = RoomMachine::default();
        let s = run(
            &mut m,
            I::Start {
                entry: RoomEntry::Create,
                recovery: false,
            },
        );
        assert_eq!(pair(&s), Some((1, 4)));
        assert_eq!(s.effects, [SendEntry(RoomEntry::Create), ResetSeq]);
    }

    #[test]
    fn join_and_enter_start_connecting_active_enter() {
        for entry in [RoomEntry::Join, RoomEntry::Enter] {
            let mut m = RoomMachine::default();
            let s = run(
                &mut m,
                I::Start {
                    entry,
                    recovery: false,
                },
            );
            assert_eq!(pair(&s), Some((1, 6)));
            assert_eq!(s.effects, [SendEntry(entry)]);
        }
    }

    #[test]
    fn accepted_and_first_heartbeat_answered_is_connected_success() {
        for entry in [RoomEntry::Create, RoomEntry::Join, RoomEntry::Enter] {
            let mut m = RoomMachine::default();
            run(
                &mut m,
                I::Start {
                    entry,
                    recovery: false,
                },
            );
            let s = run(&mut m, I::EntryOk { created: false });
            assert_eq!(pair(&s), None, "no pair before the heartbeat is answered");
            assert_eq!(s.effects, [SendHeartbeat]);
            let s = run(&mut m, I::HeartbeatOk);
            assert_eq!(pair(&s), Some((2, 0)));
            assert_eq!(s.effects, [], "a first entry fetches no history");
        }
        let mut m = RoomMachine::default();
        run(
            &mut m,
            I::Start {
                entry: RoomEntry::Enter,
                recovery: false,
            },
        );
        assert_eq!(
            run(&mut m, I::EntryOk { created: true }).effects,
            [SendHeartbeat, ResetSeq]
        );
    }

    #[test]
    fn create_fails_is_disconnected_create_failed() {
        let mut m = RoomMachine::default();
        run(
            &mut m,
            I::Start {
                entry: RoomEntry::Create,
                recovery: false,
            },
        );
        let s = run(&mut m, I::EntryFailed(ErrorCode::ROOM_ALREADY_EXISTS));
        assert_eq!(pair(&s), Some((0, 5)));
        assert_eq!(s.effects, [Remove]);
        assert_eq!(s.emit.unwrap().ext["code"], 6000323);
    }

    #[test]
    fn join_fails_room_not_exist_timeout_other() {
        for (code, want) in [
            (ErrorCode::ROOM_NOT_EXIST, (0, 3)),
            (ErrorCode::TIMEOUT, (0, 2)),
            (ErrorCode::ROOM_LIMIT, (0, 7)),
            (ErrorCode::SERVER_INTERNAL, (0, 7)),
        ] {
            let mut m = RoomMachine::default();
            run(
                &mut m,
                I::Start {
                    entry: RoomEntry::Join,
                    recovery: false,
                },
            );
            let s = run(&mut m, I::EntryFailed(code));
            assert_eq!(pair(&s), Some(want), "{code:?}");
            assert_eq!(s.effects, [Remove]);
            assert!(m.is_out());
        }
    }

    #[test]
    fn t0_every_room_connecting_network_interrupted() {
        let mut m = entered(RoomEntry::Enter);
        let s = run(&mut m, I::AccountReconnecting);
        assert_eq!(pair(&s), Some((1, 1)));
        assert_eq!(s.effects, []);
        assert!(
            !m.wants_heartbeat(),
            "no room heartbeat while the account is down"
        );
        // a room that had not been confirmed yet is interrupted too
        let mut m = RoomMachine::default();
        run(
            &mut m,
            I::Start {
                entry: RoomEntry::Join,
                recovery: false,
            },
        );
        run(&mut m, I::EntryOk { created: false });
        assert_eq!(pair(&run(&mut m, I::AccountReconnecting)), Some((1, 1)));
    }

    #[test]
    fn t1_room_stays_interrupted_and_sends_its_heartbeat_at_once() {
        let mut m = interrupted();
        let s = run(&mut m, I::AccountConnected);
        assert_eq!(pair(&s), None);
        assert_eq!(s.effects, [SendHeartbeat]);
        assert_eq!(
            (m.state(), m.last_event()),
            (RoomState::Connecting, RoomEvent::NetworkInterrupted)
        );
    }

    #[test]
    fn t2_still_a_member_is_connected_success_and_catches_up() {
        let mut m = resuming();
        let s = run(&mut m, I::HeartbeatOk);
        assert_eq!(pair(&s), Some((2, 0)));
        assert_eq!(s.effects, [CatchUp]);
    }

    #[test]
    fn t2_not_in_room_is_disconnected_connect_timeout_then_policy_restart() {
        let mut m = resuming();
        let s = run(&mut m, I::HeartbeatFailed(ErrorCode::NOT_IN_ROOM));
        assert_eq!(pair(&s), Some((0, 9)));
        assert_eq!(s.effects, [Restart(RoomEntry::Join)]);
        // the restart: (1,6), then (2,0) with a catch-up
        let s = run(
            &mut m,
            I::Start {
                entry: RoomEntry::Join,
                recovery: true,
            },
        );
        assert_eq!(pair(&s), Some((1, 6)));
        run(&mut m, I::EntryOk { created: false });
        let s = run(&mut m, I::HeartbeatOk);
        assert_eq!(pair(&s), Some((2, 0)));
        assert_eq!(s.effects, [CatchUp]);
    }

    #[test]
    fn t2_room_does_not_exist_is_disconnected_room_not_exist_then_policy() {
        let mut m = resuming();
        let s = run(&mut m, I::HeartbeatFailed(ErrorCode::ROOM_NOT_EXIST));
        assert_eq!(pair(&s), Some((0, 3)));
        assert_eq!(s.effects, [ResetSeq, Restart(RoomEntry::Enter)]);
    }

    #[test]
    fn t2_policy_choices_create_enter_leave() {
        let leave = RecoveryPolicy {
            on_connect_timeout: OnConnectTimeout::Leave,
            on_room_not_exist: OnRoomNotExist::Leave,
            ..policy()
        };
        let other = RecoveryPolicy {
            on_connect_timeout: OnConnectTimeout::Enter,
            on_room_not_exist: OnRoomNotExist::Create,
            ..policy()
        };
        for (p, code, want) in [
            (&leave, ErrorCode::NOT_IN_ROOM, GiveUp),
            (&leave, ErrorCode::ROOM_NOT_EXIST, GiveUp),
            (&other, ErrorCode::NOT_IN_ROOM, Restart(RoomEntry::Enter)),
            (
                &other,
                ErrorCode::ROOM_NOT_EXIST,
                Restart(RoomEntry::Create),
            ),
        ] {
            let mut m = resuming();
            let s = m.step(I::HeartbeatFailed(code), p);
            assert_eq!(s.effects.last(), Some(&want), "{code:?}");
        }
    }

    #[test]
    fn t2_heartbeat_timeout_keeps_waiting() {
        let mut m = resuming();
        assert_eq!(
            run(&mut m, I::HeartbeatFailed(ErrorCode::TIMEOUT)),
            RoomStep::default()
        );
        assert!(m.wants_heartbeat(), "the next tick asks again");
        assert_eq!(pair(&run(&mut m, I::HeartbeatOk)), Some((2, 0)));
    }

    #[test]
    fn a_failing_restart_goes_on_by_the_policy() {
        let mut m = RoomMachine::default();
        run(
            &mut m,
            I::Start {
                entry: RoomEntry::Join,
                recovery: true,
            },
        );
        let s = run(&mut m, I::EntryFailed(ErrorCode::ROOM_NOT_EXIST));
        assert_eq!(pair(&s), Some((0, 3)));
        assert_eq!(s.effects, [ResetSeq, Restart(RoomEntry::Enter)]);
    }

    #[test]
    fn an_entry_lost_with_the_link_is_sent_again_on_t1() {
        let mut m = RoomMachine::default();
        run(
            &mut m,
            I::Start {
                entry: RoomEntry::Join,
                recovery: false,
            },
        );
        assert_eq!(run(&mut m, I::AccountReconnecting), RoomStep::default());
        let s = run(&mut m, I::AccountConnected);
        assert_eq!(s.effects, [SendEntry(RoomEntry::Join)]);
        assert_eq!(m.pending_entry(), Some(RoomEntry::Join));
    }

    #[test]
    fn account_ends_every_room_disconnected_network_disconnected() {
        for mut m in [entered(RoomEntry::Join), interrupted(), resuming(), {
            let mut m = RoomMachine::default();
            run(
                &mut m,
                I::Start {
                    entry: RoomEntry::Join,
                    recovery: false,
                },
            );
            m
        }] {
            let s = run(&mut m, I::AccountEnded);
            assert_eq!(pair(&s), Some((0, 2)));
            assert_eq!(s.effects, [Remove]);
        }
        assert_eq!(
            run(&mut RoomMachine::default(), I::AccountEnded),
            RoomStep::default()
        );
    }

    #[test]
    fn room_kickout_reasons() {
        for (reason, want, effects) in [
            (RoomKickoutReason::Kicked, (0, 8), vec![Remove]),
            (
                RoomKickoutReason::RoomDestroyed,
                (0, 3),
                vec![ResetSeq, Restart(RoomEntry::Enter)],
            ),
            (RoomKickoutReason::OtherDevice, (0, 10), vec![Remove]),
            (RoomKickoutReason::Unknown(77), (0, 8), vec![Remove]),
        ] {
            let mut m = entered(RoomEntry::Join);
            let s = run(&mut m, I::Kickout(reason));
            assert_eq!(pair(&s), Some(want), "{reason:?}");
            assert_eq!(s.effects, effects);
        }
    }

    #[test]
    fn leave_succeeds_is_disconnected_success() {
        let mut m = entered(RoomEntry::Create);
        let s = run(&mut m, I::LeaveOk);
        assert_eq!(pair(&s), Some((0, 0)));
        assert_eq!(s.effects, [Remove]);
        assert_eq!(run(&mut m, I::LeaveOk), RoomStep::default());
    }

    #[test]
    fn already_in_the_room_after_a_rejoin_is_success_for_join_only() {
        let mut m = RoomMachine::default();
        run(
            &mut m,
            I::Start {
                entry: RoomEntry::Join,
                recovery: true,
            },
        );
        let s = run(&mut m, I::EntryFailed(ErrorCode::ALREADY_IN_ROOM));
        assert_eq!((pair(&s), s.effects), (None, vec![SendHeartbeat]));
        let s = run(&mut m, I::HeartbeatOk);
        assert_eq!(pair(&s), Some((2, 0)));
        for entry in [RoomEntry::Enter, RoomEntry::Create] {
            let mut m = RoomMachine::default();
            run(
                &mut m,
                I::Start {
                    entry,
                    recovery: false,
                },
            );
            let s = run(&mut m, I::EntryFailed(ErrorCode::ALREADY_IN_ROOM));
            assert_eq!(s.effects, [Remove], "{entry:?}");
        }
    }

    #[test]
    fn stray_inputs_are_ignored() {
        let mut m = entered(RoomEntry::Join);
        assert_eq!(
            run(&mut m, I::EntryOk { created: false }),
            RoomStep::default()
        );
        assert_eq!(run(&mut m, I::AccountConnected), RoomStep::default());
        assert_eq!(
            run(
                &mut m,
                I::Start {
                    entry: RoomEntry::Join,
                    recovery: false
                }
            ),
            RoomStep::default()
        );
        assert_eq!(run(&mut m, I::HeartbeatOk), RoomStep::default());
    }
}
