//! The commands an account handle sends, handled.

use actix::prelude::*;
use tokio::sync::oneshot;

use super::messages::{AccountCmd, Reply};
use super::requests::Owner;
use super::Account;
use crate::client::room::messages::GetRoomStatus;
use crate::client::AccountStatus;
use crate::protocol::{
    ErrorCode, Request, RoomMembers, RoomMembersReply, ServerFrame, ZimError, MAX_PAGE,
};
use crate::session::{ConnInput, DisconnectCause};

impl Handler<AccountCmd> for Account {
    type Result = ();

    fn handle(&mut self, cmd: AccountCmd, ctx: &mut Self::Context) {
        match cmd {
            AccountCmd::Send(cmd) => self.on_send(cmd, ctx),
            AccountCmd::EnterRoom { spec, reply } => self.enter_room(spec, reply, ctx),
            AccountCmd::LeaveRoom { room_id, reply } => self.leave_room(room_id, reply, ctx),
            AccountCmd::MembersPage {
                room_id,
                cursor,
                reply,
            } => self.members_page(room_id, cursor, reply, ctx),
            AccountCmd::RenewToken { token, reply } => self.renew_with(token, Some(reply), ctx),
            AccountCmd::Logout { reply } => self.logout(reply, ctx),
            AccountCmd::Status(reply) => self.status(reply, ctx),
            AccountCmd::ChaosDrop => self.chaos(None, ctx),
            AccountCmd::ChaosOffline(d) => self.chaos(Some(d), ctx),
            AccountCmd::Room(msg) => self.on_room(msg, ctx),
        }
    }
}

impl Account {
    fn members_page(
        &mut self,
        room_id: String,
        cursor: Option<String>,
        reply: Reply<RoomMembersReply>,
        ctx: &mut Context<Self>,
    ) {
        if let Err(e) = self.shaper.check(std::time::Instant::now()) {
            let _ = reply.send(Err(e));
            return;
        }
        let request = Request::RoomMembers(RoomMembers {
            room_id,
            cursor,
            limit: Some(MAX_PAGE),
        });
        let owner = Owner::Caller(Box::new(move |result| {
            let page = result.and_then(|text| {
                ServerFrame::reply_body::<RoomMembersReply>(text)
                    .map_err(|_| ZimError::from_code(ErrorCode::SERVER_INTERNAL))
            });
            let _ = reply.send(page);
        }));
        let timeout = self.shared.config.timings.request_timeout;
        if let Err(owner) = self.request(request, owner, timeout, ctx) {
            self.fail_unsent(owner, ErrorCode::NETWORK_ERROR, ctx);
        }
    }

    /// Leaves every room, then logs out; the end comes with the logout's reply (or the
    /// link's loss).
    fn logout(&mut self, reply: Reply<()>, ctx: &mut Context<Self>) {
        if self.logout_reply.is_some() {
            let _ = reply.send(Err(ZimError::from_code(ErrorCode::CLIENT_FREQUENCY_LIMIT)));
            return;
        }
        self.logout_reply = Some(reply);
        if !self.conn.is_connected() {
            self.conn_input(ConnInput::Lost(DisconnectCause::Logout), ctx);
            return;
        }
        for i in 0..self.rooms.len() {
            let _ = self.send_leave(i, None, ctx);
        }
        let timeout = self.shared.config.timings.request_timeout;
        if let Err(owner) = self.request(Request::Logout, Owner::Logout, timeout, ctx) {
            self.fail_unsent(owner, ErrorCode::NETWORK_ERROR, ctx);
        }
    }

    /// The account's status with each room actor's own.
    fn status(&mut self, reply: oneshot::Sender<AccountStatus>, ctx: &mut Context<Self>) {
        let mut status = self.own_status();
        if self.rooms.is_empty() {
            let _ = reply.send(status);
            return;
        }
        let asks: Vec<_> = self
            .rooms
            .iter()
            .map(|r| r.addr.send(GetRoomStatus))
            .collect();
        let deadline = self.shared.config.timings.request_timeout;
        let gather = async move {
            if let Ok(rooms) =
                tokio::time::timeout(deadline, futures_util::future::join_all(asks)).await
            {
                status.rooms = rooms.into_iter().filter_map(|r| r.ok().flatten()).collect();
            }
            let _ = reply.send(status);
        };
        ctx.spawn(gather.into_actor(self));
    }
}
