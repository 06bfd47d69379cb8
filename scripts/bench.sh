#!/usr/bin/env bash
# The zimfleet benchmark (issue 5): one command, prints the figures.
#
#   scripts/bench.sh            # release build, then every phase (about 9 minutes)
#   PHASES="hold sbs" scripts/bench.sh    # only some phases
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
#   the CPU sets the pace), every session dropped 5 s into the hold: the busiest second of
#   login requests as the server counted them (and as the load's events saw them) vs the
#   limit, all back, nothing missing or duplicated.
#
# Phase 4, side by side with Tsung ("sbs"): the same server, SBS_ACCOUNTS accounts arriving at
#   SBS_RATE/s, each logging in and holding one room (rooms of 10) with heartbeats for
#   SBS_HOLD s, first driven by Tsung (scripts/tsung/hold.xml), then by `zimfleet loadtest`.
#   Both are read the same way from outside: RSS of the load process (with its children)
#   before the first account and once all are held, the ramp from the server's users_online
#   (10% to 90%), CPU seconds (user + sys) of the load process over ramp + hold. Skipped, with
#   how to get it, when tsung (or python3-cryptography, which mints its tokens) is missing.
# CPU (user + sys, from /proc) of the server and of the load process is sampled every 200 ms
# throughout: CPU seconds per 1,000 accounts ramped (phase 1's ramp) and per 100,000 messages
# delivered (phase 2) are printed for both.
#
# Environment knobs (defaults in brackets): PHASES ["hold fanout storm sbs"], ACCOUNTS [19000], ARRIVAL [8000: faster than
# the two cores log in, so the ramp is the machine's], ADMISSION [16000], HOLD_IDLE [60], DROP_MSG_RATE [0.01], FANOUT_ACCOUNTS [1000], FANOUT_SECS [30],
# STORM_ADMISSION [2000], HOLD_ROOM_SIZE [10], OUT [target/bench], PROFILE [release],
# KEEP_PORT_RANGE [0: widen net.ipv4.ip_local_port_range for the run when needed and allowed],
# SBS_ACCOUNTS [10000], SBS_RATE [5000], SBS_HOLD [30].
set -euo pipefail
cd "$(dirname "$0")/.."

ACCOUNTS=${ACCOUNTS:-19000}
ARRIVAL=${ARRIVAL:-8000}
ADMISSION=${ADMISSION:-16000}
HOLD_IDLE=${HOLD_IDLE:-60}
DROP_MSG_RATE=${DROP_MSG_RATE:-0.01}
FANOUT_ACCOUNTS=${FANOUT_ACCOUNTS:-1000}
FANOUT_SECS=${FANOUT_SECS:-30}
STORM_ADMISSION=${STORM_ADMISSION:-2000}
HOLD_ROOM_SIZE=${HOLD_ROOM_SIZE:-10}
OUT=${OUT:-target/bench}
PHASES=${PHASES:-hold fanout storm sbs}
SBS_ACCOUNTS=${SBS_ACCOUNTS:-10000}
SBS_RATE=${SBS_RATE:-5000}
SBS_HOLD=${SBS_HOLD:-30}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/*.json "$OUT/load.pid"
phase() { case " $PHASES " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

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
CPU_SAMPLER_PID=""
PORT_RANGE_FILE=/proc/sys/net/ipv4/ip_local_port_range
PORT_RANGE_SAVED=""
cleanup() {
    [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null || true
    [ -n "$CPU_SAMPLER_PID" ] && kill "$CPU_SAMPLER_PID" 2>/dev/null || true
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

# CPU and memory of the server and of the current load process (the pid in load.pid, with
# all its children: Tsung is an Erlang VM under a launcher), and the server's users_online,
# every 200 ms: unix_ms server_ticks server_rss_kib load_ticks load_rss_kib users_online
# logins (the server's logins_ok + logins_refused: login requests as the backend saw them).
python3 - "$SERVER_PID" "$OUT/load.pid" "http://$ADDR/admin/stats" "$ADMIN_TOKEN" \
    >"$OUT/cpu-samples.txt" <<'PY' &
import json, os, sys, time, urllib.request
server, load_file, url, token = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
def stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        rss = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        return int(fields[1]), int(fields[11]) + int(fields[12]), rss   # ppid, utime+stime, rss
    except (OSError, IndexError, ValueError):
        return None
def tree(root):
    stats = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            s = stat(int(name))
            if s:
                stats[int(name)] = s
    members, frontier = set(), [root]
    while frontier:
        pid = frontier.pop()
        if pid in stats and pid not in members:
            members.add(pid)
            frontier.extend(p for p, s in stats.items() if s[0] == pid)
    return sum(stats[p][1] for p in members), sum(stats[p][2] for p in members)
req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
while os.path.exists(f"/proc/{server}"):
    s = stat(server) or (0, 0, 0)
    load_ticks = load_rss = 0
    try:
        load_ticks, load_rss = tree(int(open(load_file).read()))
    except (OSError, ValueError):
        pass
    # The stats are stamped at the middle of their request; one that took over 40 ms has an
    # uncertain time and gives no login count (a busy server answers late, and a late stamp
    # would make the next second look busier than it was).
    asked = time.time()
    try:
        stats = json.load(urllib.request.urlopen(req, timeout=1))
        online, logins = stats["users_online"], stats["logins_ok"] + stats["logins_refused"]
    except Exception:
        online, logins = -1, -1
    answered = time.time()
    if answered - asked > 0.04:
        logins = -1
    print(int((asked + answered) * 500), s[1], s[2], load_ticks, load_rss, online, logins, flush=True)
    time.sleep(0.2)
PY
CPU_SAMPLER_PID=$!

# Runs a load process in the background with its pid in load.pid (for the CPU sampler),
# waits for it and returns its exit code.
run_load() {
    "$@" &
    local pid=$!
    echo "$pid" >"$OUT/load.pid"
    wait "$pid"
}

# Waits until the server has no session left (between phases).
wait_idle() {
    for _ in $(seq 1 300); do
        [ "$(sessions)" = 0 ] && return 0
        sleep 0.2
    done
    echo "   the server still has $(sessions) sessions" >&2
}

export ZIMFLEET_SERVER_SECRET="$SECRET" ZIMFLEET_ADMIN_TOKEN="$ADMIN_TOKEN"
HOLD_TOTAL=$((HOLD_IDLE + 40))       # idle, then 10 s of messages, the drop, 30 s after it

HOLD_RC=skipped FANOUT_RC=skipped STORM_RC=skipped SBS_RC=skipped
# Phase marks (name unix_ms) for the reader below: storm-start, tsung-start, ...
mark() { echo "$1 $(date +%s%3N)" >>"$OUT/marks.txt"; }
rm -f "$OUT/marks.txt"

if phase hold; then
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
RUST_LOG=warn run_load "$BIN" loadtest \
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
wait_idle
fi

if phase fanout; then
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
RUST_LOG=warn run_load "$BIN" loadtest \
    --backend "ws://$ADDR/ws" --token-source generated \
    --accounts "$FANOUT_ACCOUNTS" --first-index 1000000 --rate "$ARRIVAL" --admission "$ADMISSION" \
    --rooms-per-account 1 --room-size 100 \
    --duration "${FANOUT_SECS}s" --msg-rate 1 \
    --config "$OUT/fanout.toml" \
    --out "$OUT/fanout.json" >"$OUT/fanout.txt" 2>"$OUT/fanout.log"
FANOUT_RC=$?
set -e
echo "   exit code $FANOUT_RC (table: $OUT/fanout.txt)" >&2
wait_idle
fi

if phase storm; then
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
mark storm-start
set +e
RUST_LOG=warn run_load "$BIN" loadtest \
    --backend "ws://$ADDR/ws" --token-source generated \
    --accounts "$ACCOUNTS" --rate "$STORM_ADMISSION" --admission "$STORM_ADMISSION" \
    --rooms-per-account 1 --room-size "$HOLD_ROOM_SIZE" \
    --duration 25s --msg-rate "$DROP_MSG_RATE" --server-drop-at 5s \
    --config "$OUT/storm.toml" \
    --out "$OUT/storm.json" >"$OUT/storm.txt" 2>"$OUT/storm.log"
STORM_RC=$?
set -e
mark storm-end
echo "   exit code $STORM_RC (table: $OUT/storm.txt)" >&2
wait_idle
fi

# Phase 4: the side by side. Tsung first, then zimfleet, each on a quiet server; the sampler
# records both the same way and the report below reads the figures out of its samples.
if phase sbs; then
    SBS_BEAT=10
    # Tsung's sessions outlast a ramp twice as slow as asked, plus the hold.
    SBS_BEATS=$(((2 * SBS_ACCOUNTS / SBS_RATE + SBS_HOLD + 2 * SBS_BEAT - 1) / SBS_BEAT))
    if ! command -v tsung >/dev/null; then
        echo "== phase 4a: skipped, tsung is not installed (Debian: apt-get install tsung)" >&2
    elif ! python3 -c 'import cryptography' 2>/dev/null; then
        echo "== phase 4a: skipped, Tsung's tokens are minted with python3-cryptography (apt-get install python3-cryptography)" >&2
    else
        echo "== phase 4a: Tsung, $SBS_ACCOUNTS accounts at ${SBS_RATE}/s, rooms of 10, held ${SBS_HOLD}s" >&2
        # One Token04 per account, in the layout of src/token/token04.rs (AES-256-GCM).
        python3 - "$SECRET" "$SBS_ACCOUNTS" "$OUT/tsung-accounts.csv" <<'PY'
import base64, json, os, struct, sys, time
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
secret, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
aes, now, ttl = AESGCM(secret.encode()), int(time.time()), 3600
with open(out, "w") as f:
    for i in range(n):
        user = f"ts-{i}"
        claims = {"app_id": 1, "user_id": user, "nonce": struct.unpack(">i", os.urandom(4))[0],
                  "ctime": now, "expire": now + ttl, "payload": ""}
        nonce = os.urandom(12)
        sealed = aes.encrypt(nonce, json.dumps(claims, separators=(",", ":")).encode(), None)
        raw = struct.pack(">qH", now + ttl, 12) + nonce + struct.pack(">H", len(sealed)) + sealed + b"\x01"
        f.write(f"{user};04{base64.b64encode(raw).decode()};ts-room-{i // 10}\n")
PY
        sed -e "s|@MAXUSERS@|$((SBS_ACCOUNTS * 2))|" -e "s|@PORT@|${ADDR##*:}|" \
            -e "s|@RAMP_SECS@|$((2 * SBS_ACCOUNTS / SBS_RATE + 10))|" \
            -e "s|@ACCOUNTS@|$SBS_ACCOUNTS|" -e "s|@RATE@|$SBS_RATE|" \
            -e "s|@CSV@|$OUT/tsung-accounts.csv|" -e "s|@BEATS@|$SBS_BEATS|" \
            -e "s|@BEAT_SECS@|$SBS_BEAT|" scripts/tsung/hold.xml >"$OUT/tsung.xml"
        rm -rf "$OUT/tsung-log"
        mark tsung-start
        set +e
        run_load tsung -f "$OUT/tsung.xml" -l "$OUT/tsung-log" start >"$OUT/tsung.txt" 2>&1
        SBS_RC="tsung $?"
        set -e
        mark tsung-end
        echo "   exit code $SBS_RC (log: $OUT/tsung.txt, $OUT/tsung-log/)" >&2
        wait_idle
        # The reader finds where zimfleet's ramp begins from samples of an empty server in
        # its window: give the 200 ms sampler a second of them.
        sleep 1
    fi
    cat >"$OUT/sbs.toml" <<EOF
[loadtest]
user_pattern = "sbs-{i}"
drain = "30s"
ramp_timeout = "300s"
[loadtest.rooms]
id_pattern = "sbs-room-{r}"
EOF
    echo "== phase 4b: zimfleet loadtest, the same $SBS_ACCOUNTS accounts at ${SBS_RATE}/s, rooms of 10, held ${SBS_HOLD}s" >&2
    mark zimfleet-start
    set +e
    RUST_LOG=warn run_load "$BIN" loadtest \
        --backend "ws://$ADDR/ws" --token-source generated \
        --accounts "$SBS_ACCOUNTS" --rate "$SBS_RATE" --admission "$((SBS_RATE * 2))" \
        --rooms-per-account 1 --room-size 10 \
        --duration "$((SBS_HOLD + 5))s" --msg-rate 0 \
        --config "$OUT/sbs.toml" \
        --out "$OUT/sbs.json" >"$OUT/sbs.txt" 2>"$OUT/sbs.log"
    SBS_ZF_RC=$?
    set -e
    mark zimfleet-end
    echo "   exit code $SBS_ZF_RC (table: $OUT/sbs.txt)" >&2
    SBS_RC="$SBS_RC, zimfleet $SBS_ZF_RC"
fi

kill "$SAMPLER_PID" "$CPU_SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=""
CPU_SAMPLER_PID=""

COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then COMMIT="$COMMIT+changes"; fi
python3 - "$OUT" "$SERVER_RSS_BASE" "$COMMIT" "$PHASES" "$SBS_ACCOUNTS" "$SBS_RATE" "$SBS_HOLD" \
    "hold $HOLD_RC, fan-out $FANOUT_RC, storm $STORM_RC, side by side: $SBS_RC" <<'PY'
import json, sys, platform, os, datetime
out, base, commit, phases = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].split()
sbs_n, sbs_rate, sbs_hold, codes = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), sys.argv[8]
tick = os.sysconf("SC_CLK_TCK")
def report(name):
    try:
        return json.load(open(f"{out}/{name}.json"))
    except (OSError, ValueError):
        return None
samples = [tuple(map(int, l.split())) for l in open(f"{out}/server-samples.txt") if len(l.split()) == 3]
# unix_ms server_ticks server_rss load_ticks load_rss users_online logins
cpu = [tuple(map(int, l.split())) for l in open(f"{out}/cpu-samples.txt") if len(l.split()) == 7]
def at(ms, col):
    """Column `col` of the CPU samples at unix ms `ms`, interpolated."""
    if not cpu:
        return 0
    before = [s for s in cpu if s[0] <= ms]
    after = [s for s in cpu if s[0] >= ms]
    if not before or not after:
        return (before or after)[-1 if before else 0][col]
    a, b = before[-1], after[0]
    if b[0] == a[0]:
        return a[col]
    return a[col] + (b[col] - a[col]) * (ms - a[0]) / (b[0] - a[0])
def cpu_secs(col, start_ms, end_ms):
    return max(0.0, (at(end_ms, col) - at(start_ms, col)) / tick)
ms = lambda us: f"{us/1000:.1f} ms"
marks = {}
if os.path.exists(f"{out}/marks.txt"):
    for line in open(f"{out}/marks.txt"):
        name, t = line.split()
        marks[name] = int(t)
model = next((l.split(":",1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
print(f"zimfleet benchmark, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, commit {commit}")
print(f"machine: {os.cpu_count()} cores ({model}), {mem/1048576:.1f} GiB, {platform.system()} {platform.release()}")
print(f"reproduce: PHASES=\"{' '.join(phases)}\" scripts/bench.sh")
print()
hold = report("hold")
if hold:
    s = hold["shards"][0]
    plan = hold["plan"]
    # Server memory at the moment the load process sampled its own (idle, before messages).
    mem_at_ms = s["memory"]["sampled_ms"]
    near = min(samples, key=lambda x: abs(x[0] - mem_at_ms)) if samples else (0, 0, 0)
    srv_sessions = near[2]
    srv_per = (near[1] - base) * 1024 // srv_sessions if srv_sessions else 0
    c, f, h = hold["counts"], hold["figures"], hold["histograms"]
    ramped = max(1, c["logins_ok"])
    r0, r1 = s["ramp_started_ms"], s["ramp_ended_ms"]
    print(f"hold: {c['accounts_planned']} accounts, one room each (rooms of {plan['rooms']['members']})")
    print(f"  fully connected after the ramp ............ {c['logins_ok']} logins, {c['room_entries_ok']} room entries")
    print(f"  logins + room entries per second .......... {f['logins_plus_room_entries_per_sec']:.0f}/s end to end (target >= 8000)")
    print(f"  login p50 / p99 ........................... {ms(h['login']['p50_us'])} / {ms(h['login']['p99_us'])}")
    print(f"  room enter p50 / p99 ...................... {ms(h['room_enter']['p50_us'])} / {ms(h['room_enter']['p99_us'])}")
    print(f"  memory per idle account, load process ..... {s['memory']['per_account_bytes']/1024:.1f} KiB (target <= 5 KiB; {s['memory']['rss_before_kib']} -> {s['memory']['rss_held_kib']} KiB)")
    print(f"  memory per session, server process ........ {srv_per/1024:.1f} KiB (target <= 6 KiB; {base} -> {near[1]} KiB for {srv_sessions} sessions)")
    print(f"  CPU per 1,000 accounts ramped ............. load {1000*cpu_secs(3, r0, r1)/ramped:.2f} s, server {1000*cpu_secs(1, r0, r1)/ramped:.2f} s (user + sys over the {(r1-r0)/1000:.1f} s ramp)")
    print(f"server drop of every session:")
    print(f"  back fully connected ...................... {c['accounts_fully_connected']} of {c['accounts_planned']} ({100*f['connected_share']:.2f}%)")
    print(f"  disconnects / reconnects .................. {c['disconnects']} / {c['reconnects']}")
    print(f"  reconnect p50 / p99 / max ................. {ms(h['reconnect']['p50_us'])} / {ms(h['reconnect']['p99_us'])} / {ms(h['reconnect']['max_us'])}")
    print(f"  peak re-logins per second ................. {f['peak_reconnects_per_sec']}/s vs admission limit {f['admission_limit_per_sec']}/s ({100*(f['peak_reconnects_per_sec']/f['admission_limit_per_sec']-1):+.1f}%)")
    print(f"  rooms back: member / rejoined / re-entered  {c['room_recovered_member']} / {c['room_recovered_after_connect_timeout']} / {c['room_recovered_after_room_not_exist']}")
    print(f"  messages sent / delivered ................. {c['messages_sent']} / {c['messages_delivered']}")
    print(f"  messages missing / duplicated ............. {c['messages_missing']} / {c['messages_duplicated']}")
    print(f"  events lost ............................... {c['events_lost']}")
fan = report("fanout")
if fan:
    fc, ff, fh = fan["counts"], fan["figures"], fan["histograms"]
    fs = fan["shards"][0]
    m0, m1 = fs["hold_started_ms"], fs["ended_ms"]
    per = 100000 / max(1, fc["messages_delivered"])
    print(f"fan-out: {fc['accounts_planned']} accounts in rooms of 100, 1 msg/s each")
    print(f"  sent / delivered per second ............... {ff['sent_per_sec']:.0f}/s / {ff['delivered_per_sec']:.0f}/s")
    print(f"  end to end p50 / p99 / max ................ {ms(fh['message']['p50_us'])} / {ms(fh['message']['p99_us'])} / {ms(fh['message']['max_us'])}")
    print(f"  missing / duplicated / send errors ........ {fc['messages_missing']} / {fc['messages_duplicated']} / {fc['messages_send_failed']}")
    print(f"  CPU per 100,000 messages delivered ........ load {per*cpu_secs(3, m0, m1):.2f} s, server {per*cpu_secs(1, m0, m1):.2f} s ({fc['messages_delivered']} delivered, hold + drain)")
def server_login_peak(start_ms, end_ms):
    """The busiest one-second window of login requests as the server counted them."""
    run = [x for x in cpu if start_ms <= x[0] <= end_ms and x[6] >= 0]
    best = None
    for i, a in enumerate(run):
        b = next((y for y in run[i + 1:] if y[0] - a[0] >= 1000), None)
        if b is None:
            break
        rate = (b[6] - a[6]) * 1000 / (b[0] - a[0])
        best = rate if best is None else max(best, rate)
    return (best, len(run)) if best is not None else None
storm = report("storm")
if storm:
    sc, sf, sh = storm["counts"], storm["figures"], storm["histograms"]
    print(f"drop storm with the admission limit below what the machine carries: {sc['accounts_planned']} accounts")
    print(f"  back fully connected ...................... {sc['accounts_fully_connected']} of {sc['accounts_planned']} ({100*sf['connected_share']:.2f}%)")
    lim = sf['admission_limit_per_sec']
    print(f"  peak re-logins per second, load's events .. {sf['peak_reconnects_per_sec']}/s vs admission limit {lim}/s ({100*(sf['peak_reconnects_per_sec']/lim-1):+.1f}%)")
    srv = server_login_peak(marks.get("storm-start", 0), marks.get("storm-end", 0))
    if srv:
        print(f"  peak login requests per second, server .... {srv[0]:.0f}/s vs admission limit {lim}/s ({100*(srv[0]/lim-1):+.1f}%; busiest second from {srv[1]} samples, 200 ms apart)")
    print(f"  reconnect p50 / p99 / max ................. {ms(sh['reconnect']['p50_us'])} / {ms(sh['reconnect']['p99_us'])} / {ms(sh['reconnect']['max_us'])}")
    print(f"  messages sent / missing / duplicated ...... {sc['messages_sent']} / {sc['messages_missing']} / {sc['messages_duplicated']}")

def side(start_ms, end_ms, own_before_kib=0):
    """Figures of one load process between its marks, read from the samples alone."""
    run = [x for x in cpu if start_ms <= x[0] <= end_ms and x[5] >= 0]
    if not run:
        return None
    peak = max(x[5] for x in run)
    idle = [x for x in run if x[5] == 0]
    if peak == 0 or not idle:
        return None
    first = next(i for i, x in enumerate(run) if x[5] > 0)
    # the last sample before the first account in which the load process was running
    # (zimfleet starts its ramp within one sample of its own start: then its own report's VmRSS
    # before the first account stands in, read by the same /proc field)
    started = [x for x in run[:first] if x[4] > 0]
    before = started[-1] if started else run[max(0, first - 1)]
    if not started and own_before_kib:
        before = before[:4] + (own_before_kib,) + before[5:]
    full = next(x for x in run if x[5] >= peak)           # all held (or as many as ever were)
    held = min(run, key=lambda x: abs(x[0] - (full[0] + 5000)))
    def cross(share):
        target = share * peak
        for a, b in zip(run, run[1:]):
            if a[5] < target <= b[5]:
                return a[0] + (b[0] - a[0]) * (target - a[5]) / (b[5] - a[5])
        return full[0]
    t10, t90 = cross(0.1), cross(0.9)
    end = min(full[0] + sbs_hold * 1000, max(x[0] for x in run if x[5] >= 0.99 * peak))
    return {
        "held": peak,
        "rss_per": (held[4] - before[4]) * 1024 / peak,
        "rss": (before[4], held[4]),
        "ramp": 0.8 * peak * 1000 / max(1, t90 - t10),
        "cpu": (at(end, 3) - at(before[0], 3)) / tick,
        "window": (end - before[0]) / 1000,
    }
if "sbs" in phases:
    ts = side(marks["tsung-start"], marks["tsung-end"]) if "tsung-end" in marks else None
    sbs_report = report("sbs")
    own = sbs_report["shards"][0]["memory"]["rss_before_kib"] if sbs_report else 0
    zf = side(marks["zimfleet-start"], marks["zimfleet-end"], own) if "zimfleet-end" in marks else None
    print(f"side by side: {sbs_n} accounts asked at {sbs_rate}/s, one room each (rooms of 10), heartbeats, held {sbs_hold} s;")
    print(f"  both read from outside: load RSS before the first account and 5 s after all are held, ramp from the")
    print(f"  server's users_online (10%-90%), CPU user + sys of the load process over ramp + hold")
    if not ts:
        print("  Tsung: not run (see the phase 4a line above)")
    if zf is None:
        print("  zimfleet: no figures (see sbs.log)")
    rows = [
        ("accounts held", lambda r: f"{r['held']}", None),
        ("RSS per held account", lambda r: f"{r['rss_per']/1024:.1f} KiB", lambda t, z: t["rss_per"] / max(1, z["rss_per"])),
        ("load RSS before -> held", lambda r: f"{r['rss'][0]//1024}->{r['rss'][1]//1024} MiB", None),
        ("ramp, users_online 10%-90%", lambda r: f"{r['ramp']:.0f}/s", lambda t, z: z["ramp"] / max(1, t["ramp"])),
        ("CPU s, ramp + hold", lambda r: f"{r['cpu']:.1f} s in {r['window']:.0f} s", lambda t, z: t["cpu"] / max(0.01, z["cpu"])),
    ]
    print(f"  {'':28} {'Tsung':>18} {'zimfleet':>18}  zimfleet's advantage")
    for name, show, ratio in rows:
        t = show(ts) if ts else "-"
        z = show(zf) if zf else "-"
        r = f"{ratio(ts, zf):.2f}x" if ratio and ts and zf else ""
        print(f"  {name:28} {t:>18} {z:>18}  {r}")
    print("  goals: >= 3x less memory per account, >= 2x the ramp rate, >= 3x less CPU than Tsung")
load = open("/proc/loadavg").read().split()[:3]
print(f"load average at the end: {' '.join(load)} (other work on the machine competes for the 2 cores)")
print(f"exit codes: {codes}; reports in {out}/")
PY
