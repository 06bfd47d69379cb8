//! `zimfleet run --shard i/n`: n processes on the same bots/ run every account exactly once,
//! split by the load tester's stable hash of the user id; a bad shard is refused (exit 2).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zimfleet::loadtest::shard::{stable_hash, Shard};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zimfleet-shard-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn zimfleet(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zimfleet"));
    for (key, _) in std::env::vars() {
        if key.starts_with("ZIMFLEET__") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(dir)
        .stdin(Stdio::null())
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .arg("run");
    cmd
}

/// Two bot files, 12 accounts.
fn bots(dir: &Path) -> (PathBuf, Vec<String>) {
    let bots = dir.join("bots");
    std::fs::create_dir_all(&bots).unwrap();
    let users: Vec<String> = (0..12).map(|i| format!("shard-user-{i}")).collect();
    for (file, part) in [("a.toml", &users[..5]), ("b.toml", &users[5..])] {
        let mut text = "behaviour = \"idle\"\n".to_string();
        for user in part {
            text.push_str(&format!("[[accounts]]\nuser_id = \"{user}\"\n"));
        }
        std::fs::write(bots.join(file), text).unwrap();
    }
    (bots, users)
}

struct Sharded {
    child: Child,
    log: PathBuf,
}

impl Drop for Sharded {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sharded {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The accounts it started, from its log, once its start-up line is there.
    fn started(&mut self) -> BTreeSet<String> {
        let end = Instant::now() + Duration::from_secs(20);
        while !self.log().contains("SIGINT or SIGTERM to stop") {
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "exited; log:\n{}",
                self.log()
            );
            assert!(Instant::now() < end, "no start; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(25));
        }
        self.log()
            .lines()
            .filter_map(|l| l.split(": account ").nth(1)?.split(" starts").next())
            .map(str::to_string)
            .collect()
    }
}

#[test]
fn shards_split_the_accounts_by_the_load_testers_hash() {
    let dir = temp_dir("split");
    let (bots, users) = bots(&dir);
    let n = 3u32;
    let mut runs: Vec<Sharded> = (0..n)
        .map(|i| {
            let log = dir.join(format!("shard-{i}.log"));
            let child = zimfleet(&dir)
                .arg("--bots")
                .arg(&bots)
                .args(["--shard", &format!("{i}/{n}")])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            Sharded { child, log }
        })
        .collect();
    let mut all = BTreeSet::new();
    for (i, run) in runs.iter_mut().enumerate() {
        let started = run.started();
        let want: BTreeSet<String> = users
            .iter()
            .filter(|u| stable_hash(u) % u64::from(n) == i as u64)
            .cloned()
            .collect();
        assert_eq!(started, want, "shard {i}/{n}");
        let shard = Shard {
            index: i as u32,
            count: n,
        };
        assert!(started.iter().all(|u| shard.owns(u)));
        assert!(
            run.log().contains(&format!(
                "account(s) (shard {i}/{n}); SIGINT or SIGTERM to stop"
            )),
            "{}",
            run.log()
        );
        assert!(all.is_disjoint(&started), "an account in two shards");
        all.extend(started);
    }
    assert_eq!(
        all,
        users.into_iter().collect::<BTreeSet<_>>(),
        "every account once"
    );
    for run in &mut runs {
        let ok = Command::new("kill")
            .args(["-TERM", &run.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let end = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = run.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < end, "no exit; log:\n{}", run.log());
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(status.code(), Some(0), "{}", run.log());
    }
}

#[test]
fn a_bad_shard_is_refused_with_exit_code_2() {
    let dir = temp_dir("bad");
    let (bots, _) = bots(&dir);
    for (arg, detail) in [
        (
            "3/3",
            "\"3/3\" is not a shard: write i/n with 0 <= i < n, e.g. 0/4",
        ),
        (
            "1/0",
            "\"1/0\" is not a shard: write i/n with 0 <= i < n, e.g. 0/4",
        ),
        (
            "x",
            "\"x\" is not a shard: write i/n with 0 <= i < n, e.g. 0/4",
        ),
    ] {
        let out = zimfleet(&dir)
            .arg("--bots")
            .arg(&bots)
            .args(["--shard", arg])
            .output()
            .unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(
            stderr.lines().next().unwrap(),
            format!("error: invalid value '{arg}' for '--shard <i/n>': {detail}")
        );
    }
}
