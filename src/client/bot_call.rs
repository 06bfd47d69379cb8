//! Calling a bot: every handler runs behind `catch_unwind`, so a panicking bot is logged and
//! counted, never fatal to the account or room actor that called it.

use std::panic::AssertUnwindSafe;

use super::handle::AccountHandle;
use super::FleetMetrics;
use crate::bot::Bot;

/// Runs `f` with the bot and the handle it acts through; a panic is caught and counted.
pub(crate) fn with_bot(
    bot: &dyn Bot,
    handle: &AccountHandle,
    metrics: &FleetMetrics,
    f: impl FnOnce(&dyn Bot, &AccountHandle),
) {
    if std::panic::catch_unwind(AssertUnwindSafe(|| f(bot, handle))).is_err() {
        metrics.handler_panics.inc();
        tracing::error!(account = %handle.user_id(), "bot handler panicked (caught)");
    }
}
