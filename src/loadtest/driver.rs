//! The run: a [`Fleet`] of this shard's accounts against the backend, in phases.
//!
//! 1. ramp: accounts are added at `arrival_rate` (governor, burst 1) and log in and enter
//!    their rooms through the fleet's admission limiter; the ramp ends when every account is
//!    Connected with every room Connected (or at `ramp_timeout`);
//! 2. hold for `duration`: messages at `per_account_per_sec`, evenly spaced; chaos on its
//!    schedule; memory sampled once the accounts are idle;
//! 3. drain: wait (at most `drain`) for sends in flight, for deliveries and for every account
//!    to be back;
//! 4. count (status of every account, missing seqs), log out, report.
//!
//! Everything here runs on the caller's actix thread; the accounts run on the fleet's
//! arbiters and reach this thread only through events and the shared [`Receivers`].

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::{Quota, RateLimiter};
use rand::seq::index::sample;
use tokio::sync::broadcast::error::RecvError;

use super::backend::Backend;
use super::plan::Plan;
use super::receiver::{make_body, now_us, LoadBot, Receivers};
use super::report::{Memory, Report, ShardRun};
use super::track::Tracker;
use super::LoadtestError;
use crate::client::{AccountHandle, AccountSpec, Fleet, FleetConfig, RoomSpec};
use crate::protocol::{ConnectionState, MessageType, RoomState};

/// Sends waiting for their reply, at most (more wait until replies come back).
const MAX_SENDS_IN_FLIGHT: u64 = 20_000;
/// The hold loop's step: sends are spaced at this granularity.
const STEP: Duration = Duration::from_millis(10);

/// Unix milliseconds.
fn now_ms() -> u64 {
    now_us() / 1000
}

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

/// What the sends produced (driver thread only).
#[derive(Default)]
struct Sends {
    in_flight: u64,
    issued: u64,
    sent: u64,
    failed: u64,
    errors: BTreeMap<u32, u64>,
    /// room slot -> (lowest, highest) seq of this shard's sends.
    seqs: HashMap<u32, (u64, u64)>,
    by_sec: BTreeMap<u64, u64>,
}

/// One account of this shard.
struct Member {
    handle: AccountHandle,
    /// Room ids and slots.
    rooms: Vec<(String, u32)>,
}

/// Runs the plan (validated, pre-flight passed) and reports. Call inside an actix System.
pub async fn run(plan: Plan) -> Result<Report, LoadtestError> {
    let started_ms = now_ms();
    let backend = Backend::start(&plan).await?;
    let tokens = backend.token_provider(&plan)?;

    let mut config = FleetConfig::new(backend.ws_url.clone());
    config.workers = plan.workers;
    config.admission_per_sec = plan.admission_per_sec;
    config.admission_burst = plan.admission_burst;
    config.outbox_capacity = plan.outbox_capacity;
    config.event_capacity = plan.event_capacity;
    config.timings.heartbeat_interval = plan.heartbeat.interval;
    let fleet = Fleet::start(config);
    let mut events = fleet.subscribe();
    let rss_before_kib = rss_kib();

    // Slots: this shard's accounts and the rooms they use.
    let indexes = plan.shard_indexes();
    let mut account_slots = HashMap::with_capacity(indexes.len());
    let mut room_slots: HashMap<String, u32> = HashMap::new();
    let mut plan_rooms: Vec<Vec<(String, u32)>> = Vec::with_capacity(indexes.len());
    for (slot, &i) in indexes.iter().enumerate() {
        account_slots.insert(plan.user_id(i), slot as u32);
        let rooms = plan
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
    let tracker = Rc::new(RefCell::new(Tracker::new(
        account_slots,
        room_slots,
        indexes.len() as u64,
    )));
    let bot = Arc::new(LoadBot {
        receivers: receivers.clone(),
    });

    // Events: read as they come, counted by the tracker.
    let reader = {
        let tracker = tracker.clone();
        actix::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(ev) => tracker.borrow_mut().apply(&ev),
                    Err(RecvError::Lagged(n)) => tracker.borrow_mut().out.counts.events_lost += n,
                    Err(RecvError::Closed) => break,
                }
            }
        })
    };
    let progress = Progress::start(&plan, fleet.clone(), tracker.clone(), receivers.clone());

    // 1. Ramp.
    let ramp_started_ms = now_ms();
    let ramp_deadline = Instant::now() + plan.ramp_timeout;
    // A burst of 10 ms worth of arrivals (1 below 100/s): timers wake a few hundred times a
    // second at best, so a burst of 1 would cap the rate near the timer rate; 10 ms keeps the
    // arrivals even at any scale that matters to a backend.
    let arrival_burst = NonZeroU32::new(plan.arrival_rate / 100).unwrap_or(NonZeroU32::MIN);
    let arrivals = RateLimiter::direct(
        Quota::per_second(NonZeroU32::new(plan.arrival_rate).unwrap_or(NonZeroU32::MIN))
            .allow_burst(arrival_burst),
    );
    let mut members: Vec<Member> = Vec::with_capacity(indexes.len());
    let mut add_errors = 0u64;
    for (slot, (&i, rooms)) in indexes.iter().zip(plan_rooms).enumerate() {
        if Instant::now() >= ramp_deadline {
            break;
        }
        arrivals.until_ready().await;
        let spec = AccountSpec {
            user_id: plan.user_id(i),
            user_name: plan.user_id(i),
            device_id: None,
            token: tokens.clone(),
            rooms: rooms
                .iter()
                .map(|(id, _)| RoomSpec {
                    entry: plan.rooms.entry,
                    ..RoomSpec::new(id.clone())
                })
                .collect(),
        };
        let slots: Vec<u32> = rooms.iter().map(|r| r.1).collect();
        tracker.borrow_mut().added(slot as u32, &slots);
        match fleet.add_account(spec, bot.clone()) {
            Ok(handle) => members.push(Member { handle, rooms }),
            Err(e) => {
                add_errors += 1;
                tracing::warn!(error = %e, "account not added");
            }
        }
    }
    let added = members.len() as u64;
    let mut all_online = AllOnline::new(&fleet, &tracker, added);
    while !all_online.check().await && Instant::now() < ramp_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ramp_ended_ms = match tracker.borrow().all_connected_ms {
        0 => now_ms(),
        t => t,
    };

    // 2. Hold.
    let hold_started_ms = now_ms();
    let sends = Rc::new(RefCell::new(Sends::default()));
    let mut chaos = Chaos::new(&plan);
    let total_rate = plan.messages.per_account_per_sec * members.len() as f64;
    // Idle memory is sampled before messages or faults start.
    let busy_from = [
        if total_rate > 0.0 {
            plan.messages.start_after
        } else {
            Duration::ZERO
        },
        plan.chaos.server_drop_at,
        if plan.chaos.drop_share > 0.0 {
            plan.chaos.drop_every
        } else {
            Duration::ZERO
        },
        if plan.chaos.offline_share > 0.0 {
            plan.chaos.offline_every
        } else {
            Duration::ZERO
        },
    ]
    .into_iter()
    .filter(|d| !d.is_zero())
    .min();
    let mut memory_at = plan.memory_at.min(plan.duration.mul_f64(0.9));
    if let Some(busy) = busy_from {
        memory_at = memory_at.min(busy.mul_f64(0.9));
    }
    let mut rss_held_kib = 0;
    let mut memory_sampled_ms = 0;
    let mut fully_at_memory = 0;
    let hold = Instant::now();
    let mut ticker = tokio::time::interval(STEP);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut cursor: u64 = 0;
    let send_window = plan.duration.saturating_sub(plan.messages.start_after);
    let total_messages = (send_window.as_secs_f64() * total_rate).round() as u64;
    let mut server_drops = 0u64;
    let mut server_dropped = false;
    loop {
        ticker.tick().await;
        let elapsed = hold.elapsed();
        if elapsed >= plan.duration {
            break;
        }
        if rss_held_kib == 0 && elapsed >= memory_at {
            rss_held_kib = rss_kib();
            memory_sampled_ms = now_ms();
            fully_at_memory = tracker.borrow().fully_connected;
        }
        // Messages: as many as are due by now, spread over the accounts in turn.
        if total_rate > 0.0 && elapsed >= plan.messages.start_after {
            let sending = elapsed - plan.messages.start_after;
            let due = ((sending.as_secs_f64() * total_rate) as u64).min(total_messages);
            cursor = issue_sends(&sends, &members, cursor, due, plan.messages.body_bytes);
        }
        // Chaos.
        // With shards, only shard 0 asks: one drop of every session, as planned.
        if !server_dropped
            && plan.shard.index == 0
            && !plan.chaos.server_drop_at.is_zero()
            && elapsed >= plan.chaos.server_drop_at
        {
            server_dropped = true;
            match backend.drop_all().await {
                Ok(()) => server_drops += 1,
                Err(e) => tracing::warn!(error = %e, "server-side drop failed"),
            }
        }
        chaos.step(elapsed, &members);
    }
    // The last step's share: the plan's exact count (unless sends are backed up).
    if total_rate > 0.0 {
        issue_sends(
            &sends,
            &members,
            cursor,
            total_messages,
            plan.messages.body_bytes,
        );
    }
    if rss_held_kib == 0 {
        rss_held_kib = rss_kib();
        memory_sampled_ms = now_ms();
        fully_at_memory = tracker.borrow().fully_connected;
    }
    let hold_ended_ms = now_ms();

    // 3. Drain: sends answered, deliveries settled, accounts back.
    let drain_deadline = Instant::now() + plan.drain;
    let mut last = (u64::MAX, Instant::now());
    loop {
        let delivered = receivers.delivered();
        if delivered != last.0 {
            last = (delivered, Instant::now());
        }
        let settled = sends.borrow().in_flight == 0
            && last.1.elapsed() >= Duration::from_millis(300)
            && all_online.check().await;
        if settled || Instant::now() >= drain_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    progress.stop();

    // 4. Count.
    let statuses = fleet.status().await;
    let mut report = Report::new(plan.clone());
    let mut accounts_by_state: BTreeMap<String, u64> = BTreeMap::new();
    let mut rooms_by_state: BTreeMap<String, u64> = BTreeMap::new();
    let mut fully = 0;
    for s in &statuses {
        *accounts_by_state
            .entry(s.state.name().to_lowercase())
            .or_default() += 1;
        for r in &s.rooms {
            *rooms_by_state
                .entry(r.state.name().to_lowercase())
                .or_default() += 1;
        }
        if s.state == ConnectionState::Connected
            && s.rooms.iter().all(|r| r.state == RoomState::Connected)
        {
            fully += 1;
        }
    }
    let memberships: Vec<(u32, u32)> = members
        .iter()
        .enumerate()
        .flat_map(|(slot, m)| m.rooms.iter().map(move |r| (slot as u32, r.1)))
        .collect();
    let received = receivers.collect();
    let metrics = fleet.metrics();
    {
        let tracked = &mut tracker.borrow_mut().out;
        let s = sends.borrow();
        let c = &mut report.counts;
        *c = std::mem::take(&mut tracked.counts);
        c.accounts_planned = indexes.len() as u64;
        c.accounts_added = added;
        c.accounts_fully_connected = fully;
        c.messages_sent = s.sent;
        c.messages_send_failed = s.failed;
        c.messages_delivered = received.delivered;
        c.messages_duplicated = received.duplicated;
        c.messages_missing = receivers.missing(&memberships, &s.seqs);
        c.chaos_drops = chaos.drops;
        c.chaos_offline = chaos.offline;
        c.server_drops = server_drops;
        c.renewals_ok = metrics.renewals_ok.get();
        c.renewals_failed = metrics.renewals_failed.get();
        c.handler_panics = metrics.handler_panics.get();
        report.histograms = std::mem::take(&mut tracked.histograms);
        report
            .histograms
            .login
            .merge(&metrics.login_latency.snapshot());
        report
            .histograms
            .room_enter
            .merge(&metrics.room_enter_latency.snapshot());
        report.histograms.message = received.latency;
        report.errors = std::mem::take(&mut tracked.errors);
        for (code, n) in &s.errors {
            *report.errors.entry(*code).or_default() += n;
        }
        if add_errors > 0 {
            tracing::warn!(add_errors, "accounts the fleet refused to add");
        }
        report.timeline = std::mem::take(&mut tracked.timeline);
        for (sec, n) in &s.by_sec {
            report.timeline.entry(*sec).or_default().sent += n;
        }
        for (sec, n) in &received.delivered_by_sec {
            report.timeline.entry(*sec).or_default().delivered += n;
        }
    }
    report.accounts_by_state = accounts_by_state;
    report.rooms_by_state = rooms_by_state;
    let online = fully_at_memory.max(1);
    report.shards.push(ShardRun {
        shard: plan.shard,
        accounts: indexes.len() as u64,
        started_ms,
        ramp_started_ms,
        ramp_ended_ms,
        hold_started_ms,
        hold_ended_ms,
        ended_ms: 0,
        memory: Memory {
            rss_before_kib,
            rss_held_kib,
            per_account_bytes: rss_held_kib.saturating_sub(rss_before_kib) * 1024 / online,
            includes_server: plan.embedded(),
            sampled_ms: memory_sampled_ms,
        },
        host: host_name(),
    });

    // Log out, stop.
    let shutdown = fleet.shutdown(plan.shutdown_timeout).await;
    tracing::info!(
        logged_out = shutdown.logged_out,
        timed_out = shutdown.timed_out,
        "fleet shut down"
    );
    reader.abort();
    backend.stop().await;
    if let Some(run) = report.shards.last_mut() {
        run.ended_ms = now_ms();
    }
    report.finish();
    Ok(report)
}

/// Issues sends until `due` have been issued (or too many wait for replies), taking the
/// accounts in turn and each account's rooms in turn. Returns the new cursor.
fn issue_sends(
    sends: &Rc<RefCell<Sends>>,
    members: &[Member],
    mut cursor: u64,
    due: u64,
    body_bytes: usize,
) -> u64 {
    let n = members.len() as u64;
    if n == 0 {
        return cursor;
    }
    loop {
        let (issued, in_flight) = {
            let s = sends.borrow();
            (s.issued, s.in_flight)
        };
        if issued >= due || in_flight >= MAX_SENDS_IN_FLIGHT {
            return cursor;
        }
        let member = &members[(cursor % n) as usize];
        cursor += 1;
        if member.rooms.is_empty() {
            continue;
        }
        let (room_id, room_slot) =
            member.rooms[((cursor / n) % member.rooms.len() as u64) as usize].clone();
        send_one(
            sends,
            member.handle.clone(),
            room_id,
            room_slot,
            body_bytes,
            issued,
        );
    }
}

/// Sends one message and records its outcome.
fn send_one(
    sends: &Rc<RefCell<Sends>>,
    handle: AccountHandle,
    room_id: String,
    room_slot: u32,
    body_bytes: usize,
    n: u64,
) {
    {
        let mut s = sends.borrow_mut();
        s.issued += 1;
        s.in_flight += 1;
    }
    let sends = sends.clone();
    actix::spawn(async move {
        let body = make_body(body_bytes, now_us(), n);
        let result = handle
            .send_room_message(&room_id, MessageType::Text, body)
            .await;
        let mut s = sends.borrow_mut();
        s.in_flight -= 1;
        match result {
            Ok(reply) => {
                s.sent += 1;
                *s.by_sec.entry(now_ms() / 1000).or_default() += 1;
                if let Some(seq) = reply.seq {
                    let e = s.seqs.entry(room_slot).or_insert((seq, seq));
                    e.0 = e.0.min(seq);
                    e.1 = e.1.max(seq);
                }
            }
            Err(e) => {
                s.failed += 1;
                *s.errors.entry(e.code.number()).or_default() += 1;
            }
        }
    });
}

/// "Has every added account settled?" (Connected with every room Connected, or ended, or a
/// room out after a failed first entry, which ZIM does not retry.) From the tracker; if it
/// lost events to lag, from the fleet's status (at most once a second: it asks every
/// account), where only fully connected accounts count.
struct AllOnline<'a> {
    fleet: &'a Fleet,
    tracker: &'a Rc<RefCell<Tracker>>,
    added: u64,
    last_status: Option<Instant>,
}

impl<'a> AllOnline<'a> {
    fn new(fleet: &'a Fleet, tracker: &'a Rc<RefCell<Tracker>>, added: u64) -> Self {
        AllOnline {
            fleet,
            tracker,
            added,
            last_status: None,
        }
    }

    async fn check(&mut self) -> bool {
        let (settled, lost) = {
            let t = self.tracker.borrow();
            (t.settled, t.out.counts.events_lost)
        };
        if settled >= self.added {
            return true;
        }
        if lost == 0
            || self
                .last_status
                .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return false;
        }
        self.last_status = Some(Instant::now());
        let online = self
            .fleet
            .status()
            .await
            .iter()
            .filter(|s| {
                s.state == ConnectionState::Connected
                    && s.rooms.iter().all(|r| r.state == RoomState::Connected)
            })
            .count() as u64;
        online >= self.added
    }
}

/// Client-side chaos on its schedule.
struct Chaos {
    drop_share: f64,
    drop_every: Duration,
    offline_share: f64,
    offline_every: Duration,
    offline_for: Duration,
    next_drop: Duration,
    next_offline: Duration,
    drops: u64,
    offline: u64,
}

impl Chaos {
    fn new(plan: &Plan) -> Chaos {
        let c = &plan.chaos;
        Chaos {
            drop_share: c.drop_share,
            drop_every: c.drop_every,
            offline_share: c.offline_share,
            offline_every: c.offline_every,
            offline_for: c.offline_for,
            next_drop: c.drop_every,
            next_offline: c.offline_every,
            drops: 0,
            offline: 0,
        }
    }

    fn pick(members: &[Member], share: f64) -> Vec<usize> {
        let k = ((members.len() as f64 * share).round() as usize).min(members.len());
        sample(&mut rand::thread_rng(), members.len(), k).into_vec()
    }

    fn step(&mut self, elapsed: Duration, members: &[Member]) {
        if self.drop_share > 0.0 && !self.drop_every.is_zero() && elapsed >= self.next_drop {
            self.next_drop += self.drop_every;
            for i in Self::pick(members, self.drop_share) {
                members[i].handle.chaos_drop();
                self.drops += 1;
            }
        }
        if self.offline_share > 0.0 && !self.offline_every.is_zero() && elapsed >= self.next_offline
        {
            self.next_offline += self.offline_every;
            for i in Self::pick(members, self.offline_share) {
                members[i].handle.chaos_offline(self.offline_for);
                self.offline += 1;
            }
        }
    }
}

/// The live progress line on stderr, once a second.
struct Progress {
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    fn start(
        plan: &Plan,
        fleet: Fleet,
        tracker: Rc<RefCell<Tracker>>,
        receivers: Arc<Receivers>,
    ) -> Progress {
        if !plan.progress {
            return Progress { handle: None };
        }
        let total = plan.shard_indexes().len() as u64;
        let handle = actix::spawn(async move {
            let start = Instant::now();
            let mut last = (0u64, 0u64, 0u64);
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let line = {
                    let t = tracker.borrow();
                    let c = &t.out.counts;
                    let (connected, reconnecting, other) = t.states();
                    let delivered = receivers.delivered();
                    let logins = c.logins_ok + c.room_entries_ok;
                    let line = format!(
                        "[{:>4}s] accounts {connected} connected, {reconnecting} reconnecting, {other} other; fully connected {}/{total} | logins+rooms {}/s, reconnects {}/s | delivered {}/s | p99 login {} ms, message {} ms{}",
                        start.elapsed().as_secs(),
                        t.fully_connected,
                        logins - last.0,
                        c.reconnects - last.1,
                        delivered - last.2,
                        super::report::ms(fleet.metrics().login_latency.snapshot().value_at_quantile(0.99)),
                        super::report::ms(receivers.latency_p99_us()),
                        match t.out.counts.events_lost { 0 => String::new(), n => format!(" | events lost {n}") },
                    );
                    last = (logins, c.reconnects, delivered);
                    line
                };
                eprintln!("{line}");
            }
        });
        Progress {
            handle: Some(handle),
        }
    }

    fn stop(mut self) {
        if let Some(h) = self.handle.take() {
            h.abort();
        }
    }
}
