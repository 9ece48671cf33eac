#!/usr/bin/env bash
# One load run of everything, on loopback: the seed's Express peer, the Go
# floor and finchconnect (embedded SQLite, then Redis) behind the same
# zero-latency Finch stand-in, each driven with the same concurrency for the
# same time. Writes bench/results/latest.md. Needs Go, Node, a Redis on
# 127.0.0.1:6379 (it uses DB 9 for the peer and a key prefix of its own for
# finchconnect, and deletes only its own keys). Bounded: each phase runs for
# DURATION seconds; everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")"
DURATION="${DURATION:-10}"
CONC="${CONC:-32}"
REDIS="${REDIS:-redis://127.0.0.1:6379}"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

echo "building…"
go build -o "$work/upstream" ./upstream
go build -o "$work/floor" ./floor
go build -o "$work/load" ./load
go build -o "$work/finchconnect" ../cmd/finchconnect
(cd peers/express && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

# start NAME CMD… : runs CMD in the background, waits for its "listening on"
# line, and sets URL and PID.
start() {
  local name=$1; shift
  "$@" >"$work/$name.out" 2>"$work/$name.err" &
  PID=$!; pids+=("$PID")
  for _ in $(seq 1 100); do
    URL=$(grep -m1 -o 'http://[0-9.:]*' "$work/$name.out" 2>/dev/null || true)
    [ -n "$URL" ] && return 0
    sleep 0.1
  done
  echo "$name did not start:"; cat "$work/$name.err"; exit 1
}

start upstream "$work/upstream"; FINCH=$URL
start floor "$work/floor" -finch "$FINCH"; FLOOR=$URL; FLOOR_PID=$PID
redis-cli -n 9 --scan --pattern 'finch:connection:*' | xargs -r redis-cli -n 9 del >/dev/null
(cd peers/express && exec env PORT=0 FINCH_BASE_URL="$FINCH" REDIS_URL="$REDIS/9" node server.js) >"$work/peer.out" 2>"$work/peer.err" &
PEER_PID=$!; pids+=("$PEER_PID")
for _ in $(seq 1 100); do PEER=$(grep -m1 -o 'http://[0-9.:]*' "$work/peer.out" 2>/dev/null || true); [ -n "$PEER" ] && break; sleep 0.1; done

keys=$("$work/finchconnect" keygen)
prefix="fcbench-$$"
fc() { # fc NAME STORE
  FINCH_CLIENT_ID=id FINCH_CLIENT_SECRET=secret FINCH_BASE_URL="$FINCH" FINCHCONNECT_KEYS="$keys" \
    start "$1" "$work/finchconnect" -addr 127.0.0.1:0 -store "$2" -data-dir "$work/$1" \
    -connect-limit 0 -callback-limit 0 -sweep-interval 0 -log-level error
}
results=()
drive() { # drive LABEL ARGS…
  local line; line=$("$work/load" -d "${DURATION}s" -c "$CONC" -label "$1" "${@:2}")
  echo "$line"; results+=("$line")
}

echo "== callbacks"
drive "floor" -mode callback -kind floor -target "$FLOOR" -pid "$FLOOR_PID"
drive "express peer" -mode callback -kind peer -target "$PEER" -pid "$PEER_PID"
peer_keys=$(redis-cli -n 9 --scan --pattern 'finch:connection:*' | wc -l)
for store in sqlite redis; do
  if [ "$store" = sqlite ]; then url="sqlite://$work/fc-sqlite.db"; else url="$REDIS/0?prefix=$prefix"; fi
  fc "fc-$store" "$url"; FC=$URL; FC_PID=$PID
  key=$(FINCHCONNECT_KEYS="$keys" "$work/finchconnect" apikey create -scope read -store "$url" -data-dir "$work/fc-$store" 2>/dev/null)
  wkey=$(FINCHCONNECT_KEYS="$keys" "$work/finchconnect" apikey create -scope write -store "$url" -data-dir "$work/fc-$store" 2>/dev/null)
  drive "finchconnect $store" -mode callback -kind finchconnect -target "$FC" -pid "$FC_PID" -api-key "$wkey"
  stored=$(FINCHCONNECT_KEYS="$keys" "$work/finchconnect" token list -json -store "$url" -data-dir "$work/fc-$store" | grep -c '"connection_id"' || true)
  echo "finchconnect $store: stored connections = $stored"
  eval "stored_$store=$stored"
  conn=$(FINCHCONNECT_KEYS="$keys" "$work/finchconnect" token list -json -store "$url" -data-dir "$work/fc-$store" | grep -m1 '"connection_id"' | sed 's/.*: "\(.*\)".*/\1/' || true)
  if [ "$store" = redis ]; then
    echo "== reads"
    drive "floor company" -mode read -kind floor -target "$FLOOR" -path /company -pid "$FLOOR_PID"
    drive "express peer company" -mode read -kind peer -target "$PEER" -path "/company?connection_id=conn-000000000001" -pid "$PEER_PID"
    drive "finchconnect company page (redis)" -mode read -kind finchconnect -target "$FC" -path "/connections/$conn" -pid "$FC_PID"
    drive "finchconnect /v1 proxy company (redis)" -mode read -kind finchconnect -target "$FC" -path "/v1/connections/$conn/finch/employer/company" -api-key "$key" -pid "$FC_PID"
    redis-cli --scan --pattern "{$prefix}*" | xargs -r redis-cli del >/dev/null
  fi
  kill "$FC_PID"; wait "$FC_PID" 2>/dev/null || true
done
redis-cli -n 9 --scan --pattern 'finch:connection:*' | xargs -r redis-cli -n 9 del >/dev/null

mkdir -p results
{
  echo "# Load run $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs). Concurrency $CONC, $DURATION s per run, upstream: bench/upstream (zero latency)."
  echo
  echo "| run | ok | errors | req/s | p50 ms | p99 ms | max ms | target CPU µs/req | target peak RSS MiB |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for r in "${results[@]}"; do
    echo "$r" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("| %s | %d | %d | %.0f | %.2f | %.2f | %.2f | %.0f | %.0f |" % (r["label"], r["ok"], r["errors"], r["rps"], r["p50_ms"], r["p99_ms"], r["max_ms"], r["cpu_us_per_req"], r["peak_rss_mib"]))'
  done
  echo
  echo "Stored connections equal successful callbacks: peer $peer_keys, finchconnect SQLite $stored_sqlite, finchconnect Redis $stored_redis (compare with the ok column)."
} > results/latest.md
cat results/latest.md
