//! [`AccountHandle`]: what a bot, the runner or the load tester acts through. Every call
//! gets a reply or a ZIM error, never silence: the account answers within its own
//! deadlines, and each wait here has a backstop deadline too.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use tokio::sync::oneshot;

use super::account::{
    Account, ChaosDrop, ChaosOffline, EnterRoomCmd, GetStatus, LeaveRoomCmd, LogoutCmd,
    MembersPageCmd, RenewTokenCmd, SendCmd,
};
use super::fleet::FleetShared;
use super::{AccountStatus, RoomSpec};
use crate::protocol::{
    ConvType, ErrorCode, Member, MessageSendReply, MessageType, RoomInfo, Secret, ZimError,
};

/// A handle on one account; what a bot acts through. Cheap to clone, `Send`.
#[derive(Clone)]
pub struct AccountHandle {
    user_id: Arc<str>,
    addr: Addr<Account>,
    shared: Arc<FleetShared>,
}

fn not_logged_in() -> ZimError {
    ZimError::new(ErrorCode::NOT_LOGGED_IN, "not logged in")
}

impl AccountHandle {
    pub(crate) fn new(user_id: Arc<str>, addr: Addr<Account>, shared: Arc<FleetShared>) -> Self {
        Self {
            user_id,
            addr,
            shared,
        }
    }

    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// Longest a call may wait for the account: the outbox wait plus the slowest request.
    fn backstop(&self) -> Duration {
        let t = &self.shared.config.timings;
        t.outbox_wait + t.send_timeout.max(t.room_request_timeout) + Duration::from_secs(1)
    }

    /// Sends `msg` and waits for the answer it carries back on `rx`.
    async fn call<M, T>(
        &self,
        msg: M,
        rx: oneshot::Receiver<Result<T, ZimError>>,
    ) -> Result<T, ZimError>
    where
        M: actix::Message<Result = ()> + Send + 'static,
        Account: actix::Handler<M>,
    {
        let deadline = self.backstop();
        let work = async move {
            self.addr.send(msg).await.map_err(|_| not_logged_in())?;
            rx.await.map_err(|_| not_logged_in())?
        };
        match tokio::time::timeout(deadline, work).await {
            Ok(result) => result,
            Err(_) => Err(ZimError::new(
                ErrorCode::TIMEOUT,
                "no answer from the account",
            )),
        }
    }

    async fn send_message(
        &self,
        conv_type: ConvType,
        to: &str,
        msg_type: MessageType,
        body: String,
    ) -> Result<MessageSendReply, ZimError> {
        let (tx, rx) = oneshot::channel();
        let cmd = SendCmd {
            conv_type,
            to: to.into(),
            msg_type,
            body,
            reply: Some(tx),
        };
        self.call(cmd, rx).await
    }

    /// Sends a message to a room. While Reconnecting it waits in the outbox; after a terminal
    /// end it fails with 6000121.
    pub async fn send_room_message(
        &self,
        room_id: &str,
        msg_type: MessageType,
        body: String,
    ) -> Result<MessageSendReply, ZimError> {
        self.send_message(ConvType::Room, room_id, msg_type, body)
            .await
    }

    /// Sends a message to a user.
    pub async fn send_peer_message(
        &self,
        to_user: &str,
        msg_type: MessageType,
        body: String,
    ) -> Result<MessageSendReply, ZimError> {
        self.send_message(ConvType::Peer, to_user, msg_type, body)
            .await
    }

    fn post(&self, conv_type: ConvType, to: &str, body: String) {
        let cmd = SendCmd {
            conv_type,
            to: to.into(),
            msg_type: MessageType::Text,
            body,
            reply: None,
        };
        if self.addr.try_send(cmd).is_err() {
            self.shared.metrics.messages_send_failed.inc();
            tracing::warn!(account = %self.user_id, "post dropped: account busy or stopped");
        }
    }

    /// Fire and forget: sends a text to a room on the account's own thread; a failure is
    /// logged and counted.
    pub fn post_room_text(&self, room_id: &str, body: String) {
        self.post(ConvType::Room, room_id, body)
    }

    /// Fire and forget: sends a text to a user.
    pub fn post_peer_text(&self, to_user: &str, body: String) {
        self.post(ConvType::Peer, to_user, body)
    }

    /// Enters (creates, joins) a room and keeps it: answers at (Connected, Success), or with
    /// the entry's error.
    pub async fn enter_room(&self, spec: RoomSpec) -> Result<RoomInfo, ZimError> {
        let (tx, rx) = oneshot::channel();
        self.call(EnterRoomCmd { spec, reply: tx }, rx).await
    }

    /// Leaves a room: (Disconnected, Success).
    pub async fn leave_room(&self, room_id: &str) -> Result<(), ZimError> {
        let (tx, rx) = oneshot::channel();
        let cmd = LeaveRoomCmd {
            room_id: room_id.to_owned(),
            reply: tx,
        };
        self.call(cmd, rx).await
    }

    /// All members of a room (pages through room_members).
    pub async fn room_members(&self, room_id: &str) -> Result<Vec<Member>, ZimError> {
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let (tx, rx) = oneshot::channel();
            let cmd = MembersPageCmd {
                room_id: room_id.to_owned(),
                cursor: cursor.take(),
                reply: tx,
            };
            let page = self.call(cmd, rx).await?;
            all.extend(page.members);
            match page.next_cursor {
                Some(next) if !next.is_empty() => cursor = Some(next),
                _ => return Ok(all),
            }
        }
    }

    /// renewToken: sends a new token now (at most one per 500 ms, else 6000004); answers the
    /// new expiry in unix seconds.
    pub async fn renew_token(&self, token: Secret) -> Result<i64, ZimError> {
        let (tx, rx) = oneshot::channel();
        self.call(RenewTokenCmd { token, reply: tx }, rx).await
    }

    /// The account's connection state now.
    pub async fn state(&self) -> Result<AccountStatus, ZimError> {
        let ask = self.addr.send(GetStatus);
        match tokio::time::timeout(self.shared.config.timings.request_timeout, ask).await {
            Ok(Ok(status)) => Ok(status),
            Ok(Err(_)) => {
                // Stopped: the fleet kept the status it ended with.
                let registry = self.shared.registry.lock().map_err(|_| not_logged_in())?;
                registry
                    .get(&*self.user_id)
                    .and_then(|e| e.ended.clone())
                    .ok_or_else(not_logged_in)
            }
            Err(_) => Err(ZimError::new(
                ErrorCode::TIMEOUT,
                "no answer from the account",
            )),
        }
    }

    /// Chaos: closes this account's socket abruptly; the account sees a lost link and
    /// recovers as usual.
    pub fn chaos_drop(&self) {
        self.addr.do_send(ChaosDrop);
    }

    /// Chaos: drops the link and makes every reconnect attempt fail as a network error for
    /// `d` (a real outage as the backend sees it).
    pub fn chaos_offline(&self, d: Duration) {
        self.addr.do_send(ChaosOffline(d));
    }

    /// Leaves every room and logs out: (Disconnected, Success). Terminal.
    pub async fn logout(&self) -> Result<(), ZimError> {
        let (tx, rx) = oneshot::channel();
        match self.call(LogoutCmd { reply: tx }, rx).await {
            // Already ended: logging out is done.
            Err(e) if e.code == ErrorCode::NOT_LOGGED_IN => Ok(()),
            other => other,
        }
    }
}

impl std::fmt::Debug for AccountHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountHandle")
            .field("user_id", &self.user_id)
            .finish()
    }
}
