//! [`AccountHandle`]: what a bot, the runner or the load tester acts through. Every call
//! gets a reply or a ZIM error, never silence: the account answers within its own
//! deadlines, and each wait here has a backstop deadline too.

use std::sync::Arc;
use std::time::Duration;

use actix::Recipient;
use tokio::sync::oneshot;

use super::account::messages::{AccountCmd, FromRoom, SendCmd};
use super::root::EndedStatus;
use super::shared::FleetShared;
use super::{AccountStatus, RoomSpec};
use crate::protocol::{
    ConvType, ErrorCode, Member, MessageSendReply, MessageType, RoomInfo, Secret, ZimError,
};

/// A handle on one account; what a bot acts through. Cheap to clone, `Send`.
#[derive(Clone)]
pub struct AccountHandle {
    user_id: Arc<str>,
    to: Recipient<AccountCmd>,
    shared: Arc<FleetShared>,
}

fn not_logged_in() -> ZimError {
    ZimError::new(ErrorCode::NOT_LOGGED_IN, "not logged in")
}

impl AccountHandle {
    pub(crate) fn new(
        user_id: Arc<str>,
        to: Recipient<AccountCmd>,
        shared: Arc<FleetShared>,
    ) -> Self {
        Self {
            user_id,
            to,
            shared,
        }
    }

    /// Room actor -> its account (crate-private: rooms report through their handle).
    pub(crate) fn tell(&self, msg: FromRoom) {
        self.to.do_send(AccountCmd::Room(msg));
    }

    /// The account's user id.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// Longest a call may wait for the account: the outbox wait plus the slowest request.
    fn backstop(&self) -> Duration {
        let t = &self.shared.config.timings;
        t.outbox_wait + t.send_timeout.max(t.room_request_timeout) + Duration::from_secs(1)
    }

    /// Sends `msg` and waits for the answer it carries back on `rx`.
    async fn call<T>(
        &self,
        cmd: AccountCmd,
        rx: oneshot::Receiver<Result<T, ZimError>>,
    ) -> Result<T, ZimError> {
        let deadline = self.backstop();
        let work = async move {
            self.to.send(cmd).await.map_err(|_| not_logged_in())?;
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
        self.call(AccountCmd::Send(cmd), rx).await
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
        if self.to.try_send(AccountCmd::Send(cmd)).is_err() {
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
        self.call(AccountCmd::EnterRoom { spec, reply: tx }, rx)
            .await
    }

    /// Leaves a room: (Disconnected, Success).
    pub async fn leave_room(&self, room_id: &str) -> Result<(), ZimError> {
        let (tx, rx) = oneshot::channel();
        let cmd = AccountCmd::LeaveRoom {
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
            let cmd = AccountCmd::MembersPage {
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
        self.call(AccountCmd::RenewToken { token, reply: tx }, rx)
            .await
    }

    /// The account's connection state now.
    pub async fn state(&self) -> Result<AccountStatus, ZimError> {
        let deadline = self.shared.config.timings.request_timeout;
        let (tx, rx) = oneshot::channel();
        let ask = async move {
            self.to.send(AccountCmd::Status(tx)).await.ok()?;
            rx.await.ok()
        };
        match tokio::time::timeout(deadline, ask).await {
            Ok(Some(status)) => Ok(status),
            Ok(None) => {
                // Stopped: the root kept the status it ended with (the account told it
                // before it stopped, so the answer is there by now).
                let ask = self.shared.root.send(EndedStatus(self.user_id.clone()));
                match tokio::time::timeout(deadline, ask).await {
                    Ok(Ok(Some(status))) => Ok(status),
                    _ => Err(not_logged_in()),
                }
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
        self.to.do_send(AccountCmd::ChaosDrop);
    }

    /// Chaos: drops the link and makes every reconnect attempt fail as a network error for
    /// `d` (a real outage as the backend sees it).
    pub fn chaos_offline(&self, d: Duration) {
        self.to.do_send(AccountCmd::ChaosOffline(d));
    }

    /// Leaves every room and logs out: (Disconnected, Success). Terminal.
    pub async fn logout(&self) -> Result<(), ZimError> {
        let (tx, rx) = oneshot::channel();
        match self.call(AccountCmd::Logout { reply: tx }, rx).await {
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
