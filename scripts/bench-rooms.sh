#!/usr/bin/env bash
# What one more room costs an account (issue 8), beside scripts/bench.sh (which owns the
# server and Tsung phases): one command, prints the figures.
#
#   scripts/bench-rooms.sh      # release build, then two runs (about 3 minutes)
#
# The reference server runs in its own process (`zimfleet server`), the load in another
# (`zimfleet loadtest`), over loopback. Two runs of ACCOUNTS accounts each, held idle with
# heartbeats for HOLD_IDLE: one with 1 room per account, one with 5 (rooms of ROOM_SIZE).
# Each room an account keeps is a room actor of its own (docs/design.md, "The actor tree").
# Printed: memory per idle account in the load process (VmRSS delta / accounts) for 1 and for
# 5 rooms, the cost of one more room ((5-room figure - 1-room figure) / 4), and logins + room
# entries per second of each ramp.
#
# Environment knobs (defaults in brackets): ACCOUNTS [5000], ARRIVAL [3000], ADMISSION
# [6000], HOLD_IDLE [30], ROOM_SIZE [10], ROOMS ["1 5": the runs, rooms per account], OUT
# [target/bench-rooms], PROFILE [release; dev for a quick try]. With ROOMS=1 it is the memory
# of an idle account at one arrival rate, e.g. the load tester's default:
#   ROOMS=1 ACCOUNTS=19000 ARRIVAL=500 scripts/bench-rooms.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${ACCOUNTS:=5000}" "${ARRIVAL:=3000}" "${ADMISSION:=6000}" "${HOLD_IDLE:=30}"
: "${ROOM_SIZE:=10}" "${OUT:=target/bench-rooms}" "${PROFILE:=release}" "${ROOMS:=1 5}"
mkdir -p "$OUT"
for tool in curl xxd python3; do
    command -v "$tool" >/dev/null || { echo "bench-rooms.sh needs $tool" >&2; exit 2; }
done
# figures are release; PROFILE=dev only tries the script itself
echo "== cargo build --profile $PROFILE" >&2
cargo build --profile "$PROFILE" --bin zimfleet >&2
BIN=target/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")/zimfleet
ulimit -n "$(ulimit -Hn)"

SECRET=$(head -c 16 /dev/urandom | xxd -p)
ADMIN_TOKEN=$(head -c 16 /dev/urandom | xxd -p)
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT

# The server on a port chosen here, ready when its admin API answers.
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ADDR=127.0.0.1:$PORT
echo "== reference server on $ADDR" >&2
env ZIMFLEET__SERVER__LISTEN="$ADDR" ZIMFLEET__SERVER__SERVER_SECRET="$SECRET" \
    ZIMFLEET__SERVER__ADMIN_TOKEN="$ADMIN_TOKEN" ZIMFLEET__SERVER__LIMITS__MEMBERS_PER_ROOM=0 \
    RUST_LOG=warn "$BIN" server >"$OUT/server.out" 2>"$OUT/server.log" &
SERVER_PID=$!
ready=0
for _ in $(seq 1 100); do
    if curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "http://$ADDR/admin/stats" >/dev/null; then
        ready=1
        break
    fi
    sleep 0.1
done
[ "$ready" = 1 ] || { echo "server not ready on $ADDR:" >&2; cat "$OUT/server.log" >&2; exit 1; }
export ZIMFLEET_SERVER_SECRET="$SECRET" ZIMFLEET_ADMIN_TOKEN="$ADMIN_TOKEN"

run() { # rooms per account
    local k=$1
    cat >"$OUT/rooms-$k.toml" <<TOML
[loadtest]
user_pattern = "r$k-{i}"
memory_at = "$((HOLD_IDLE - 5))s"
drain = "30s"
ramp_timeout = "300s"
[loadtest.rooms]
id_pattern = "r$k-room-{r}"
[loadtest.thresholds]
max_login_p99 = "60s"
TOML
    echo "== $ACCOUNTS accounts with $k room(s) each, held ${HOLD_IDLE}s" >&2
    set +e
    RUST_LOG=warn "$BIN" loadtest \
        --backend "ws://$ADDR/ws" --token-source generated \
        --accounts "$ACCOUNTS" --rate "$ARRIVAL" --admission "$ADMISSION" \
        --rooms-per-account "$k" --room-size "$ROOM_SIZE" \
        --duration "${HOLD_IDLE}s" --msg-rate 0 \
        --config "$OUT/rooms-$k.toml" \
        --out "$OUT/rooms-$k.json" >"$OUT/rooms-$k.txt" 2>"$OUT/rooms-$k.log"
    echo "   exit code $? (table: $OUT/rooms-$k.txt)" >&2
    set -e
}
rm -f "$OUT"/rooms-*.json
for k in $ROOMS; do run "$k"; done

python3 - "$OUT" "$ARRIVAL" $ROOMS <<'PY'
import json, sys, os, platform, datetime, subprocess
out, arrival, ks = sys.argv[1], sys.argv[2], [int(k) for k in sys.argv[3:]]
runs = {k: json.load(open(f"{out}/rooms-{k}.json")) for k in ks}
def mem(r):
    return r["shards"][0]["memory"]["per_account_bytes"] / 1024
def rate(r):
    return r["figures"]["logins_plus_room_entries_per_sec"]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
print(f"zimfleet room cost, {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, commit {commit}")
print(f"machine: {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}")
print(f"accounts asked at {arrival}/s")
for k, r in runs.items():
    c = r["counts"]
    print(f"  {k} room(s): {c['logins_ok']} logins, {c['room_entries_ok']} room entries; "
          f"{mem(r):.1f} KiB per idle account; {rate(r):.0f} logins + room entries/s")
if 1 in runs and 5 in runs:
    print(f"  one more room: {(mem(runs[5]) - mem(runs[1])) / 4:.2f} KiB per account")
load = open("/proc/loadavg").read().split()[:3]
print(f"load average at the end: {' '.join(load)}")
PY
