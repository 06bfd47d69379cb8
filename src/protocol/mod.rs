//! The wire contract (docs/protocol.md): frames, ZIM enums and error codes as Rust types.
//! No I/O and no actix here; both the client and the reference server build on it.

pub mod codes;
pub mod frames;
pub mod secret;
pub mod zim;

pub use codes::{ErrorCode, ZimError};
pub use frames::*;
pub use secret::Secret;
pub use zim::{
    ConnectionEvent, ConnectionState, ConvType, KickoutReason, MessageType, RoomEvent,
    RoomKickoutReason, RoomState,
};
