#!/usr/bin/env bash
# Fault scenarios against a real MariaDB primary and replica, through tcp-fallback and through
# HAProxy 2.6, side by side in one run. For each scenario and proxy it prints:
#   - seconds from the fault to the first successful write,
#   - client transactions that failed in between,
#   - client transactions that hung for more than 10 s,
#   - where new connections went once the old primary was back (server ids of 10 clients).
#
# Scenarios: kill-9 and sigstop of the primary; switchover, done as a replication tool does it
# (the primary turns read_only=ON, the replica catches up, stops replicating and turns writable),
# for which "first write" counts from the promotion and the writes that failed with error 1290
# (read-only) are counted apart: all of them, and "late", those that started after tcp-fallback's
# check saw the old primary read-only (from its log).
#
#   Benchmarks/failover.sh [--clients N]        (scenarios="switchover" ... runs only those)
#
# tcp-fallback runs with the recommended MySQL flags (-check mysql -check-interval 1s
# -timeout 1s -failback manual), and for the switchover as a writer listener (-check-user
# monitor -role writer -queue-timeout 3s); HAProxy with a 1 s TCP check, fall 2, rise 2, the
# replica as backup and on-marked-down shutdown-sessions. The clients write as a user without
# SUPER, to whom read_only applies.
set -euo pipefail
cd "$(dirname "$0")/.."
clients=4
while [ $# -gt 0 ]; do
  case "$1" in
    --clients) clients=$2; shift 2 ;;
    *) echo "usage: $0 [--clients N]" >&2; exit 2 ;;
  esac
done

Scripts/install-deps.sh haproxy mariadb-server mariadb-client python3
Scripts/build-release.sh
binary=$PWD/.build/release/tcp-fallback

work=$(mktemp -d /tmp/tcp-fallback-failover.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -CONT "$pid" 2>/dev/null || true; kill -9 "$pid" 2>/dev/null || true; done
  pkill -9 -f "datadir=$work/" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sql() { mariadb -S "$work/$1/sock" -u root -N -B -e "$2"; }

# start_server NAME ID PORT: mariadbd on its own data directory, answered on 127.0.0.1:PORT.
start_server() {
  local dir=$work/$1
  if [ ! -d "$dir/data" ]; then
    mkdir -p "$dir"
    mariadb-install-db --no-defaults --datadir="$dir/data" --auth-root-authentication-method=normal \
      --skip-test-db --user=root >"$dir/install.log" 2>&1
    fresh=1
  else
    fresh=0
  fi
  mariadbd --no-defaults --datadir="$dir/data" --socket="$dir/sock" --port="$3" --bind-address=127.0.0.1 \
    --user=root --server-id="$2" --log-bin="$dir/binlog" --pid-file="$dir/pid" --skip-name-resolve \
    --innodb-buffer-pool-size=16M --log-error="$dir/error.log" &
  echo $! >"$dir/mariadbd.pid"
  pids+=($!)
  for _ in $(seq 200); do sql "$1" "SELECT 1" >/dev/null 2>&1 && break; sleep 0.05; done
  if [ "$fresh" = 1 ]; then
    sql "$1" "SET sql_log_bin=0; CREATE USER 'app'@'%' IDENTIFIED BY 'pw'; GRANT ALL ON *.* TO 'app'@'%';
      CREATE USER 'writer'@'%' IDENTIFIED BY 'pw'; GRANT SELECT, INSERT ON *.* TO 'writer'@'%';
      CREATE USER 'monitor'@'%' IDENTIFIED BY 'monitor-pw'; GRANT SLAVE MONITOR ON *.* TO 'monitor'@'%';
      CREATE USER 'repl'@'%' IDENTIFIED BY 'repl'; GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';"
  fi
}

client() {  # client PORT SQL: one transaction on a new connection as `writer`; exit status tells
  timeout 12 mariadb -h 127.0.0.1 -P "$1" -u writer -ppw --connect-timeout=12 -N -B -e "$2" 2>/dev/null
}

# worker PORT ID FILE: writes until $work/stop exists, one line per transaction:
# start end ok|fail|readonly (readonly: error 1290, the server is read-only)
worker() {
  local n=0 output
  while [ ! -e "$work/stop" ]; do
    n=$((n + 1))
    local start end
    start=$(date +%s.%N)
    if output=$(timeout 12 mariadb -h 127.0.0.1 -P "$1" -u writer -ppw --connect-timeout=12 -N -B \
        -e "INSERT INTO shop.orders VALUES ($(( $2 * 1000000 + n )), 'x')" 2>&1); then r=ok
    elif [[ $output == *1290* ]]; then r=readonly
    else r=fail; fi
    end=$(date +%s.%N)
    echo "$start $end $r" >>"$3"
  done
}

# run PROXY SCENARIO: one fault scenario through one proxy; prints a result line.
run() {
  local proxy=$1 scenario=$2
  rm -rf "$work/primary" "$work/replica" "$work/stop" "$work"/w.*
  local pport rport lport
  pport=$(free_port); rport=$(free_port); lport=$(free_port)
  start_server primary 1 "$pport"
  start_server replica 2 "$rport"
  sql primary "CREATE DATABASE shop; CREATE TABLE shop.orders (id BIGINT PRIMARY KEY, note TEXT);"
  sql replica "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$pport, MASTER_USER='repl', MASTER_PASSWORD='repl', MASTER_USE_GTID=slave_pos; START SLAVE;"
  [ "$scenario" = switchover ] && sql replica "SET GLOBAL read_only = 1"
  sleep 0.5

  if [ "$proxy" = tcp-fallback ] && [ "$scenario" = switchover ]; then
    printf 'monitor-pw\n' >"$work/check-password"
    chmod 600 "$work/check-password"
    "$binary" -logfile "$work/tcp-fallback.log" -check mysql -check-interval 1s -timeout 1s -failback manual \
      -check-user monitor -check-password-file "$work/check-password" -role writer -queue-timeout 3s \
      127.0.0.1:"$lport" 127.0.0.1:"$pport" 127.0.0.1:"$rport" &
  elif [ "$proxy" = tcp-fallback ]; then
    "$binary" -quiet -check mysql -check-interval 1s -timeout 1s -failback manual \
      127.0.0.1:"$lport" 127.0.0.1:"$pport" 127.0.0.1:"$rport" &
  else
    cat >"$work/haproxy.cfg" <<CONF
global
  maxconn 4000
defaults
  mode tcp
  timeout connect 1s
  timeout client 1m
  timeout server 1m
listen mysql
  bind 127.0.0.1:$lport
  server primary 127.0.0.1:$pport check inter 1s fall 2 rise 2 on-marked-down shutdown-sessions
  server replica 127.0.0.1:$rport check inter 1s fall 2 rise 2 backup
CONF
    haproxy -q -f "$work/haproxy.cfg" &
  fi
  local proxy_pid=$!
  pids+=($proxy_pid)
  for _ in $(seq 100); do client "$lport" "SELECT 1" >/dev/null && break; sleep 0.05; done

  local workers=()
  for i in $(seq "$clients"); do worker "$lport" "$i" "$work/w.$i" & workers+=($!); done
  sleep 2
  local primary_pid fault demoted
  primary_pid=$(cat "$work/primary/mariadbd.pid")
  demoted=$(date +%s.%N)
  fault=$demoted
  case $scenario in
    kill-9) kill -9 "$primary_pid" ;;
    sigstop) kill -STOP "$primary_pid" ;;
    switchover)
      sql primary "SET GLOBAL read_only = 1"
      local position
      position=$(sql primary "SELECT @@gtid_binlog_pos")
      sql replica "SELECT MASTER_GTID_WAIT('$position', 10)" >/dev/null
      sql replica "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0"
      fault=$(date +%s.%N)  # the promotion
      ;;
  esac
  sleep 12
  touch "$work/stop"
  wait "${workers[@]}" 2>/dev/null || true

  # The old primary returns: where do new connections go?
  case $scenario in
    kill-9) start_server primary 1 "$pport" ;;
    sigstop) kill -CONT "$primary_pid" ;;
    switchover) ;;  # it never left; it is read-only now
  esac
  sleep 6
  local where=()
  for _ in $(seq 10); do where+=("$(client "$lport" "SELECT @@server_id" || echo x)"); done

  # When tcp-fallback's check saw the old primary read-only (its log), for the 1290s after it.
  local saw=0
  if [ -f "$work/tcp-fallback.log" ]; then
    saw=$(python3 -c '
import datetime, sys
for line in open(sys.argv[1]):
    if "is read-only" in line and sys.argv[2] in line:
        print(datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()); break
else:
    print(0)' "$work/tcp-fallback.log" "127.0.0.1:$pport")
    rm -f "$work/tcp-fallback.log"
  fi
  python3 - "$fault" "$proxy" "$scenario" "${where[*]}" "$demoted" "$saw" "$work"/w.* <<'PY'
import sys
fault, proxy, scenario, where, demoted, saw = float(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4].split(), float(sys.argv[5]), float(sys.argv[6])
rows = []
for name in sys.argv[7:]:
    for line in open(name):
        start, end, result = line.split()
        rows.append((float(start), float(end), result))
after = sorted(r for r in rows if r[1] > fault)
first_ok = next((r for r in after if r[2] == "ok" and r[0] >= fault), None)
recovery = first_ok[1] - fault if first_ok else float("nan")
failed = sum(1 for r in after if r[2] != "ok" and (first_ok is None or r[0] <= first_ok[1]))
# Writes refused as read-only (1290) from the demotion to the end: a client sent to the wrong server.
readonly = sum(1 for r in rows if r[2] == "readonly" and r[1] > demoted)
# ... and of those, the ones that started after the proxy's check saw the demotion.
later = str(sum(1 for r in rows if r[2] == "readonly" and r[0] > saw)) if saw else "-"
hung = sum(1 for r in rows if r[1] - r[0] > 10)
print(f"{scenario:10} {proxy:13} {recovery:9.2f} s {failed:8d} {readonly:8d} {later:>8} {hung:6d}   primary {where.count('1')}, replica {where.count('2')}, failed {where.count('x')}")
PY
  kill -CONT "$primary_pid" 2>/dev/null || true
  kill "$proxy_pid" 2>/dev/null || true
  pkill -9 -f "datadir=$work/" 2>/dev/null || true
  wait "$proxy_pid" 2>/dev/null || true
  sleep 0.5
}

echo "tcp-fallback $("$binary" --version) vs $(haproxy -v | head -1 | awk '{print "HAProxy", $3}'), $clients clients writing in a loop"
printf '%-10s %-13s %11s %8s %8s %8s %6s   %s\n' scenario proxy "first write" failed "1290" "1290 late" hung "then 10 new clients went to"
for scenario in ${scenarios:-kill-9 sigstop switchover}; do
  for proxy in tcp-fallback haproxy; do
    run "$proxy" "$scenario"
  done
done
