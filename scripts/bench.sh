#!/usr/bin/env bash
# The zimfleet benchmark (issue 5): one command, prints the figures.
#
#   scripts/bench.sh            # release build, then both phases (about 5 minutes)
#
# The reference server runs in its own process (`zimfleet server`), the load in another
# (`zimfleet loadtest`), both on this machine, over loopback.
#
# Phase 1, hold and drop: ACCOUNTS accounts (default 19,000), one room each (rooms of
#   HOLD_ROOM_SIZE: with 100, each entry costs ~50 member-joined pushes on average and those,
#   not logins, set the ramp rate),
#   log in at ARRIVAL/s through an admission limit of ADMISSION/s, are held idle with
#   heartbeats for HOLD_IDLE (default 60 s): memory per idle account is read from VmRSS of
#   each process (load: its own report; server: sampled here); then messages flow at
#   DROP_MSG_RATE per account per second, and the server drops every session at once
#   (POST /admin/faults/drop); the run waits for every account and room to be back, and
#   counts missing and duplicated messages by room seq.
# Phase 2, fan-out: FANOUT_ACCOUNTS accounts in rooms of 100, each sending 1 message per
#   second for FANOUT_SECS: delivered messages per second and end-to-end p50/p99.
# Phase 3, storm at a held limit: ACCOUNTS accounts with the admission limit at
#   STORM_ADMISSION/s (below what this machine can log in per second, so the limiter and not
#   the CPU sets the pace), every session dropped 5 s into the hold: peak re-login rate vs
#   the limit, all back, nothing missing or duplicated.
#
# Environment knobs (defaults in brackets): ACCOUNTS [19000], ARRIVAL [3000], ADMISSION
# [6000], HOLD_IDLE [60], DROP_MSG_RATE [0.01], FANOUT_ACCOUNTS [1000], FANOUT_SECS [30],
# STORM_ADMISSION [2000], HOLD_ROOM_SIZE [10], OUT [target/bench], PROFILE [release],
# KEEP_PORT_RANGE [0: widen net.ipv4.ip_local_port_range for the run when needed and allowed].
set -euo pipefail
cd "$(dirname "$0")/.."

ACCOUNTS=${ACCOUNTS:-19000}
ARRIVAL=${ARRIVAL:-3000}
ADMISSION=${ADMISSION:-6000}
HOLD_IDLE=${HOLD_IDLE:-60}
DROP_MSG_RATE=${DROP_MSG_RATE:-0.01}
FANOUT_ACCOUNTS=${FANOUT_ACCOUNTS:-1000}
FANOUT_SECS=${FANOUT_SECS:-30}
STORM_ADMISSION=${STORM_ADMISSION:-2000}
HOLD_ROOM_SIZE=${HOLD_ROOM_SIZE:-10}
OUT=${OUT:-target/bench}
mkdir -p "$OUT"

# PROFILE=debug is only for trying the script itself at a small scale; figures are release.
PROFILE=${PROFILE:-release}
echo "== building ($PROFILE)" >&2
if [ "$PROFILE" = release ]; then
    cargo build --release --bin zimfleet >&2
else
    cargo build --bin zimfleet >&2
fi
BIN=target/$PROFILE/zimfleet

# Both processes may hold 19,000+ sockets: take the hard open-file limit.
ulimit -n "$(ulimit -Hn)"

SECRET=$(head -c 16 /dev/urandom | xxd -p)          # 32 characters
ADMIN_TOKEN=$(head -c 16 /dev/urandom | xxd -p)
SERVER_PID=""
SAMPLER_PID=""
PORT_RANGE_FILE=/proc/sys/net/ipv4/ip_local_port_range
PORT_RANGE_SAVED=""
cleanup() {
    [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null || true
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    if [ -n "$PORT_RANGE_SAVED" ]; then
        echo "$PORT_RANGE_SAVED" >"$PORT_RANGE_FILE" && echo "   local port range restored to $PORT_RANGE_SAVED" >&2
    fi
}
trap cleanup EXIT

for tool in curl jq xxd; do
    command -v "$tool" >/dev/null || { echo "bench.sh needs $tool (apt-get install $tool)" >&2; exit 2; }
done

# Linux hands connect() the even half of the local port range first; past it every new
# connection searches the range and logins stall for seconds (measured: at 14,116 of the
# default 32768-60999). All connections go to one server address, so each needs its own port.
# Widen the range for this run when the even half cannot hold ACCOUNTS and we may (root);
# KEEP_PORT_RANGE=1 leaves it alone. The range is restored on exit.
read -r PORT_LO PORT_HI <"$PORT_RANGE_FILE"
if [ "${KEEP_PORT_RANGE:-0}" != 1 ] && [ $(((PORT_HI - PORT_LO + 1) / 2)) -lt $((ACCOUNTS + 1000)) ]; then
    if [ -w "$PORT_RANGE_FILE" ] && echo "1024 65535" >"$PORT_RANGE_FILE" 2>/dev/null; then
        PORT_RANGE_SAVED="$PORT_LO $PORT_HI"
        echo "== local port range widened from $PORT_LO-$PORT_HI to 1024-65535 for this run" >&2
    else
        echo "== local port range $PORT_LO-$PORT_HI: its even half holds fewer than $ACCOUNTS connections; expect a login stall (widen net.ipv4.ip_local_port_range)" >&2
    fi
fi

echo "== starting the reference server" >&2
ZIMFLEET__SERVER__LISTEN=127.0.0.1:0 \
ZIMFLEET__SERVER__SERVER_SECRET="$SECRET" \
ZIMFLEET__SERVER__ADMIN_TOKEN="$ADMIN_TOKEN" \
ZIMFLEET__SERVER__LIMITS__MEMBERS_PER_ROOM=0 \
RUST_LOG=warn \
    "$BIN" server >"$OUT/server.out" 2>"$OUT/server.log" &
SERVER_PID=$!
ADDR=""
for _ in $(seq 1 100); do
    ADDR=$(sed -n 's/^zimfleet server listening on //p' "$OUT/server.out" | head -1)
    [ -n "$ADDR" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$OUT/server.log" >&2; exit 1; }
    sleep 0.1
done
[ -n "$ADDR" ] || { echo "server did not print its address" >&2; exit 1; }
echo "   server pid $SERVER_PID on $ADDR" >&2

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
sessions() {
    curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "http://$ADDR/admin/stats" |
        jq -r '.sessions // 0' 2>/dev/null || echo 0
}

sleep 1
SERVER_RSS_BASE=$(rss "$SERVER_PID")

# Server memory and sessions once a second: unix_ms rss_kib sessions.
( while kill -0 "$SERVER_PID" 2>/dev/null; do
      echo "$(date +%s%3N) $(rss "$SERVER_PID") $(sessions)"
      sleep 1
  done ) >"$OUT/server-samples.txt" &
SAMPLER_PID=$!

export ZIMFLEET_SERVER_SECRET="$SECRET" ZIMFLEET_ADMIN_TOKEN="$ADMIN_TOKEN"
HOLD_TOTAL=$((HOLD_IDLE + 40))       # idle, then 10 s of messages, the drop, 30 s after it

cat >"$OUT/hold.toml" <<EOF
[loadtest]
memory_at = "$((HOLD_IDLE - 5))s"
drain = "120s"
ramp_timeout = "300s"
[loadtest.messages]
start_after = "${HOLD_IDLE}s"
body_bytes = 64
[loadtest.thresholds]
max_login_p99 = "60s"
max_message_p99 = "60s"
EOF
echo "== phase 1: $ACCOUNTS accounts held ${HOLD_IDLE}s, then messages and a server-side drop of every session" >&2
set +e
RUST_LOG=warn "$BIN" loadtest \
    --backend "ws://$ADDR/ws" --token-source generated \
    --accounts "$ACCOUNTS" --rate "$ARRIVAL" --admission "$ADMISSION" \
    --rooms-per-account 1 --room-size "$HOLD_ROOM_SIZE" \
    --duration "${HOLD_TOTAL}s" --msg-rate "$DROP_MSG_RATE" \
    --server-drop-at "$((HOLD_IDLE + 10))s" \
    --config "$OUT/hold.toml" \
    --out "$OUT/hold.json" >"$OUT/hold.txt" 2>"$OUT/hold.log"
HOLD_RC=$?
set -e
echo "   exit code $HOLD_RC (table: $OUT/hold.txt)" >&2

cat >"$OUT/fanout.toml" <<EOF
[loadtest]
user_pattern = "fan-{i}"
drain = "30s"
[loadtest.rooms]
id_pattern = "fan-room-{r}"
[loadtest.thresholds]
max_message_p99 = "60s"
EOF
echo "== phase 2: fan-out, $FANOUT_ACCOUNTS accounts in rooms of 100, 1 msg/s each for ${FANOUT_SECS}s" >&2
set +e
RUST_LOG=warn "$BIN" loadtest \
    --backend "ws://$ADDR/ws" --token-source generated \
    --accounts "$FANOUT_ACCOUNTS" --first-index 1000000 --rate "$ARRIVAL" --admission "$ADMISSION" \
    --rooms-per-account 1 --room-size 100 \
    --duration "${FANOUT_SECS}s" --msg-rate 1 \
    --config "$OUT/fanout.toml" \
    --out "$OUT/fanout.json" >"$OUT/fanout.txt" 2>"$OUT/fanout.log"
FANOUT_RC=$?
set -e
echo "   exit code $FANOUT_RC (table: $OUT/fanout.txt)" >&2

cat >"$OUT/storm.toml" <<EOF
[loadtest]
user_pattern = "st-{i}"
drain = "120s"
ramp_timeout = "300s"
[loadtest.rooms]
id_pattern = "st-room-{r}"
[loadtest.thresholds]
max_login_p99 = "60s"
max_message_p99 = "60s"
EOF
echo "== phase 3: $ACCOUNTS accounts, every session dropped with the admission limit at ${STORM_ADMISSION}/s" >&2
set +e
RUST_LOG=warn "$BIN" loadtest \
    --backend "ws://$ADDR/ws" --token-source generated \
    --accounts "$ACCOUNTS" --rate "$STORM_ADMISSION" --admission "$STORM_ADMISSION" \
    --rooms-per-account 1 --room-size "$HOLD_ROOM_SIZE" \
    --duration 25s --msg-rate "$DROP_MSG_RATE" --server-drop-at 5s \
    --config "$OUT/storm.toml" \
    --out "$OUT/storm.json" >"$OUT/storm.txt" 2>"$OUT/storm.log"
STORM_RC=$?
set -e
echo "   exit code $STORM_RC (table: $OUT/storm.txt)" >&2

kill "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=""

python3 - "$OUT" "$SERVER_RSS_BASE" "$HOLD_RC" "$FANOUT_RC" "$STORM_RC" <<'PY'
import json, sys, platform, os, datetime
out, base, hold_rc, fan_rc, storm_rc = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
storm = json.load(open(f"{out}/storm.json"))
hold = json.load(open(f"{out}/hold.json"))
fan = json.load(open(f"{out}/fanout.json"))
samples = [tuple(map(int, l.split())) for l in open(f"{out}/server-samples.txt") if len(l.split()) == 3]
s = hold["shards"][0]
plan = hold["plan"]
# Server memory at the moment the load process sampled its own (idle, before messages).
mem_at_ms = s["memory"]["sampled_ms"]
near = min(samples, key=lambda x: abs(x[0] - mem_at_ms)) if samples else (0, 0, 0)
srv_sessions = near[2]
srv_per = (near[1] - base) * 1024 // srv_sessions if srv_sessions else 0
c, f, h = hold["counts"], hold["figures"], hold["histograms"]
fc, ff, fh = fan["counts"], fan["figures"], fan["histograms"]
ms = lambda us: f"{us/1000:.1f} ms"
cpu = next((l.split(":",1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
print(f"zimfleet benchmark, {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC")
print(f"machine: {os.cpu_count()} cores ({cpu}), {mem/1048576:.1f} GiB, {platform.system()} {platform.release()}")
print()
print(f"hold: {c['accounts_planned']} accounts, one room each (rooms of {plan['rooms']['members']})")
print(f"  fully connected after the ramp ............ {c['logins_ok']} logins, {c['room_entries_ok']} room entries")
print(f"  logins + room entries per second .......... {f['logins_plus_room_entries_per_sec']:.0f}/s end to end (target >= 5000)")
print(f"  login p50 / p99 ........................... {ms(h['login']['p50_us'])} / {ms(h['login']['p99_us'])}")
print(f"  room enter p50 / p99 ...................... {ms(h['room_enter']['p50_us'])} / {ms(h['room_enter']['p99_us'])}")
print(f"  memory per idle account, load process ..... {s['memory']['per_account_bytes']/1024:.1f} KiB (target <= 12 KiB; {s['memory']['rss_before_kib']} -> {s['memory']['rss_held_kib']} KiB)")
print(f"  memory per session, server process ........ {srv_per/1024:.1f} KiB (target <= 16 KiB; {base} -> {near[1]} KiB for {srv_sessions} sessions)")
print(f"server drop of every session:")
print(f"  back fully connected ...................... {c['accounts_fully_connected']} of {c['accounts_planned']} ({100*f['connected_share']:.2f}%)")
print(f"  disconnects / reconnects .................. {c['disconnects']} / {c['reconnects']}")
print(f"  reconnect p50 / p99 / max ................. {ms(h['reconnect']['p50_us'])} / {ms(h['reconnect']['p99_us'])} / {ms(h['reconnect']['max_us'])}")
print(f"  peak re-logins per second ................. {f['peak_reconnects_per_sec']}/s vs admission limit {f['admission_limit_per_sec']}/s ({100*(f['peak_reconnects_per_sec']/f['admission_limit_per_sec']-1):+.1f}%)")
print(f"  rooms back: member / rejoined / re-entered  {c['room_recovered_member']} / {c['room_recovered_after_connect_timeout']} / {c['room_recovered_after_room_not_exist']}")
print(f"  messages sent / delivered ................. {c['messages_sent']} / {c['messages_delivered']}")
print(f"  messages missing / duplicated ............. {c['messages_missing']} / {c['messages_duplicated']}")
print(f"  events lost ............................... {c['events_lost']}")
print(f"fan-out: {fc['accounts_planned']} accounts in rooms of 100, 1 msg/s each")
print(f"  sent / delivered per second ............... {ff['sent_per_sec']:.0f}/s / {ff['delivered_per_sec']:.0f}/s")
print(f"  end to end p50 / p99 / max ................ {ms(fh['message']['p50_us'])} / {ms(fh['message']['p99_us'])} / {ms(fh['message']['max_us'])}")
print(f"  missing / duplicated / send errors ........ {fc['messages_missing']} / {fc['messages_duplicated']} / {fc['messages_send_failed']}")
sc, sf, sh = storm["counts"], storm["figures"], storm["histograms"]
print(f"drop storm with the admission limit below what the machine carries: {sc['accounts_planned']} accounts")
print(f"  back fully connected ...................... {sc['accounts_fully_connected']} of {sc['accounts_planned']} ({100*sf['connected_share']:.2f}%)")
print(f"  peak re-logins per second ................. {sf['peak_reconnects_per_sec']}/s vs admission limit {sf['admission_limit_per_sec']}/s ({100*(sf['peak_reconnects_per_sec']/sf['admission_limit_per_sec']-1):+.1f}%)")
print(f"  reconnect p50 / p99 / max ................. {ms(sh['reconnect']['p50_us'])} / {ms(sh['reconnect']['p99_us'])} / {ms(sh['reconnect']['max_us'])}")
print(f"  messages sent / missing / duplicated ...... {sc['messages_sent']} / {sc['messages_missing']} / {sc['messages_duplicated']}")
load = open("/proc/loadavg").read().split()[:3]
print(f"load average at the end: {' '.join(load)} (other work on the machine competes for the 2 cores)")
print(f"exit codes: hold {hold_rc}, fan-out {fan_rc}, storm {storm_rc}; reports in {out}/")
PY
