//! The run: a [`Fleet`] of this shard's accounts against the backend, stage by stage.
//!
//! 1. stages ([`super::stages`]): accounts arrive and leave on the schedule (evenly spaced,
//!    released at a 10 ms step), messages at the stage's rate per online account, chaos on
//!    the stage's schedule. The shorthand's ramp stage ends when every account is Connected
//!    with every room Connected (or at `ramp_timeout`), then its hold stage runs;
//! 2. drain: chaos has ended with the last stage (offline windows cut there); wait at most
//!    `recovery_timeout` for every account to be back, then at most `drain` for sends in
//!    flight and deliveries to settle;
//! 3. count (status of every account, missing seqs), log out, report.
//!
//! Everything here runs on the caller's actix thread; the accounts run on the fleet's
//! arbiters and reach this thread only through events and the shared [`Receivers`].

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::broadcast::error::RecvError;

use super::backend::Backend;
use super::chaos::{Action, Chaos};
use super::cpu::{cpu_secs, CpuMarks};
use super::hist::LatencySeries;
use super::live::Live;
use super::plan::Plan;
use super::progress::Progress;
use super::receiver::{LoadBot, Membership, Receivers};
use super::report::{Memory, Report, ShardRun};
use super::sends::{issue_sends, Member, Sends, Turns};
use super::settle::AllOnline;
pub use super::shared::Shared;
use super::stage_report::StageReport;
use super::stages::Schedule;
use super::track::Tracker;
use super::LoadtestError;
use crate::client::{AccountSpec, Fleet, FleetConfig, RoomSpec};
use crate::clock::unix_ms as now_ms;
use crate::protocol::{ConnectionState, RoomState};
use crate::token::TokenProvider;

/// The stage loop's step: arrivals, departures and sends are released at this granularity.
const STEP: Duration = Duration::from_millis(10);
/// No slot: the account belongs to another shard.
const NOT_HERE: u32 = u32::MAX;

/// VmRSS of this process in KiB.
pub fn rss_kib() -> u64 {
    rss_kib_of("self")
}

/// VmRSS of process `pid` ("self" for this one) in KiB, 0 when unreadable.
pub fn rss_kib_of(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Phase times of this shard (unix ms) and its memory samples.
#[derive(Default)]
struct Times {
    started: u64,
    ramp_started: u64,
    ramp_ended: u64,
    hold_started: u64,
    hold_ended: u64,
    rss_before_kib: u64,
    rss_held_kib: u64,
    memory_sampled: u64,
    fully_at_memory: u64,
    cpu: CpuMarks,
}

/// One run of this shard.
struct Run {
    schedule: Schedule,
    fleet: Fleet,
    tokens: Arc<dyn TokenProvider>,
    bot: Arc<LoadBot>,
    shared: Rc<Shared>,
    /// Plan offset (index - first_index) -> this shard's slot, or [`NOT_HERE`].
    slot_of: Vec<u32>,
    /// Slot -> absolute account index, and its rooms (id, room slot).
    indexes: Vec<u64>,
    plan_rooms: Vec<Vec<(String, u32)>>,
    /// Slot -> the account, once added; `active`: the online ones, in arrival order;
    /// `senders`: those of them that have logged in and entered their rooms once.
    members: Vec<Option<Member>>,
    active: VecDeque<u32>,
    senders: VecDeque<u32>,
    /// Slot -> logged out by a ramp down.
    gone: Vec<bool>,
    /// Slot -> joined after sending began: the room seqs this shard's sends had then got.
    joined_after: Vec<Option<Vec<(u64, u64)>>>,
    added: u64,
    departed: u64,
    add_errors: u64,
    next_arrival: u64,
    next_departure: u64,
    /// The next sender's position in `senders`.
    cursor: usize,
    chaos: Chaos,
    server_drops: u64,
    times: Times,
}

/// Runs the plan (validated, pre-flight passed) and reports. Call inside an actix System.
pub async fn run(plan: Plan) -> Result<Report, LoadtestError> {
    run_with(plan, None).await
}

/// As [`run`], publishing the live figures to `live` (the `--console` page) each second.
pub async fn run_with(plan: Plan, live: Option<Arc<Live>>) -> Result<Report, LoadtestError> {
    let started = now_ms();
    let backend = Backend::start(&plan).await?;
    let tokens = backend.token_provider(&plan)?;
    let mut config = FleetConfig::new(backend.ws_url.clone());
    config.trust = backend.trust.clone();
    config.workers = plan.workers;
    config.admission_per_sec = plan.admission_per_sec;
    config.admission_burst = plan.admission_burst;
    config.outbox_capacity = plan.outbox_capacity;
    config.event_capacity = plan.event_capacity;
    config.timings.heartbeat_interval = plan.heartbeat.interval;
    let fleet = Fleet::start(config);
    let mut run = Run::new(plan, fleet, tokens);
    run.times.started = started;
    run.times.rss_before_kib = rss_kib();
    run.times.cpu.ramp_start = cpu_secs();
    let reader = run.read_events();
    let progress = Progress::start(
        run.shared.clone(),
        run.fleet.clone(),
        run.indexes.len() as u64,
        run.shared.plan.progress,
        live,
    );
    run.stages(&backend).await;
    run.drain().await;
    run.times.cpu.end = cpu_secs();
    progress.stop(&run.fleet);
    let mut report = run.count().await;

    // Log out, stop.
    let shutdown = run.fleet.shutdown(run.shared.plan.shutdown_timeout).await;
    tracing::info!(
        logged_out = shutdown.logged_out,
        timed_out = shutdown.timed_out,
        "fleet shut down"
    );
    reader.abort();
    backend.stop().await;
    if let Some(s) = report.shards.last_mut() {
        s.ended_ms = now_ms();
    }
    report.finish();
    Ok(report)
}

impl Run {
    fn new(plan: Plan, fleet: Fleet, tokens: Arc<dyn TokenProvider>) -> Run {
        let schedule = plan.schedule();
        let indexes = plan.shard_indexes();
        let mut slot_of = vec![NOT_HERE; plan.accounts as usize];
        let mut account_slots = HashMap::with_capacity(indexes.len());
        let mut room_slots: HashMap<String, u32> = HashMap::new();
        let mut plan_rooms = Vec::with_capacity(indexes.len());
        for (slot, &i) in indexes.iter().enumerate() {
            slot_of[(i - plan.first_index) as usize] = slot as u32;
            account_slots.insert(plan.user_id(i), slot as u32);
            let rooms: Vec<(String, u32)> = plan
                .rooms_of(i - plan.first_index)
                .into_iter()
                .map(|r| {
                    let id = plan.room_id(r);
                    let next = room_slots.len() as u32;
                    let rs = *room_slots.entry(id.clone()).or_insert(next);
                    (id, rs)
                })
                .collect();
            plan_rooms.push(rooms);
        }
        let receivers = Arc::new(Receivers::new(account_slots.clone(), room_slots.clone()));
        let tracker = Tracker::new(account_slots, room_slots, indexes.len() as u64);
        let stages = schedule
            .stages
            .iter()
            .map(|s| StageReport {
                name: s.name.clone(),
                from_accounts: s.from_accounts,
                to_accounts: s.to_accounts,
                from_rate: s.from_rate,
                to_rate: s.to_rate,
                ..StageReport::default()
            })
            .collect();
        let asks_server = plan.shard.index == 0;
        let shared = Rc::new(Shared {
            plan,
            tracker: RefCell::new(tracker),
            sends: Rc::new(RefCell::new(Sends::default())),
            receivers: receivers.clone(),
            latency: RefCell::new(LatencySeries::default()),
            stages: RefCell::new(stages),
            current: Cell::new(usize::MAX),
            chaos_events: RefCell::new(Vec::new()),
            planned: indexes.len() as u64,
            added: Cell::new(0),
            departed: Cell::new(0),
        });
        Run {
            schedule,
            fleet,
            tokens,
            bot: Arc::new(LoadBot { receivers }),
            shared,
            members: (0..indexes.len()).map(|_| None).collect(),
            senders: VecDeque::new(),
            gone: vec![false; indexes.len()],
            joined_after: vec![None; indexes.len()],
            slot_of,
            indexes,
            plan_rooms,
            active: VecDeque::new(),
            added: 0,
            departed: 0,
            add_errors: 0,
            next_arrival: 0,
            next_departure: 0,
            cursor: 0,
            chaos: Chaos::new(asks_server),
            server_drops: 0,
            times: Times::default(),
        }
    }

    /// Reads the fleet's events as they come into the tracker.
    fn read_events(&self) -> tokio::task::JoinHandle<()> {
        let mut events = self.fleet.subscribe();
        let shared = self.shared.clone();
        actix::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(ev) => shared.tracker.borrow_mut().apply(&ev),
                    Err(RecvError::Lagged(n)) => {
                        shared.tracker.borrow_mut().out.counts.events_lost += n
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        })
    }

    /// The stage loop, from the first stage's start to the last one's end.
    async fn stages(&mut self, backend: &Backend) {
        let total = self.schedule.total();
        let run_start = Instant::now();
        // Schedule time 0 as an Instant and as unix ms (stage bounds are stamped on the
        // schedule, not when a late step noticed them).
        let mut base = run_start;
        let mut base_ms = now_ms();
        let memory_at = self.memory_at();
        let messages_from = self.messages_from();
        let mut ticker = tokio::time::interval(STEP);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let (mut last_t, mut credit) = (Duration::ZERO, 0.0f64);
        let mut rate;
        self.times.ramp_started = now_ms();
        self.times.hold_started = self.times.ramp_started;
        loop {
            ticker.tick().await;
            let mut t = base.elapsed().min(total);
            if self.schedule.settle_after_first && self.shared.current.get() == 0 {
                let ramp_end = self.schedule.stages[0].end();
                if t >= ramp_end {
                    self.arrive(ramp_end);
                    self.settle(run_start + self.shared.plan.ramp_timeout).await;
                    base = Instant::now() - ramp_end;
                    base_ms = now_ms().saturating_sub(ramp_end.as_millis() as u64);
                    (t, last_t) = (ramp_end, ramp_end);
                    self.times.hold_started = now_ms();
                }
            }
            let i = self.schedule.index_at(t);
            if i != self.shared.current.get() {
                // The stage's last arrivals and departures are its own.
                if let Some(prev) = self.schedule.stages.get(self.shared.current.get()) {
                    let end = prev.end();
                    self.arrive(end);
                    self.depart(end);
                }
                let at = base_ms + self.schedule.stages[i].start.as_millis() as u64;
                self.enter_stage(i, at);
            }
            self.arrive(t);
            self.depart(t);
            self.take_ready();
            credit += self.message_credit(last_t.max(messages_from), t);
            rate = self.schedule.msg_rate(t.min(total.saturating_sub(STEP)));
            self.issue(credit, rate);
            self.chaos_step(t, backend).await;
            if self.times.rss_held_kib == 0 && t >= memory_at {
                self.sample_memory();
            }
            last_t = t;
            if t >= total {
                break;
            }
        }
        self.issue_rest(credit, rate).await;
        if self.times.rss_held_kib == 0 {
            self.sample_memory();
        }
        self.leave_stage(base_ms + total.as_millis() as u64);
        self.times.hold_ended = now_ms();
        if self.times.cpu.ramp_end == 0.0 {
            self.times.cpu.ramp_end = cpu_secs(); // one stage only: all of it ramped
        }
        if !self.schedule.settle_after_first {
            self.times.ramp_ended = self.stage_end_ms(0);
        }
    }

    /// When (schedule time) messages may start: `messages.start_after` into the hold (the
    /// shorthand) or into the first stage.
    fn messages_from(&self) -> Duration {
        let start = match self.schedule.settle_after_first {
            true => self.schedule.stages[1].start,
            false => Duration::ZERO,
        };
        start + self.shared.plan.messages.start_after
    }

    /// When (schedule time) idle memory is sampled: `memory_at` into the hold, earlier if
    /// messages or chaos start earlier (so it measures idle accounts).
    fn memory_at(&self) -> Duration {
        let plan = &self.shared.plan;
        let (start, len) = match self.schedule.settle_after_first {
            true => (self.schedule.stages[1].start, plan.duration),
            false => (Duration::ZERO, self.schedule.total()),
        };
        let chaos = &plan.chaos;
        let busy = [
            (plan.messages.per_account_per_sec > 0.0).then_some(plan.messages.start_after),
            Some(chaos.server_drop_at),
            (chaos.drop_share > 0.0).then_some(chaos.drop_every),
            (chaos.offline_share > 0.0).then_some(chaos.offline_every),
        ];
        let mut at = plan.memory_at.min(len.mul_f64(0.9));
        if let Some(b) = busy.into_iter().flatten().filter(|d| !d.is_zero()).min() {
            at = at.min(b.mul_f64(0.9));
        }
        start + at
    }

    fn sample_memory(&mut self) {
        self.times.rss_held_kib = rss_kib();
        self.times.memory_sampled = now_ms();
        self.times.fully_at_memory = self.shared.tracker.borrow().fully_connected;
    }

    /// The shorthand's barrier: every account online, or the ramp timeout.
    async fn settle(&mut self, deadline: Instant) {
        let expected = self.added;
        let mut all_online = AllOnline::new(&self.fleet, &self.shared.tracker);
        while !all_online.check(expected, expected).await && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.times.ramp_ended = match self.shared.tracker.borrow().all_connected_ms {
            0 => now_ms(),
            t => t,
        };
        self.times.cpu.ramp_end = cpu_secs();
    }

    fn stage_end_ms(&self, i: usize) -> u64 {
        self.shared
            .stages
            .borrow()
            .get(i)
            .map(|s| s.ended_ms)
            .unwrap_or(0)
    }

    fn leave_stage(&mut self, now: u64) {
        let i = self.shared.current.get();
        if let Some(s) = self.shared.stages.borrow_mut().get_mut(i) {
            if s.ended_ms == 0 {
                s.ended_ms = now;
            }
        }
    }

    /// Stage `i` starts (at unix ms `at`, which ends the one before).
    fn enter_stage(&mut self, i: usize, at: u64) {
        if i == 1 && !self.schedule.settle_after_first {
            self.times.cpu.ramp_end = cpu_secs(); // stages: the first one is the ramp
        }
        self.leave_stage(at);
        self.shared.current.set(i);
        if let Some(s) = self.shared.stages.borrow_mut().get_mut(i) {
            s.started_ms = at;
        }
        self.chaos.enter(&self.schedule.stages[i]);
    }

    fn stage_count(&self, f: impl FnOnce(&mut StageReport)) {
        let i = self.shared.current.get();
        if let Some(s) = self.shared.stages.borrow_mut().get_mut(i) {
            f(s);
        }
    }

    /// Adds this shard's accounts that are due by `t`.
    fn arrive(&mut self, t: Duration) {
        let due = self.schedule.arrivals_by(t);
        while self.next_arrival < due {
            let offset = self.next_arrival as usize;
            self.next_arrival += 1;
            let slot = self.slot_of.get(offset).copied().unwrap_or(NOT_HERE);
            if slot != NOT_HERE {
                self.add(slot);
            }
        }
    }

    fn add(&mut self, slot: u32) {
        let plan = &self.shared.plan;
        let i = self.indexes[slot as usize];
        let rooms = std::mem::take(&mut self.plan_rooms[slot as usize]);
        let spec = AccountSpec {
            user_id: plan.user_id(i),
            user_name: plan.user_id(i),
            device_id: None,
            token: self.tokens.clone(),
            rooms: rooms
                .iter()
                .map(|(id, _)| RoomSpec {
                    entry: plan.rooms.entry,
                    ..RoomSpec::new(id.clone())
                })
                .collect(),
        };
        let room_slots: Vec<u32> = rooms.iter().map(|r| r.1).collect();
        self.shared.tracker.borrow_mut().added(slot, &room_slots);
        match self.fleet.add_account(spec, self.bot.clone()) {
            Ok(handle) => {
                self.members[slot as usize] = Some(Member::new(handle, rooms));
                self.active.push_back(slot);
                self.added += 1;
                self.shared.added.set(self.added);
                self.stage_count(|s| s.arrived += 1);
            }
            Err(e) => {
                self.add_errors += 1;
                tracing::warn!(error = %e, "account not added");
            }
        }
    }

    /// Logs out this shard's accounts that are due to leave by `t` (oldest first).
    fn depart(&mut self, t: Duration) {
        let due = self.schedule.departures_by(t);
        let mut left_now = false;
        while self.next_departure < due {
            let offset = self.next_departure as usize;
            self.next_departure += 1;
            let slot = self.slot_of.get(offset).copied().unwrap_or(NOT_HERE);
            let Some(member) = self.members.get(slot as usize).and_then(Option::as_ref) else {
                continue;
            };
            self.shared.tracker.borrow_mut().departed(slot, now_ms());
            self.gone[slot as usize] = true;
            left_now = true;
            self.departed += 1;
            self.shared.departed.set(self.departed);
            self.stage_count(|s| s.departed += 1);
            let (handle, pending) = (member.handle.clone(), member.pending.clone());
            let deadline = self.shared.plan.shutdown_timeout;
            actix::spawn(async move {
                // Its sends answered first (a logout would fail them), then the logout.
                let out = async {
                    while pending.get() > 0 {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    handle.logout().await
                };
                if let Ok(Err(e)) = tokio::time::timeout(deadline, out).await {
                    tracing::warn!(error = %e, "ramp-down logout failed");
                }
            });
        }
        if left_now {
            let gone = &self.gone;
            let before = self.cursor.min(self.senders.len());
            self.cursor -= self
                .senders
                .range(..before)
                .filter(|&&s| gone[s as usize])
                .count();
            self.active.retain(|&s| !gone[s as usize]);
            self.senders.retain(|&s| !gone[s as usize]);
        }
    }

    /// Accounts that have just logged in and entered their rooms join the senders (a send
    /// before that would wait in the outbox and leave in a burst).
    fn take_ready(&mut self) {
        let ready = std::mem::take(&mut self.shared.tracker.borrow_mut().newly_ready);
        for slot in ready {
            if self.gone[slot as usize] {
                continue;
            }
            self.senders.push_back(slot);
            let sends = self.shared.sends.borrow();
            if sends.issued > 0 {
                if let Some(m) = &self.members[slot as usize] {
                    let seqs = m.rooms.iter().map(|r| {
                        // the room's latest incarnation and its highest seq
                        let latest = sends.seqs.get(&r.1).and_then(|by| by.last_key_value());
                        latest.map_or((0, 0), |(i, s)| (*i, s.1))
                    });
                    self.joined_after[slot as usize] = Some(seqs.collect());
                }
            }
        }
    }

    /// Messages due between schedule times `from` and `to` (rate x online accounts x time).
    fn message_credit(&self, from: Duration, to: Duration) -> f64 {
        if to <= from {
            return 0.0;
        }
        let rate = self.schedule.msg_rate(from + (to - from) / 2);
        rate * self.senders.len() as f64 * (to - from).as_secs_f64()
    }

    /// Issues the sends due by `credit`; `rate`: messages per second per account now.
    fn issue(&mut self, credit: f64, rate: f64) {
        let due = (credit + 1e-6).floor() as u64;
        let rooms = u32::max(self.shared.plan.rooms.per_account, 1);
        let spacing = match rate > 0.0 {
            true => Duration::from_secs_f64((f64::from(rooms) / rate).min(60.0)),
            false => Duration::ZERO,
        };
        let tracker = self.shared.tracker.borrow();
        let online = |slot: u32| tracker.is_full(slot);
        let turns = Turns {
            members: &self.members,
            senders: &self.senders,
            online: &online,
            gap: spacing / 2,
        };
        self.cursor = issue_sends(
            &self.shared.sends,
            &turns,
            self.cursor,
            due,
            self.shared.plan.messages.body_bytes,
        );
    }

    /// After the last stage: the plan's exact count, a step at a time so no room gets two
    /// sends too close (at most a second; then the rest are not sent).
    async fn issue_rest(&mut self, credit: f64, rate: f64) {
        let due = credit.round();
        let deadline = Instant::now() + Duration::from_secs(1);
        while (self.shared.sends.borrow().issued as f64) < due && Instant::now() < deadline {
            self.issue(due, rate);
            tokio::time::sleep(STEP).await;
        }
    }

    async fn chaos_step(&mut self, t: Duration, backend: &Backend) {
        let i = self.shared.current.get();
        let stage_end = self.schedule.stages[i].end();
        let actions = {
            let mut events = self.shared.chaos_events.borrow_mut();
            let (total, online) = (self.schedule.total(), self.active.len());
            self.chaos
                .step(t, stage_end, total, online, now_ms(), &mut events)
        };
        for action in actions {
            match action {
                Action::Drop(picks) => {
                    for p in picks {
                        self.member_at(p).handle.chaos_drop();
                    }
                }
                Action::Offline(picks, len) => {
                    for p in picks {
                        self.member_at(p).handle.chaos_offline(len);
                    }
                }
                Action::ServerDrop => match backend.drop_all().await {
                    Ok(()) => self.server_drops += 1,
                    Err(e) => tracing::warn!(error = %e, "server-side drop failed"),
                },
            }
        }
    }

    fn member_at(&self, pick: usize) -> &Member {
        let slot = self.active[pick] as usize;
        self.members[slot]
            .as_ref()
            .expect("an active slot has its member")
    }

    /// Chaos has ended; every account back (at most `recovery_timeout`), then sends
    /// answered and deliveries settled (at most `drain`).
    async fn drain(&mut self) {
        let plan = &self.shared.plan;
        let expected_online = self.added - self.departed;
        let recovery = Instant::now() + plan.recovery_timeout;
        let mut all_online = AllOnline::new(&self.fleet, &self.shared.tracker);
        while !all_online.check(self.added, expected_online).await && Instant::now() < recovery {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let deadline = Instant::now() + plan.drain;
        let mut last = (u64::MAX, Instant::now());
        loop {
            let delivered = self.shared.receivers.delivered();
            if delivered != last.0 {
                last = (delivered, Instant::now());
            }
            let settled = self.shared.sends.borrow().in_flight == 0
                && last.1.elapsed() >= Duration::from_millis(300);
            if settled || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The final counts: every account's status, missing seqs, memory.
    async fn count(&mut self) -> Report {
        let statuses = self.fleet.status().await;
        self.shared.flush_latency();
        let mut report = self.shared.snapshot(&self.fleet);
        let mut fully = 0;
        for s in &statuses {
            if self.shared.tracker.borrow().has_left(&s.user_id) {
                *report
                    .accounts_by_state
                    .entry("logged out".into())
                    .or_default() += 1;
                continue;
            }
            *report
                .accounts_by_state
                .entry(s.state.name().to_lowercase())
                .or_default() += 1;
            for r in &s.rooms {
                *report
                    .rooms_by_state
                    .entry(r.state.name().to_lowercase())
                    .or_default() += 1;
            }
            if s.state == ConnectionState::Connected
                && s.rooms.iter().all(|r| r.state == RoomState::Connected)
            {
                fully += 1;
            }
        }
        // Every member is checked for missing messages, from its first seq to the room's
        // last; one that logged out to its own last seq (it stopped listening then).
        let memberships: Vec<Membership> = self
            .members
            .iter()
            .enumerate()
            .filter_map(|(slot, m)| Some((slot, m.as_ref()?)))
            .flat_map(|(slot, m)| {
                let (left, after) = (self.gone[slot], self.joined_after[slot].as_ref());
                m.rooms.iter().enumerate().map(move |(j, r)| Membership {
                    account: slot as u32,
                    room: r.1,
                    left,
                    joined_after: after.map(|a| a[j]),
                })
            })
            .collect();
        let c = &mut report.counts;
        c.accounts_planned = self.indexes.len() as u64;
        c.accounts_added = self.added;
        c.accounts_expected_online = self.added - self.departed;
        c.accounts_fully_connected = fully;
        let missing = self
            .shared
            .receivers
            .missing(&memberships, &self.shared.sends.borrow().seqs);
        c.messages_missing = missing.messages;
        c.messages_lost_with_backend = missing.lost_with_backend;
        c.chaos_drops = self.chaos.drops;
        c.chaos_offline = self.chaos.offline;
        c.server_drops = self.server_drops;
        let metrics = self.fleet.metrics();
        c.renewals_ok = metrics.renewals_ok.get();
        c.renewals_failed = metrics.renewals_failed.get();
        c.handler_panics = metrics.handler_panics.get();
        if self.add_errors > 0 {
            tracing::warn!(
                add_errors = self.add_errors,
                "accounts the fleet refused to add"
            );
        }
        let (ramped, delivered) = (c.logins_ok, c.messages_delivered);
        report.shards.push(self.shard_run(ramped, delivered));
        report.finish();
        report
    }

    fn shard_run(&self, ramped: u64, delivered: u64) -> ShardRun {
        let t = &self.times;
        let plan = &self.shared.plan;
        let online = t.fully_at_memory.max(1);
        ShardRun {
            shard: plan.shard,
            accounts: self.indexes.len() as u64,
            started_ms: t.started,
            ramp_started_ms: t.ramp_started,
            ramp_ended_ms: t.ramp_ended,
            hold_started_ms: t.hold_started,
            hold_ended_ms: t.hold_ended,
            ended_ms: 0,
            memory: Memory {
                rss_before_kib: t.rss_before_kib,
                rss_held_kib: t.rss_held_kib,
                per_account_bytes: t.rss_held_kib.saturating_sub(t.rss_before_kib) * 1024 / online,
                includes_server: plan.embedded(),
                sampled_ms: t.memory_sampled,
            },
            cpu: t.cpu.figures(ramped, delivered, plan.embedded()),
            host: host_name(),
        }
    }
}
