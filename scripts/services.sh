#!/usr/bin/env bash
# kforge production services on one machine, all on loopback (127.0.0.1):
#   PostgreSQL (Debian package; installed with apt if missing) holding two databases,
#   `dagster` (run, event-log and schedule storage) and `mlflow` (tracking + registry),
#   the MLflow tracking server (Postgres backend, file artifact root KFORGE_HOME/mlartifacts),
#   the Dagster webserver and the Dagster daemon (schedules, sensors, run queue).
#
# Usage: scripts/services.sh start|stop|status|env|embedded [options]
#   --dir DIR          state directory (default: $KFORGE_HOME/services; KFORGE_HOME defaults to ./.kforge)
#   --only LIST        comma list of postgres,mlflow,dagster (default: all)
#   --pg-port N        PostgreSQL port (default 5433, so a system cluster on 5432 is left alone)
#   --mlflow-port N    MLflow server port (default 5000)
#   --dagster-port N   Dagster webserver port (default 3000)
#   --host ADDR        address every server binds to (default 127.0.0.1; anything else is your decision)
#
# `start` writes DIR/env.sh (mode 600): `source` it to point the kforge CLI at the same stack.
# It installs deploy/dagster.yaml as KFORGE_HOME/dagster/dagster.yaml (the embedded sqlite one is
# kept as dagster.yaml.embedded); `embedded` puts the sqlite instance back. Idempotent: a second
# `start` reuses the cluster and skips what already runs. As root, PostgreSQL runs as the
# `postgres` user (initdb refuses root), so DIR must be reachable by that user.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ACTION="${1:-}"; [ $# -gt 0 ] && shift
KFORGE_HOME="$(realpath -m "${KFORGE_HOME:-$ROOT/.kforge}")"
DIR=""; ONLY="postgres,mlflow,dagster"; PG_PORT=5433; MLFLOW_PORT=5000; DAGSTER_PORT=3000; HOST=127.0.0.1
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) DIR="$2"; shift 2 ;;
    --only) ONLY="$2"; shift 2 ;;
    --pg-port) PG_PORT="$2"; shift 2 ;;
    --mlflow-port) MLFLOW_PORT="$2"; shift 2 ;;
    --dagster-port) DAGSTER_PORT="$2"; shift 2 ;;
    --host) HOST="$2"; shift 2 ;;
    *) echo "services.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
DIR="$(realpath -m "${DIR:-$KFORGE_HOME/services}")"
for p in "$PG_PORT" "$MLFLOW_PORT" "$DAGSTER_PORT"; do
  [[ "$p" =~ ^[0-9]+$ ]] && [ "$p" -ge 1024 ] && [ "$p" -le 65535 ] || { echo "services.sh: port $p must be 1024..65535" >&2; exit 2; }
done
BIN="${KFORGE_VENV_BIN:-$ROOT/.venv/bin}"
PGDATA="$DIR/pgdata"; LOGS="$DIR/logs"; RUN="$DIR/run"; ENVFILE="$DIR/env.sh"
PG_USER=kforge
wants() { [[ ",$ONLY," == *",$1,"* ]]; }
log() { echo "services: $*"; }
die() { echo "services.sh: $*" >&2; exit 1; }

pg_bin() {  # newest installed PostgreSQL server binaries
  local d; d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  [ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}

as_pg() {  # run a PostgreSQL server binary as a non-root user (initdb/postgres refuse root)
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install_postgres() {
  [ -n "$(pg_bin)" ] && return 0
  log "PostgreSQL not found: installing the Debian package"
  local SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  command -v apt-get >/dev/null || die "PostgreSQL is missing and apt-get is not available: install PostgreSQL >= 13"
  $SUDO apt-get update -qq
  # policy-rc.d keeps the package from starting its own cluster (we run ours under DIR)
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  [ -n "$(pg_bin)" ] || die "apt-get installed postgresql but no initdb was found under /usr/lib/postgresql"
}

password() {
  if [ ! -s "$DIR/pg.password" ]; then
    umask 077; head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24 > "$DIR/pg.password"
  fi
  cat "$DIR/pg.password"
}

psql_cmd() {
  PGPASSWORD="$(password)" "$(pg_bin)/psql" -h "$HOST" -p "$PG_PORT" -U "$PG_USER" -v ON_ERROR_STOP=1 -qtA "$@"
}

start_postgres() {
  install_postgres
  local B; B="$(pg_bin)"
  mkdir -p "$DIR" "$LOGS" "$RUN"
  local pw; pw="$(password)"
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/false postgres
    mkdir -p "$PGDATA"; chown postgres "$PGDATA" "$LOGS"; chmod 700 "$PGDATA"
    runuser -u postgres -- test -w "$PGDATA" || die "user postgres cannot reach $PGDATA (a parent directory is not traversable); pass --dir under a world-traversable path"
  fi
  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    log "initdb $PGDATA (superuser $PG_USER, scram-sha-256 on loopback)"
    local pwfile="$PGDATA.pwfile"; (umask 077; echo "$pw" > "$pwfile")
    [ "$(id -u)" -eq 0 ] && chown postgres "$pwfile"
    as_pg "$B/initdb" -D "$PGDATA" -U "$PG_USER" --pwfile="$pwfile" --auth=scram-sha-256 -E UTF8 --no-locale >"$LOGS/initdb.log" 2>&1 \
      || { rm -f "$pwfile"; die "initdb failed, see $LOGS/initdb.log"; }
    rm -f "$pwfile"
  fi
  if as_pg "$B/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    log "postgres already running on $HOST:$PG_PORT"
  else
    log "starting postgres on $HOST:$PG_PORT"
    as_pg "$B/pg_ctl" -D "$PGDATA" -l "$LOGS/postgres.log" -w -t 60 \
      -o "-c listen_addresses=$HOST -p $PG_PORT -k $PGDATA -c max_connections=200 -c shared_buffers=128MB" start >/dev/null \
      || die "postgres did not start, see $LOGS/postgres.log"
  fi
  for db in dagster mlflow; do
    [ "$(psql_cmd -d postgres -c "select 1 from pg_database where datname = '$db'")" = "1" ] \
      || psql_cmd -d postgres -c "create database $db" >/dev/null
  done
}

write_env() {
  mkdir -p "$DIR"
  local pw; pw="$(password)"
  (umask 077; cat > "$ENVFILE" <<EOF
# written by scripts/services.sh: source it to point kforge at the services
export KFORGE_HOME='$KFORGE_HOME'
export DAGSTER_HOME='$KFORGE_HOME/dagster'
export KFORGE_PG_HOST='$HOST'
export KFORGE_PG_PORT='$PG_PORT'
export KFORGE_PG_USER='$PG_USER'
export KFORGE_PG_PASSWORD='$pw'
export KFORGE_PG_DAGSTER_DB='dagster'
export KFORGE_PG_MLFLOW_URL='postgresql+psycopg2://$PG_USER:$pw@$HOST:$PG_PORT/mlflow'
export KFORGE_MLFLOW_TRACKING_URI='http://$HOST:$MLFLOW_PORT'
export MLFLOW_TRACKING_URI='http://$HOST:$MLFLOW_PORT'
EOF
  )
}

running() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

spawn() {  # name, command...: detached, logs under DIR/logs, pid under DIR/run
  local name="$1"; shift
  if running "$name"; then log "$name already running (pid $(cat "$RUN/$name.pid"))"; return 0; fi
  mkdir -p "$LOGS" "$RUN"
  setsid "$@" >"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! > "$RUN/$name.pid"
}

wait_http() {  # url, name, seconds
  local i
  for i in $(seq 1 "$3"); do
    if "$BIN/python" -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" 2>/dev/null; then return 0; fi
    running "$2" || die "$2 exited, see $LOGS/$2.log"
    sleep 1
  done
  die "$2 did not answer at $1 within $3 s, see $LOGS/$2.log"
}

start_mlflow() {
  # shellcheck disable=SC1090
  source "$ENVFILE"
  mkdir -p "$KFORGE_HOME/mlartifacts"
  log "starting MLflow server on http://$HOST:$MLFLOW_PORT (Postgres backend, artifacts $KFORGE_HOME/mlartifacts)"
  export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
  spawn mlflow "$BIN/mlflow" server \
    --backend-store-uri "$KFORGE_PG_MLFLOW_URL" --artifacts-destination "$KFORGE_HOME/mlartifacts" \
    --host "$HOST" --port "$MLFLOW_PORT" --workers 1
  wait_http "http://$HOST:$MLFLOW_PORT/health" mlflow 120
}

install_dagster_yaml() {
  local dst="$KFORGE_HOME/dagster/dagster.yaml"
  mkdir -p "$KFORGE_HOME/dagster"
  if [ -f "$dst" ] && ! grep -q "kforge production instance" "$dst"; then cp "$dst" "$dst.embedded"; fi
  cp "$ROOT/deploy/dagster.yaml" "$dst"
}

start_dagster() {
  # shellcheck disable=SC1090
  source "$ENVFILE"
  install_dagster_yaml
  log "starting Dagster webserver on http://$HOST:$DAGSTER_PORT and the daemon (instance on Postgres)"
  (cd "$ROOT" && spawn dagster-webserver "$BIN/dagster-webserver" -w workspace.yaml -h "$HOST" -p "$DAGSTER_PORT")
  (cd "$ROOT" && spawn dagster-daemon "$BIN/dagster-daemon" run -w workspace.yaml)
  wait_http "http://$HOST:$DAGSTER_PORT/server_info" dagster-webserver 180
}

stop_one() {
  local name="$1" pid i
  running "$name" || { rm -f "$RUN/$name.pid"; return 0; }
  pid="$(cat "$RUN/$name.pid")"
  log "stopping $name (pid $pid)"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && { kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; }
  rm -f "$RUN/$name.pid"
}

case "$ACTION" in
  start)
    wants postgres && start_postgres
    write_env
    wants mlflow && start_mlflow
    wants dagster && start_dagster
    log "ready. source $ENVFILE to use this stack from the kforge CLI."
    wants dagster && log "Dagster UI  http://$HOST:$DAGSTER_PORT"
    wants mlflow && log "MLflow UI   http://$HOST:$MLFLOW_PORT"
    ;;
  stop)
    wants dagster && { stop_one dagster-daemon; stop_one dagster-webserver; }
    wants mlflow && stop_one mlflow
    if wants postgres && [ -f "$PGDATA/PG_VERSION" ] && [ -n "$(pg_bin)" ]; then
      as_pg "$(pg_bin)/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1 && { log "stopping postgres"; as_pg "$(pg_bin)/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null; }
    fi
    true
    ;;
  status)
    for n in mlflow dagster-webserver dagster-daemon; do
      if running "$n"; then echo "$n: running (pid $(cat "$RUN/$n.pid"))"; else echo "$n: stopped"; fi
    done
    if [ -n "$(pg_bin)" ] && [ -f "$PGDATA/PG_VERSION" ] && as_pg "$(pg_bin)/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
      echo "postgres: running ($PGDATA)"; else echo "postgres: stopped"; fi
    ;;
  env)
    [ -f "$ENVFILE" ] || die "no $ENVFILE yet: run scripts/services.sh start"
    cat "$ENVFILE"
    ;;
  embedded)
    dst="$KFORGE_HOME/dagster/dagster.yaml"
    if [ -f "$dst.embedded" ]; then mv "$dst.embedded" "$dst"; else rm -f "$dst"; fi
    log "Dagster instance under $KFORGE_HOME/dagster is the embedded sqlite one again (next kforge command writes it if missing)"
    ;;
  *)
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
