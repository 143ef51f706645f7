#!/usr/bin/env bash
# Install everything into .venv and run the whole test suite (the README's test command).
#
#   bash scripts/test-all.sh [pytest arguments...]
#
# Idempotent: creates .venv when missing, (re)installs the core and every plugin under
# plugins/ editable, starts a Redis on 127.0.0.1:6379 and a RabbitMQ on 127.0.0.1:5672 when
# none answers there (and leaves them running for the next run), then runs pytest over the
# root pyproject's testpaths (core/tests, plugins, tests). The exit code is pytest's; "no tests collected" (5) fails.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
REDIS_HOST=127.0.0.1
REDIS_PORT=6379

log() { printf '\n==> %s\n' "$*"; }

# --- 1. the virtual environment ----------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV with $PYTHON ($("$PYTHON" --version 2>&1))"
    "$PYTHON" -m venv "$VENV" || {
        echo "error: '$PYTHON -m venv' failed; on Debian/Ubuntu run: apt-get install python3-venv" >&2
        exit 1
    }
fi
VPY="$VENV/bin/python"

# --- 2. the core, every plugin (discovered), and the test tools ---------------------------
log "upgrading pip"
"$VPY" -m pip install --quiet --upgrade pip

packages=(-e ".[testing,orjson,msgpack]")
for pyproject in plugins/*/pyproject.toml; do
    [ -e "$pyproject" ] || continue
    plugin_dir="$(dirname "$pyproject")"
    # Add the [test] extra only when the plugin declares it.
    if "$VPY" - "$pyproject" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
try:
    import tomllib
except ImportError:  # Python 3.10: look for the table by hand
    table = re.search(r"(?ms)^\[project\.optional-dependencies\](.*?)(?=^\[|\Z)", text)
    sys.exit(0 if table and re.search(r"(?m)^\s*test\s*=", table.group(1)) else 1)
extras = tomllib.loads(text).get("project", {}).get("optional-dependencies", {})
sys.exit(0 if "test" in extras else 1)
PY
    then
        packages+=(-e "${plugin_dir}[test]")
    else
        packages+=(-e "${plugin_dir}")
    fi
done
packages+=(ruff mypy fakeredis redis hiredis)

log "installing: ${packages[*]}"
"$VPY" -m pip install --quiet "${packages[@]}"

# --- 3. the programs the tests run: redis-server and redis-cli (fixtures start extra
#        servers: a Cluster, Sentinels, a server to stop), openssl (TLS certificates) --------
missing=()
for tool in redis-server redis-cli openssl; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
        log "installing ${missing[*]} with apt-get"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools openssl >/dev/null
    else
        echo "error: the tests need ${missing[*]}; install them (Debian/Ubuntu: apt-get install" >&2
        echo "       redis-server redis-tools openssl) and run this script again." >&2
        exit 1
    fi
fi

# --- 4. Redis on 127.0.0.1:6379 -------------------------------------------------------------
redis_answers() {
    if command -v redis-cli >/dev/null 2>&1; then
        [ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]
    else
        "$VPY" -c "import redis, sys; sys.exit(0 if redis.Redis(host='$REDIS_HOST', port=$REDIS_PORT, socket_timeout=1).ping() else 1)" >/dev/null 2>&1
    fi
}

if redis_answers; then
    log "Redis already answers on $REDIS_HOST:$REDIS_PORT"
else
    if ! command -v redis-server >/dev/null 2>&1; then
        echo "error: nothing answers on $REDIS_HOST:$REDIS_PORT and redis-server is not installed" >&2
        echo "       (Debian/Ubuntu: apt-get install redis-server), or start a Redis there yourself." >&2
        exit 1
    fi
    log "starting redis-server on $REDIS_HOST:$REDIS_PORT (left running afterwards)"
    redis-server --daemonize yes --bind "$REDIS_HOST" --port "$REDIS_PORT" --save "" --appendonly no
    for _ in $(seq 1 100); do
        redis_answers && break
        sleep 0.1
    done
    if ! redis_answers; then
        echo "error: redis-server was started but does not answer on $REDIS_HOST:$REDIS_PORT" >&2
        exit 1
    fi
fi

# --- 5. RabbitMQ on 127.0.0.1:5672 (guest/guest), for the kombu transport's tests ------------
rabbit_answers() {
    "$VPY" - <<'PY' >/dev/null 2>&1
import socket, sys
try:
    with socket.create_connection(("127.0.0.1", 5672), timeout=1) as conn:
        conn.sendall(b"AMQP\x00\x00\x09\x01")
        sys.exit(0 if conn.recv(8) else 1)
except OSError:
    sys.exit(1)
PY
}

if rabbit_answers; then
    log "RabbitMQ already answers on 127.0.0.1:5672"
else
    if ! command -v rabbitmq-server >/dev/null 2>&1; then
        if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
            log "installing rabbitmq-server with apt-get"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
        else
            echo "error: nothing answers on 127.0.0.1:5672 and rabbitmq-server is not installed" >&2
            echo "       (Debian/Ubuntu: apt-get install rabbitmq-server), or start one yourself." >&2
            exit 1
        fi
    fi
    log "starting rabbitmq-server (left running afterwards)"
    if command -v service >/dev/null 2>&1 && service rabbitmq-server start >/dev/null 2>&1; then
        :
    else
        rabbitmq-server -detached >/dev/null 2>&1 || true
    fi
    for _ in $(seq 1 120); do
        rabbit_answers && break
        sleep 0.5
    done
    if ! rabbit_answers; then
        echo "error: rabbitmq-server was started but does not answer on 127.0.0.1:5672" >&2
        exit 1
    fi
fi

# --- 6. the whole test suite ----------------------------------------------------------------
log "running pytest $*"
set +e
"$VPY" -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "error: pytest collected no tests (exit 5)" >&2
fi
exit "$status"
