//! Hot reload, the pure part: the bots running now and the bots just read from bots/ ->
//! what changes (docs/bots.md, "Hot reload"). New files start their accounts, removed files
//! log theirs out, and a changed file changes only what changed in it: its new and removed
//! accounts, its rooms (entered or left on the accounts that keep running), its behaviour
//! (swapped on the running accounts, which stay connected). No I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::client::RoomSpec;
use crate::runner::bots::{AccountDef, BotDef};

/// What a reload does, in the order it is done.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ReloadPlan {
    /// Accounts logged out: their file or their entry is gone.
    pub stop: Vec<String>,
    /// (user id, room id) left by accounts that keep running.
    pub leave: Vec<(String, String)>,
    /// Files whose behaviour or settings changed: rebuilt on their running accounts.
    pub swap: Vec<PathBuf>,
    /// (user id, room) entered by accounts that keep running.
    pub enter: Vec<(String, RoomSpec)>,
    /// (file, user id) of accounts added.
    pub start: Vec<(PathBuf, String)>,
    /// (file, user id) of accounts whose own entry changed (user name, device, token): they
    /// would have to log out and in again.
    pub restart: Vec<(PathBuf, String)>,
}

impl ReloadPlan {
    /// True when nothing changes.
    pub fn is_empty(&self) -> bool {
        *self == ReloadPlan::default()
    }
}

/// The plan from the running bots `old` to the bots read now, `new` (both by file).
pub fn plan(old: &[&BotDef], new: &[&BotDef]) -> ReloadPlan {
    let old_by: BTreeMap<&PathBuf, &BotDef> = old.iter().map(|b| (&b.file, *b)).collect();
    let new_by: BTreeMap<&PathBuf, &BotDef> = new.iter().map(|b| (&b.file, *b)).collect();
    let mut plan = ReloadPlan::default();
    for (file, before) in &old_by {
        if !new_by.contains_key(file) {
            plan.stop
                .extend(before.accounts.iter().map(|a| a.user_id.clone()));
        }
    }
    for (file, after) in &new_by {
        match old_by.get(file) {
            None => plan.start.extend(
                after
                    .accounts
                    .iter()
                    .map(|a| ((*file).clone(), a.user_id.clone())),
            ),
            Some(before) => changed_file(before, after, &mut plan),
        }
    }
    plan
}

/// The changes inside one file that is there before and after.
fn changed_file(before: &BotDef, after: &BotDef, plan: &mut ReloadPlan) {
    let file = &after.file;
    let old_accounts: BTreeMap<&str, &AccountDef> = before
        .accounts
        .iter()
        .map(|a| (a.user_id.as_str(), a))
        .collect();
    let mut kept = Vec::new();
    for account in &after.accounts {
        match old_accounts.get(account.user_id.as_str()) {
            None => plan.start.push((file.clone(), account.user_id.clone())),
            Some(old) if *old != account => {
                plan.restart.push((file.clone(), account.user_id.clone()))
            }
            Some(_) => kept.push(account.user_id.clone()),
        }
    }
    let new_ids: BTreeSet<&str> = after.accounts.iter().map(|a| a.user_id.as_str()).collect();
    plan.stop.extend(
        before
            .accounts
            .iter()
            .filter(|a| !new_ids.contains(a.user_id.as_str()))
            .map(|a| a.user_id.clone()),
    );
    if kept.is_empty() {
        return;
    }
    if before.behaviour != after.behaviour || before.settings != after.settings {
        plan.swap.push(file.clone());
    }
    let (leave, enter) = room_changes(&before.rooms, &after.rooms);
    for user in &kept {
        plan.leave
            .extend(leave.iter().map(|room| (user.clone(), room.clone())));
        plan.enter
            .extend(enter.iter().map(|room| (user.clone(), (*room).clone())));
    }
}

/// Rooms to leave (gone or changed) and to enter (new or changed), in file order.
fn room_changes<'a>(
    before: &[RoomSpec],
    after: &'a [RoomSpec],
) -> (Vec<String>, Vec<&'a RoomSpec>) {
    let same = |a: &RoomSpec, list: &[RoomSpec]| list.iter().any(|b| b == a);
    let leave = before
        .iter()
        .filter(|r| !same(r, after))
        .map(|r| r.room_id.clone())
        .collect();
    let enter = after.iter().filter(|r| !same(r, before)).collect();
    (leave, enter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bot::pacer::Quiet;
    use crate::runner::bots::parse_file;
    use std::path::Path;

    fn bot(file: &str, text: &str) -> BotDef {
        parse_file(Path::new(file), text, true, &|_| None, &Quiet::default())
            .unwrap()
            .unwrap()
    }

    const A: &str = "behaviour = \"echo\"\n[[accounts]]\nuser_id = \"a1\"\n[[accounts]]\nuser_id = \"a2\"\n[[rooms]]\nroom_id = \"r1\"\n";

    fn ids(list: &[(PathBuf, String)]) -> Vec<&str> {
        list.iter().map(|(_, u)| u.as_str()).collect()
    }

    #[test]
    fn the_same_files_change_nothing() {
        let a = bot("bots/a.toml", A);
        let again = bot("bots/a.toml", A);
        assert!(plan(&[&a], &[&again]).is_empty());
    }

    #[test]
    fn a_new_file_starts_and_a_removed_file_stops_its_accounts() {
        let a = bot("bots/a.toml", A);
        let b = bot(
            "bots/b.toml",
            "behaviour = \"idle\"\n[[accounts]]\nuser_id = \"b1\"\n",
        );
        let p = plan(&[&a], &[&a, &b]);
        assert_eq!(ids(&p.start), ["b1"]);
        assert!(p.stop.is_empty() && p.swap.is_empty() && p.enter.is_empty());
        let p = plan(&[&a, &b], &[&b]);
        assert_eq!(p.stop, ["a1", "a2"]);
        assert!(p.start.is_empty());
    }

    #[test]
    fn a_changed_behaviour_or_setting_swaps_on_the_running_accounts_only() {
        let a = bot("bots/a.toml", A);
        let settings = bot("bots/a.toml", &format!("{A}[settings]\nprefix = \"> \"\n"));
        let p = plan(&[&a], &[&settings]);
        assert_eq!(p.swap, [PathBuf::from("bots/a.toml")]);
        assert!(
            p.start.is_empty() && p.stop.is_empty() && p.enter.is_empty() && p.leave.is_empty()
        );
        let behaviour = bot("bots/a.toml", &A.replace("echo", "idle"));
        assert_eq!(plan(&[&a], &[&behaviour]).swap.len(), 1);
    }

    #[test]
    fn accounts_added_removed_and_changed_inside_a_file() {
        let a = bot("bots/a.toml", A);
        let text =
            A.replace("user_id = \"a2\"", "user_id = \"a3\"") + "[[accounts]]\nuser_id = \"a4\"\n";
        let p = plan(&[&a], &[&bot("bots/a.toml", &text)]);
        assert_eq!(ids(&p.start), ["a3", "a4"]);
        assert_eq!(p.stop, ["a2"]);
        assert!(p.restart.is_empty());
        let renamed = A.replace("user_id = \"a2\"", "user_id = \"a2\"\nuser_name = \"Two\"");
        let p = plan(&[&a], &[&bot("bots/a.toml", &renamed)]);
        assert_eq!(ids(&p.restart), ["a2"]);
        assert!(p.start.is_empty() && p.stop.is_empty());
    }

    #[test]
    fn rooms_added_removed_and_changed_apply_to_every_kept_account() {
        let a = bot("bots/a.toml", A);
        let text = A.replace("room_id = \"r1\"", "room_id = \"r2\"");
        let p = plan(&[&a], &[&bot("bots/a.toml", &text)]);
        assert_eq!(
            p.leave,
            [("a1".into(), "r1".into()), ("a2".into(), "r1".into())]
        );
        let entered: Vec<(&str, &str)> = p
            .enter
            .iter()
            .map(|(u, r)| (u.as_str(), r.room_id.as_str()))
            .collect();
        assert_eq!(entered, [("a1", "r2"), ("a2", "r2")]);
        assert!(p.swap.is_empty());
        // A changed entry of the same room: left, then entered again.
        let text = A.replace("room_id = \"r1\"", "room_id = \"r1\"\nentry = \"create\"");
        let p = plan(&[&a], &[&bot("bots/a.toml", &text)]);
        assert_eq!(p.leave.len(), 2);
        assert_eq!(p.enter.len(), 2);
        // A new account gets its rooms when it starts: no separate entry.
        let text =
            A.replace("room_id = \"r1\"", "room_id = \"r2\"") + "[[accounts]]\nuser_id = \"a9\"\n";
        let p = plan(&[&a], &[&bot("bots/a.toml", &text)]);
        assert!(p.enter.iter().all(|(u, _)| u != "a9"));
        assert_eq!(ids(&p.start), ["a9"]);
    }
}
