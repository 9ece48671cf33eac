#!/usr/bin/env bash
# The load runs of issue #8, in one go, on loopback, on one machine: the
# seed's Express peer, the Go floor, and finchconnect on the embedded SQLite
# store and on Redis, each behind the same zero-latency Finch stand-in and
# driven with the same concurrency for the same time; first the callback,
# then the read path. Writes results/latest.md. See README.md.
#
#   ./run.sh                      load runs (about 3 minutes with the defaults)
#   PROFILE=1 ./run.sh            also CPU and allocation profiles (bench/profile)
#   SCALE=1 LOAD=0 ./run.sh       only the 1M-connection scale run (several minutes)
#   BUDGET=1 LOAD=0 ./run.sh      only the budget load run (bench/budget, about 4 minutes)
#   BASE=dda9582 LOAD=0 ./run.sh  only the callback, on SQLite and Redis, of the commit
#                                 BASE beside this checkout's, alternating, twice each
#                                 (results/base.md: CPU per callback, head against base)
#
# Settings: DURATION (seconds per phase, 10), CONC (concurrent clients, 32),
# FC_FLOWS (finchconnect flows prepared per store, 50000: enough
# for the 2 s warm-up and the timed phase at up to ~4,000 callbacks/s), REDIS_HOST
# (127.0.0.1:6379), PEER_DB (9) and FC_DB (10): the Redis databases of the
# peer and of finchconnect. Only the bench's own keys are deleted: the peer's
# finch:connection:* in PEER_DB, finchconnect's {fcbench-PID}* in FC_DB.
# Everything it starts is stopped on exit; every phase has a time limit.
set -euo pipefail
cd "$(dirname "$0")"
DURATION="${DURATION:-10}"
CONC="${CONC:-32}"
FC_FLOWS="${FC_FLOWS:-50000}"
REDIS_HOST="${REDIS_HOST:-127.0.0.1:6379}"
PEER_DB="${PEER_DB:-9}"
FC_DB="${FC_DB:-10}"
LOAD="${LOAD:-1}"
PROFILE="${PROFILE:-0}"
SCALE="${SCALE:-0}"
BUDGET="${BUDGET:-0}"
BUDGET_DB="${BUDGET_DB:-11}"
BASE="${BASE:-}"
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
rhost="${REDIS_HOST%:*}"
rport="${REDIS_HOST#*:}"
rcli() { redis-cli -h "$rhost" -p "$rport" "$@"; }
work=$(mktemp -d)
prefix="fcbench-$$"
pids=()

# delkeys DB PATTERN: deletes the keys matching PATTERN in DB, and only those.
delkeys() {
	rcli -n "$1" --scan --pattern "$2" >"$work/keys" || true
	xargs -r -n 500 redis-cli -h "$rhost" -p "$rport" -n "$1" del <"$work/keys" >/dev/null || true
}
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ "$LOAD" = 1 ] || [ "$PROFILE" = 1 ]; then
		delkeys "$PEER_DB" 'finch:connection:*'
		delkeys "$FC_DB" "{$prefix}*"
	fi
	rm -rf "$work"
}
trap cleanup EXIT

echo "building…"
go build -o "$work/upstream" ./upstream
go build -o "$work/floor" ./floor
go build -o "$work/load" ./load
go build -o "$work/report" ./report
go build -o "$work/profile" ./profile
go build -o "$work/scale" ./scale
go build -o "$work/finchconnect" ../cmd/finchconnect
go build -o "$work/budget" ./budget
if [ "$LOAD" = 1 ]; then
	(cd peers/express && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# start NAME CMD…: runs CMD in the background, waits for its "listening on"
# line, and sets URL and PID.
start() {
	local name=$1
	shift
	"$@" >"$work/$name.out" 2>"$work/$name.err" &
	PID=$!
	pids+=("$PID")
	for _ in $(seq 1 150); do
		URL=$(grep -m1 -o 'listening on http://[0-9.:]*' "$work/$name.out" 2>/dev/null | cut -d' ' -f3 || true)
		[ -n "$URL" ] && return 0
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "$name did not start:" >&2
	cat "$work/$name.err" >&2
	exit 1
}
stop() { # stop PID
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# drive ROLE LABEL ARGS…: one timed phase; its JSON line goes to results.
drive() {
	local line
	line=$(timeout $((DURATION + 300)) "$work/load" -d "${DURATION}s" -c "$CONC" -role "$1" -label "$2" -upstream-pid "$UP_PID" -store-pid "${REDIS_PID:-0}" "${@:3}")
	echo "$line" | tee -a "$work/results.jsonl"
}

# Redis's own CPU time is counted per phase too (it shares the two cores),
# when it runs on this machine.
REDIS_PID=$(rcli info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p')
# Only a redis-server of this machine: in a container or on another host the
# pid names some other local process, or none.
[ -n "$REDIS_PID" ] && [ "$(cat "/proc/$REDIS_PID/comm" 2>/dev/null)" = redis-server ] || REDIS_PID=0

start upstream "$work/upstream"
FINCH=$URL
UP_PID=$PID
stored=()

if [ "$LOAD" = 1 ]; then
	start floor "$work/floor" -finch "$FINCH"
	FLOOR=$URL
	FLOOR_PID=$PID
	delkeys "$PEER_DB" 'finch:connection:*'
	start peer env -C peers/express PORT=0 FINCH_BASE_URL="$FINCH" REDIS_URL="redis://$REDIS_HOST/$PEER_DB" \
		FINCH_CLIENT_ID=id FINCH_CLIENT_SECRET=secret node server.js
	PEER=$URL
	PEER_PID=$PID

	echo "== the floor and the Express peer (concurrency $CONC, ${DURATION}s per phase)"
	drive floor.callback "floor (Go, no state)" -mode callback -kind floor -target "$FLOOR" -pid "$FLOOR_PID"
	drive peer.callback "Express peer" -mode callback -kind peer -target "$PEER" -pid "$PEER_PID"
	rcli -n "$PEER_DB" --scan --pattern 'finch:connection:*' >"$work/peer-keys"
	stored+=(-stored "peer.callback=$(wc -l <"$work/peer-keys")")
	head -n 1000 "$work/peer-keys" | sed 's/^finch:connection://' >"$work/peer-ids"
	drive floor.read "floor company" -mode read -target "$FLOOR" -path /company -pid "$FLOOR_PID"
	drive peer.read "Express peer company" -mode read -target "$PEER" -path '/company?connection_id={id}' -ids "$work/peer-ids" -pid "$PEER_PID"
	stop "$FLOOR_PID"
	stop "$PEER_PID"

	keys=$("$work/finchconnect" keygen)
	for store in sqlite redis redis-ap; do
		case "$store" in
		sqlite)
			url="sqlite://$work/fc-sqlite/finchconnect.db"
			what="SQLite, durable"
			;;
		redis)
			url="redis://$REDIS_HOST/$FC_DB?prefix=$prefix"
			what="Redis"
			;;
		redis-ap)
			# The same Redis, with go-redis's autopipeliner (off by
			# default: experimental upstream; see tokenstore/redis.Open).
			delkeys "$FC_DB" "{$prefix}*"
			url="redis://$REDIS_HOST/$FC_DB?prefix=$prefix&autopipeline=true"
			what="Redis, autopipelined"
			;;
		esac
		fcx() { FINCHCONNECT_KEYS="$keys" "$work/finchconnect" "$@" -store "$url" -data-dir "$work/fc-$store"; }
		FINCH_CLIENT_ID=id FINCH_CLIENT_SECRET=secret FINCH_BASE_URL="$FINCH" FINCHCONNECT_KEYS="$keys" \
			start "fc-$store" "$work/finchconnect" -addr 127.0.0.1:0 -store "$url" -data-dir "$work/fc-$store" \
			-connect-limit 0 -callback-limit 0 -sweep-interval 0 -budget off -log-level error
		FC=$URL
		FC_PID=$PID
		echo "== finchconnect on $what"
		drive "fc-$store.callback" "finchconnect ($what)" -mode callback -kind finchconnect -n "$FC_FLOWS" -target "$FC" -pid "$FC_PID"
		fcx token list -json >"$work/fc-$store.json"
		grep -o '"connection_id": *"[^"]*"' "$work/fc-$store.json" | sed 's/.*"\([^"]*\)"$/\1/' >"$work/fc-$store-ids-all"
		stored+=(-stored "fc-$store.callback=$(wc -l <"$work/fc-$store-ids-all")")
		head -n 1000 "$work/fc-$store-ids-all" >"$work/fc-$store-ids"
		readkey=$(fcx apikey create -scope read -name bench 2>/dev/null)
		drive "fc-$store.page" "finchconnect company page ($what)" -mode read -target "$FC" -path '/connections/{id}' -ids "$work/fc-$store-ids" -pid "$FC_PID"
		drive "fc-$store.proxy" "finchconnect /v1 proxy ($what)" -mode read -target "$FC" -path '/v1/connections/{id}/finch/employer/company' -ids "$work/fc-$store-ids" -api-key "$readkey" -pid "$FC_PID"
		stop "$FC_PID"
	done
	delkeys "$PEER_DB" 'finch:connection:*'
	delkeys "$FC_DB" "{$prefix}*"

	mkdir -p results
	notes="Concurrency $CONC, ${DURATION} s per phase; upstream: bench/upstream (zero latency); Redis $(rcli info server | grep -o 'redis_version:[0-9.]*' | cut -d: -f2), appendonly $(rcli config get appendonly | tail -1); SQLite: WAL, synchronous=FULL. CPU times and peak RSS from /proc over the timed phase (peak reset before each phase); Redis CPU is redis-server's, shared by every target that uses Redis (for the floor and the SQLite store it only idles); cores busy is req/s × the four CPU columns, out of the 2 the machine has. Every phase follows a 2 s warm-up of the same requests, not timed."
	status=0
	"$work/report" "${stored[@]}" -notes "$notes" <"$work/results.jsonl" >results/latest.md || status=$?
	cat results/latest.md
	if [ "$status" != 0 ]; then
		echo "report: exit status $status (2: stored connections differ from successful callbacks)" >&2
		exit "$status"
	fi
fi

if [ "$PROFILE" = 1 ]; then
	mkdir -p results/profiles
	for store in redis sqlite; do
		if [ "$store" = sqlite ]; then url="sqlite://$work/prof-sqlite/finchconnect.db"; else url="redis://$REDIS_HOST/$FC_DB?prefix=$prefix"; fi
		start "prof-$store" "$work/profile" -store "$url" -finch "$FINCH" -data-dir "$work/prof-$store" -api-key-file "$work/prof-$store.key"
		FC=$URL
		FC_PID=$PID
		PPROF=$(grep -m1 -o 'pprof on http://[0-9.:]*' "$work/prof-$store.out" | cut -d' ' -f3)
		echo "== profiles of finchconnect (server.New) on $store"
		drive "prof-$store.callback" "profiled callback ($store)" -mode callback -kind finchconnect -n "$FC_FLOWS" -target "$FC" -pid "$FC_PID" \
			-pprof "$PPROF" -pprof-out "$work/$store-callback" >/dev/null
		# The page of the first connection the callbacks stored.
		id=$(curl -s -H "Authorization: Bearer $(cat "$work/prof-$store.key")" "$FC/v1/connections?limit=1" | grep -o '"connection_id": *"[^"]*"' | head -1 | sed 's/.*"\([^"]*\)"$/\1/')
		echo "$id" >"$work/prof-$store-ids"
		drive "prof-$store.page" "profiled company page ($store)" -mode read -target "$FC" -path '/connections/{id}' -ids "$work/prof-$store-ids" -pid "$FC_PID" \
			-pprof "$PPROF" -pprof-out "$work/$store-page" >/dev/null
		drive "prof-$store.proxy" "profiled /v1 proxy company ($store)" -mode read -target "$FC" -path '/v1/connections/{id}/finch/employer/company' -ids "$work/prof-$store-ids" \
			-api-key "$(cat "$work/prof-$store.key")" -pid "$FC_PID" -pprof "$PPROF" -pprof-out "$work/$store-proxy" >/dev/null
		for p in callback page proxy; do
			{
				go tool pprof -top -nodecount=35 "$work/$store-$p.cpu"
				echo
				echo "# by cumulative time"
				go tool pprof -top -cum -nodecount=60 "$work/$store-$p.cpu" | sed -n '/flat%/,$p'
			} >"results/profiles/$store-$p.cpu.txt" 2>/dev/null
			go tool pprof -top -nodecount=35 -sample_index=alloc_space -base "$work/$store-$p.allocs-before" "$work/$store-$p.allocs-after" >"results/profiles/$store-$p.alloc_space.txt" 2>/dev/null
			go tool pprof -top -nodecount=35 -sample_index=alloc_objects -base "$work/$store-$p.allocs-before" "$work/$store-$p.allocs-after" >"results/profiles/$store-$p.alloc_objects.txt" 2>/dev/null
			cp "$work/$store-$p.cpu" "results/profiles/$store-$p.cpu.pb.gz"
		done
		stop "$FC_PID"
	done
	delkeys "$FC_DB" "{$prefix}*"
	echo "profiles: results/profiles/ (text tops; the .pb.gz files open with go tool pprof)"
fi

if [ -n "$BASE" ]; then
	mkdir -p results
	echo "== the callback of $BASE beside this checkout's ($(git rev-parse --short HEAD)), on SQLite and Redis"
	git -C .. worktree add -q --detach "$work/base-src" "$BASE"
	(cd "$work/base-src" && go build -o "$work/finchconnect-base" ./cmd/finchconnect)
	git -C .. worktree remove --force "$work/base-src"
	keys=$("$work/finchconnect" keygen)
	: >"$work/base.jsonl"
	for round in 1 2; do
		for store in sqlite redis; do
			for which in base head; do
				bin="$work/finchconnect"
				extra=(-budget off)
				if [ "$which" = base ]; then
					bin="$work/finchconnect-base"
					extra=()
				fi
				dir="$work/cmp-$which-$store-$round"
				url="sqlite://$dir/finchconnect.db"
				[ "$store" = redis ] && url="redis://$REDIS_HOST/$FC_DB?prefix=$prefix-$which-$round"
				FINCH_CLIENT_ID=id FINCH_CLIENT_SECRET=secret FINCH_BASE_URL="$FINCH" FINCHCONNECT_KEYS="$keys" \
					start "cmp-$which-$store" "$bin" -addr 127.0.0.1:0 -store "$url" -data-dir "$dir" \
					-connect-limit 0 -callback-limit 0 -sweep-interval 0 -log-level error "${extra[@]}"
				line=$(drive "cmp-$which-$store.callback" "$which ($store, round $round)" -mode callback -kind finchconnect -n "$FC_FLOWS" -target "$URL" -pid "$PID")
				stop "$PID"
				# Every successful callback stored exactly once.
				n=$(FINCHCONNECT_KEYS="$keys" "$bin" token list -json -store "$url" -data-dir "$dir" | grep -c '"connection_id"' || true)
				echo "$line" | jq -c --arg which "$which" --arg store "$store" --argjson stored "$n" '. + {which: $which, store: $store, stored: $stored}' >>"$work/base.jsonl"
				delkeys "$FC_DB" "{$prefix-$which-$round}*"
			done
		done
	done
	{
		echo "# The callback of $BASE beside $(git rev-parse --short HEAD)"
		echo
		echo "$(date -u +%Y-%m-%dT%H:%MZ), concurrency $CONC, ${DURATION} s per phase, alternating base and head, two rounds. CPU is finchconnect's own per callback (µs), from /proc; Redis's is redis-server's."
		echo
		echo "| store | which | round | callbacks/s | CPU µs | Redis CPU µs | p99 ms | ok | stored |"
		echo "|---|---|---|---|---|---|---|---|---|"
		jq -r '"| \(.store) | \(.which) | \(.label | capture("round (?<r>[0-9]+)").r) | \(.rps|floor) | \(.cpu_us_per_req|floor) | \(.store_cpu_us_per_req // 0 | floor) | \(.p99_ms) | \(.ok + .warmup_ok) | \(.stored) |"' "$work/base.jsonl"
		echo
		echo "| store | base CPU µs (mean) | head CPU µs (mean) | head / base |"
		echo "|---|---|---|---|"
		jq -rs 'group_by(.store)[] | . as $g | ([$g[]|select(.which=="base").cpu_us_per_req]|add/length) as $b | ([$g[]|select(.which=="head").cpu_us_per_req]|add/length) as $h | "| \($g[0].store) | \($b|floor) | \($h|floor) | \(if $b > 0 then ($h/$b*100|round)/100 else "n/a" end) |"' "$work/base.jsonl"
	} >results/base.md
	cat results/base.md
	# A phase whose prepared flows ran out measured nothing: raise FC_FLOWS.
	jq -e -s 'all(.[]; .exhausted | not)' "$work/base.jsonl" >/dev/null || { echo "a phase ran out of prepared flows (raise FC_FLOWS)" >&2; exit 2; }
	# A callback answered but not stored, or stored twice, fails the run.
	jq -e -s 'all(.[]; .stored == .ok + .warmup_ok)' "$work/base.jsonl" >/dev/null || { echo "stored connections differ from successful callbacks" >&2; exit 2; }
fi

if [ "$SCALE" = 1 ]; then
	mkdir -p results
	echo "== scale: 1,000,000 connections in SQLite"
	timeout 3600 "$work/scale" -dir "$work/scale-db" -out results/scale.md
fi

if [ "$BUDGET" = 1 ]; then
	mkdir -p results
	echo "== budget: three replicas on Redis, then PostgreSQL, behind the rate-limited sandbox; the official SDK side by side"
	# It cleans up after itself: keys under a prefix of its own in
	# BUDGET_DB, a PostgreSQL schema of its own, the processes it starts.
	timeout 900 "$work/budget" -finchconnect "$work/finchconnect" -redis "redis://$REDIS_HOST/$BUDGET_DB" -postgres "$PG_URL" \
		-sdk-dir ../sandbox/sdktest -out results/budget.md ${BUDGET_ARGS:-}
fi
