//! ZIM enums with their wire integers (ZIM-SEMANTICS.md section 1). Never renumber.
//!
//! Each enum keeps values it does not know as `Unknown(i32)`: a peer that speaks a newer
//! protocol must never make us panic or fail to parse.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares a ZIM integer enum: named variants with fixed numbers, plus `Unknown(i32)`.
macro_rules! zim_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $num:expr),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this version does not know; kept as the peer sent it.
            Unknown(i32),
        }

        impl $name {
            /// The wire integer.
            pub const fn as_i32(self) -> i32 {
                match self {
                    $(Self::$variant => $num,)+
                    Self::Unknown(n) => n,
                }
            }

            /// The enum for a wire integer; unknown numbers are kept, never refused.
            pub const fn from_i32(n: i32) -> Self {
                match n {
                    $($num => Self::$variant,)+
                    other => Self::Unknown(other),
                }
            }

            /// The ZIM name of the value (`"Unknown"` for unknown numbers).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => stringify!($variant),)+
                    Self::Unknown(_) => "Unknown",
                }
            }
        }

        impl From<i32> for $name {
            fn from(n: i32) -> Self { Self::from_i32(n) }
        }

        impl From<$name> for i32 {
            fn from(v: $name) -> i32 { v.as_i32() }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", self.name(), self.as_i32())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_i32(self.as_i32())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                i32::deserialize(d).map(Self::from_i32)
            }
        }
    };
}

zim_enum!(
    /// ZIMConnectionState.
    ConnectionState {
        Disconnected = 0,
        Connecting = 1,
        Connected = 2,
        Reconnecting = 3,
    }
);

zim_enum!(
    /// ZIMConnectionEvent.
    ConnectionEvent {
        Success = 0,
        ActiveLogin = 1,
        LoginTimeout = 2,
        LoginInterrupted = 3,
        KickedOut = 4,
        TokenExpired = 5,
        Unregistered = 6,
    }
);

zim_enum!(
    /// ZIMRoomState.
    RoomState {
        Disconnected = 0,
        Connecting = 1,
        Connected = 2,
    }
);

zim_enum!(
    /// ZIMRoomEvent.
    RoomEvent {
        Success = 0,
        NetworkInterrupted = 1,
        NetworkDisconnected = 2,
        RoomNotExist = 3,
        ActiveCreate = 4,
        CreateFailed = 5,
        ActiveEnter = 6,
        EnterFailed = 7,
        KickedOut = 8,
        ConnectTimeout = 9,
        KickedOutByOtherDevice = 10,
        ActiveSwitch = 11,
        SwitchFailed = 12,
    }
);

zim_enum!(
    /// Reason carried by the `kickout` push (and mirrored by close codes 4004-4006).
    KickoutReason {
        KickedOut = 4,
        TokenExpired = 5,
        Unregistered = 6,
    }
);

zim_enum!(
    /// Reason carried by the `room_kickout` push.
    RoomKickoutReason {
        Kicked = 1,
        RoomDestroyed = 2,
        OtherDevice = 3,
    }
);

zim_enum!(
    /// Conversation type of a message.
    ConvType {
        Peer = 0,
        Room = 1,
    }
);

zim_enum!(
    /// Message type.
    MessageType {
        Text = 1,
        Command = 2,
        Custom = 200,
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_the_zim_ones() {
        assert_eq!(ConnectionState::Reconnecting.as_i32(), 3);
        assert_eq!(ConnectionEvent::Unregistered.as_i32(), 6);
        assert_eq!(RoomEvent::ConnectTimeout.as_i32(), 9);
        assert_eq!(RoomEvent::SwitchFailed.as_i32(), 12);
        assert_eq!(MessageType::Custom.as_i32(), 200);
        for n in 0..=12 {
            assert_eq!(RoomEvent::from_i32(n).as_i32(), n);
            assert_ne!(RoomEvent::from_i32(n), RoomEvent::Unknown(n));
        }
    }

    #[test]
    fn unknown_values_survive_a_round_trip() {
        let v: RoomEvent = serde_json::from_str("77").unwrap();
        assert_eq!(v, RoomEvent::Unknown(77));
        assert_eq!(serde_json::to_string(&v).unwrap(), "77");
        let s: ConnectionState = serde_json::from_str("2").unwrap();
        assert_eq!(s, ConnectionState::Connected);
        assert_eq!(s.to_string(), "Connected(2)");
    }
}
