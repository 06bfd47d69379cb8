//! Pre-flight: a plan that cannot fit this machine says so before it starts, with the numbers
//! and the fix, instead of failing halfway with "Too many open files".

use super::plan::Plan;

/// Open files the process needs besides the accounts' sockets (listeners, logs, epoll,
/// arbiters' wakers, the token and admin HTTP clients).
pub const RESERVED_FILES: u64 = 256;

/// Where the numbers come from, so tests can give their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open-file limit now (soft) and the most it can be raised to (hard).
    pub nofile_soft: u64,
    /// Nofile hard.
    pub nofile_hard: u64,
    /// Local (ephemeral) port range, inclusive.
    pub ports: (u32, u32),
}

impl Limits {
    /// This process's limits.
    pub fn current() -> std::io::Result<Limits> {
        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
        Ok(Limits {
            nofile_soft: soft,
            nofile_hard: hard,
            ports: read_port_range().unwrap_or((32768, 60999)),
        })
    }
}

/// `/proc/sys/net/ipv4/ip_local_port_range` ("32768\t60999").
pub fn read_port_range() -> Option<(u32, u32)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text.split_whitespace().map(|n| n.parse::<u32>());
    match (it.next()?, it.next()?) {
        (Ok(lo), Ok(hi)) if hi >= lo => Some((lo, hi)),
        _ => None,
    }
}

/// What the plan needs on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// Accounts this process runs.
    pub accounts: u64,
    /// Open files: one socket per account, two when the server is in the same process.
    pub files: u64,
    /// Local ports towards the backend's one address.
    pub ports: u64,
}

/// What `accounts_in_shard` accounts of `plan` need on this machine.
pub fn needs(plan: &Plan, accounts_in_shard: u64) -> Needs {
    let per_account = if plan.embedded() { 2 } else { 1 };
    Needs {
        accounts: accounts_in_shard,
        files: accounts_in_shard * per_account + RESERVED_FILES,
        ports: accounts_in_shard,
    }
}

/// Checks `needs` against `limits`. On success returns the open-file limit to raise the soft
/// limit to (if it must be raised); on failure the message that says why and what to do.
pub fn check(plan: &Plan, needs: Needs, limits: Limits) -> Result<Option<u64>, String> {
    let shards = plan.shard.count.max(1) as u64;
    let mut problems = Vec::new();
    if needs.files > limits.nofile_hard {
        let per_account = if plan.embedded() { 2 } else { 1 };
        let fit = limits.nofile_hard.saturating_sub(RESERVED_FILES) / per_account;
        let total = plan.accounts;
        let min_shards = if fit == 0 { 0 } else { total.div_ceil(fit) };
        problems.push(format!(
            "this shard runs {} accounts and needs {} open files ({} per account{} + {} reserved), \
             but the open-file limit is {} (hard {}). Fix: raise it (`ulimit -n {}` as a user \
             allowed to, or LimitNOFILE= in the unit), or split the plan into at least {} shards \
             (--shard i/{}){}",
            needs.accounts,
            needs.files,
            per_account,
            if plan.embedded() { ": the embedded server holds the other end" } else { "" },
            RESERVED_FILES,
            limits.nofile_soft,
            limits.nofile_hard,
            needs.files,
            min_shards.max(shards + 1),
            min_shards.max(shards + 1),
            if plan.embedded() {
                ", or run the server in its own process (--backend URL)"
            } else {
                ""
            }
        ));
    }
    let port_count = u64::from(limits.ports.1 - limits.ports.0) + 1;
    if needs.ports > port_count {
        problems.push(format!(
            "this shard opens {} connections to one backend address, but the local port range \
             {}-{} has {} ports. Fix: widen it (sysctl net.ipv4.ip_local_port_range=\"1024 65535\"), \
             run more shards on other machines, or add source addresses",
            needs.ports, limits.ports.0, limits.ports.1, port_count
        ));
    }
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    Ok((needs.files > limits.nofile_soft).then_some(needs.files))
}

/// A plan that fits but will be slowed, said before the start (not a refusal).
pub fn warnings(needs: Needs, limits: Limits) -> Option<String> {
    let port_count = u64::from(limits.ports.1 - limits.ports.0) + 1;
    // Linux (4.6+) gives connect() the even ports of the range first; once they are used up,
    // every new connection searches the whole range: logins slow down from there on.
    (needs.ports > port_count / 2).then(|| {
        format!(
            "warning: this shard opens {} connections to one backend address; past {} (half of \
             the local port range {}-{}) Linux's connect() has used every even port and searches \
             the range for each new one, so logins slow down. Widen the range, run more shards, \
             or add source addresses",
            needs.ports,
            port_count / 2,
            limits.ports.0,
            limits.ports.1
        )
    })
}

/// Checks this process and raises the soft open-file limit when the plan needs it.
pub fn run(plan: &Plan, accounts_in_shard: u64) -> Result<Needs, String> {
    let limits = Limits::current().map_err(|e| format!("cannot read the open-file limit: {e}"))?;
    let needs = needs(plan, accounts_in_shard);
    let raise = check(plan, needs, limits)?;
    // Only a plan that runs gets the warning; a refusal says everything itself.
    if let Some(warning) = warnings(needs, limits) {
        eprintln!("zimfleet loadtest: {warning}");
    }
    if let Some(want) = raise {
        let got = rlimit::increase_nofile_limit(want)
            .map_err(|e| format!("cannot raise the open-file limit to {want}: {e}"))?;
        if got < want {
            return Err(format!(
                "needs {want} open files, but the limit could only be raised to {got}"
            ));
        }
    }
    Ok(needs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: Limits = Limits {
        nofile_soft: 1024,
        nofile_hard: 20_000,
        ports: (32768, 60999),
    };

    #[test]
    fn fits_and_asks_to_raise_the_soft_limit() {
        let mut plan = Plan::defaults();
        plan.backend = "ws://10.0.0.1:7400/ws".into();
        let n = needs(&plan, 19_000);
        assert_eq!(n.files, 19_256);
        assert_eq!(check(&plan, n, HERE), Ok(Some(19_256)));
        assert_eq!(check(&plan, needs(&plan, 100), HERE), Ok(None));
    }

    #[test]
    fn embedded_needs_two_files_per_account_and_says_how_to_fix() {
        let mut plan = Plan::defaults();
        plan.accounts = 19_000;
        let err = check(&plan, needs(&plan, 19_000), HERE).unwrap_err();
        assert!(err.starts_with("this shard runs 19000 accounts and needs 38256 open files (2 per account: the embedded server holds the other end + 256 reserved), but the open-file limit is 1024 (hard 20000)"), "{err}");
        assert!(err.contains("`ulimit -n 38256`"), "{err}");
        assert!(err.contains("at least 2 shards (--shard i/2)"), "{err}");
        assert!(err.contains("--backend URL"), "{err}");
    }

    #[test]
    fn port_range_too_small() {
        let mut plan = Plan::defaults();
        plan.backend = "ws://10.0.0.1:7400/ws".into();
        let limits = Limits {
            nofile_soft: 100_000,
            nofile_hard: 100_000,
            ports: (60000, 60999),
        };
        let err = check(&plan, needs(&plan, 5_000), limits).unwrap_err();
        assert_eq!(
            err,
            "this shard opens 5000 connections to one backend address, but the local port range \
             60000-60999 has 1000 ports. Fix: widen it (sysctl net.ipv4.ip_local_port_range=\"1024 65535\"), \
             run more shards on other machines, or add source addresses"
        );
    }

    #[test]
    fn past_half_the_port_range_warns() {
        let mut plan = Plan::defaults();
        plan.backend = "ws://10.0.0.1:7400/ws".into();
        assert_eq!(warnings(needs(&plan, 14_000), HERE), None);
        let w = warnings(needs(&plan, 19_000), HERE).unwrap();
        assert!(
            w.starts_with("warning: this shard opens 19000 connections to one backend address; past 14116 (half of the local port range 32768-60999)"),
            "{w}"
        );
    }

    #[test]
    fn reads_this_machines_port_range() {
        let (lo, hi) = read_port_range().expect("linux exposes the port range");
        assert!(lo > 0 && hi >= lo);
    }
}
