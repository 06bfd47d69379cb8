//! One readable log line per fleet event (the runner's log; `--events FILE` has the JSON).

use crate::client::{Event, EventKind};

/// One readable log line per state change.
pub fn log_event(event: &Event) {
    let account = &event.account;
    match &event.kind {
        EventKind::Connection { state, event, ext } => {
            tracing::info!("{account}: connection {state} by {event}{}", ext_text(ext))
        }
        EventKind::Room {
            room_id,
            state,
            event,
            ext,
        } => {
            tracing::info!(
                "{account}: room {room_id} {state} by {event}{}",
                ext_text(ext)
            )
        }
        EventKind::TokenWillExpire { remaining_secs } => {
            tracing::info!("{account}: token expires in {remaining_secs} s; renewing")
        }
        EventKind::TokenRenewed { expire_at } => {
            tracing::info!("{account}: token renewed (expires at {expire_at})")
        }
        EventKind::TokenRenewFailed { error } => {
            tracing::warn!("{account}: token renewal failed: {error}")
        }
        EventKind::RoomIncarnationChanged { room_id, old, new } => {
            tracing::warn!("{account}: room {room_id} is a new incarnation ({old} -> {new}): its seqs start over")
        }
        EventKind::RoomGaveUp { room_id, reason } => {
            tracing::warn!("{account}: room {room_id} gave up recovering: {reason}")
        }
    }
}

/// Extended data worth showing (empty objects are left out).
fn ext_text(ext: &serde_json::Value) -> String {
    match ext {
        serde_json::Value::Object(map) if !map.is_empty() => format!(" {ext}"),
        serde_json::Value::Null | serde_json::Value::Object(_) => String::new(),
        other => format!(" {other}"),
    }
}
