#!/usr/bin/env bash
# A second Docker engine ("engine B") beside the default one, for the tests of issue 17
# (availability zones on separate engines): ./tests/support/second-engine.sh start|stop|status
#
#   start   starts it unless it already answers (idempotent); waits until it answers
#           (at most EC2D_ENGINE_B_START_TIMEOUT seconds, default 60)
#   stop    TERM to its dockerd, waits until the process has exited (no-op when not running)
#   status  exit 0 when it answers, 1 when not
#
# Its own socket, data root, exec root (with its own managed containerd under it), pidfile,
# containerd namespaces and bridge (ec2d-b0, 10.247.0.1/24, away from the default engine's
# 172.17-31/192.168 pools and from the 10.x blocks the tests give VPCs). No
# --default-address-pool: dockerd 20.10 started with one deletes the interface named docker0
# (the default engine's bridge, whatever --bridge says) when it clears a stale default network
# at a restart on an existing data root; ec2d names every VPC network's subnet itself. No iptables rules and no masquerading of its own: B's
# containers reach each other and the host, which is all the tests need. Same storage driver
# as the default engine, so images load as fast there. Prints EC2D_TEST_ENGINE_B=<endpoint>.
# It also listens with TLS on 127.0.0.1 (client certificates required; a CA, a server and a
# client certificate made with openssl under $RUN_DIR/tls at its first start), and prints
# EC2D_TEST_ENGINE_B_TLS=https://127.0.0.1:<port> and EC2D_TEST_ENGINE_B_CERTS=<the client's
# ca.pem, cert.pem and key.pem, a DOCKER_CERT_PATH>.
#
# Environment (defaults in brackets):
#   EC2D_ENGINE_B_RUN     [/run/ec2d-engine-b]   socket, pidfile, exec root (short: unix paths ≤ 108)
#   EC2D_ENGINE_B_DATA    [/var/lib/ec2d-engine-b]  data root (images, containers)
#   EC2D_ENGINE_B_LOG     [/var/log/ec2d-test-dockerd-b.log]
#   EC2D_ENGINE_B_START_TIMEOUT [60]
#   EC2D_ENGINE_B_TLS_PORT [23760]   its TLS listener on 127.0.0.1
set -euo pipefail

RUN_DIR="${EC2D_ENGINE_B_RUN:-/run/ec2d-engine-b}"
DATA_ROOT="${EC2D_ENGINE_B_DATA:-/var/lib/ec2d-engine-b}"
LOG="${EC2D_ENGINE_B_LOG:-/var/log/ec2d-test-dockerd-b.log}"
START_TIMEOUT="${EC2D_ENGINE_B_START_TIMEOUT:-60}"
SOCK="$RUN_DIR/docker.sock"
ENDPOINT="unix://$SOCK"
PIDFILE="$RUN_DIR/dockerd.pid"
CONFIG="$RUN_DIR/daemon.json"
EXEC_ROOT="$RUN_DIR/exec"
BRIDGE=ec2d-b0
BRIDGE_CIDR=10.247.0.1/24
TLS_PORT="${EC2D_ENGINE_B_TLS_PORT:-23760}"
TLS_DIR="$RUN_DIR/tls"
TLS_ENDPOINT="https://127.0.0.1:$TLS_PORT"

note() { printf '[second-engine] %s\n' "$*"; }

answers() { docker -H "$ENDPOINT" info --format '{{.ServerVersion}}' >/dev/null 2>&1; }

# Whether the TLS listener answers a client with B's client certificate.
tls_answers() {
    DOCKER_CERT_PATH="$TLS_DIR/client" docker --tlsverify -H "tcp://127.0.0.1:$TLS_PORT" \
        info --format '{{.ServerVersion}}' >/dev/null 2>&1
}

print_endpoints() {
    echo "EC2D_TEST_ENGINE_B=$ENDPOINT"
    if tls_answers; then
        echo "EC2D_TEST_ENGINE_B_TLS=$TLS_ENDPOINT"
        echo "EC2D_TEST_ENGINE_B_CERTS=$TLS_DIR/client"
    else
        note "its TLS listener $TLS_ENDPOINT does not answer (started by an older version of this script? stop and start it)"
    fi
}

# A CA, a server certificate for 127.0.0.1 and localhost, and a client certificate, as
# Docker's "protect the daemon socket" guide makes them; kept while $TLS_DIR exists.
make_certs() {
    [ -s "$TLS_DIR/client/key.pem" ] && [ -s "$TLS_DIR/server/key.pem" ] && return 0
    command -v openssl >/dev/null || { note "openssl not found (needed for B's TLS listener)"; return 1; }
    rm -rf "$TLS_DIR"
    mkdir -p "$TLS_DIR/server" "$TLS_DIR/client"
    local d="$TLS_DIR" days=3650
    (
        cd "$d"
        openssl req -x509 -newkey rsa:2048 -nodes -days "$days" -subj "/CN=ec2d engine B test CA" \
            -keyout ca-key.pem -out ca.pem 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server/key.pem -out server.csr 2>/dev/null
        printf 'subjectAltName = IP:127.0.0.1,DNS:localhost\nextendedKeyUsage = serverAuth\n' >server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days "$days" \
            -extfile server.ext -out server/cert.pem 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -subj "/CN=ec2d" -keyout client/key.pem -out client.csr 2>/dev/null
        printf 'extendedKeyUsage = clientAuth\n' >client.ext
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days "$days" \
            -extfile client.ext -out client/cert.pem 2>/dev/null
        cp ca.pem server/ca.pem
        cp ca.pem client/ca.pem
        rm -f server.csr client.csr server.ext client.ext
    )
    chmod 600 "$TLS_DIR"/*/key.pem "$TLS_DIR/ca-key.pem"
    note "made B's TLS certificates under $TLS_DIR"
}

# The pid in the pidfile when that process is still a dockerd, else nothing.
running_pid() {
    local pid
    [ -s "$PIDFILE" ] || return 1
    pid="$(cat "$PIDFILE")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] || return 1
    printf '%s' "$pid"
}

ensure_bridge() {
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link add "$BRIDGE" type bridge
    fi
    if ! ip -4 addr show dev "$BRIDGE" | grep -qF "inet $BRIDGE_CIDR "; then
        ip addr add "$BRIDGE_CIDR" dev "$BRIDGE"
    fi
    ip link set "$BRIDGE" up
}

# B's own daemon.json: dockerd refuses a directive given both as a flag and in its config
# file, and /etc/docker/daemon.json (the default engine's) sets data-root and storage-driver.
# The default engine's other settings (mtu, log options) are kept, so containers behave alike.
# dockerd before 23 derives its engine ID (`docker info` .ID) from a key file that defaults to
# /etc/docker/key.json whatever the data root, so B would share A's ID; B gets its own key
# (kept in its data root, so the ID survives restarts). 23 and later keep the ID in the data root.
write_config() {
    local src=/etc/docker/daemon.json key="" major
    major="$(dockerd --version 2>/dev/null | sed -nE 's/^Docker version ([0-9]+)\..*/\1/p')"
    if [ -n "$major" ] && [ "$major" -lt 23 ]; then key="$DATA_ROOT/engine-b-key.json"; fi
    [ -s "$src" ] || src=""
    python3 - "$CONFIG" "$key" "$src" <<'PY'
import json, sys
conf = json.load(open(sys.argv[3])) if len(sys.argv) > 3 and sys.argv[3] else {}
for k in ("data-root", "graph", "storage-driver", "exec-root", "pidfile", "hosts", "bridge", "bip",
          "iptables", "ip-masq", "default-address-pools", "cgroup-parent", "shutdown-timeout",
          "containerd", "containerd-namespace", "containerd-plugins-namespace", "fixed-cidr",
          "deprecated-key-path", "tls", "tlsverify", "tlscacert", "tlscert", "tlskey"):
    conf.pop(k, None)
if sys.argv[2]:
    conf["deprecated-key-path"] = sys.argv[2]
json.dump(conf, open(sys.argv[1], "w"))
PY
}

start() {
    if answers; then
        note "engine B answers at $ENDPOINT: server $(docker -H "$ENDPOINT" version --format '{{.Server.Version}}' 2>/dev/null || echo '?')"
        print_endpoints
        return 0
    fi
    command -v dockerd >/dev/null || { note "dockerd not found"; return 1; }
    local pid
    if pid="$(running_pid)"; then
        # Started but not answering yet (a start still under way, or a hung engine):
        # wait for it below rather than start a second one on the same data root.
        note "dockerd (pid $pid) runs but does not answer yet; waiting"
    else
        # The driver the default engine uses (fuse-overlayfs on CI): auto-detection could pick
        # vfs, which copies every layer in full.
        local driver
        driver="$(docker info --format '{{.Driver}}' 2>/dev/null)" || driver=""
        [ -n "$driver" ] || { note "the default engine does not answer; start it first"; return 1; }
        mkdir -p "$RUN_DIR" "$DATA_ROOT" "$EXEC_ROOT" "$(dirname "$LOG")"
        rm -f "$SOCK" "$PIDFILE"
        ensure_bridge
        write_config
        make_certs
        local -a flags=(
            --config-file "$CONFIG"
            --host "$ENDPOINT"
            --host "tcp://127.0.0.1:$TLS_PORT"
            --tlsverify
            --tlscacert "$TLS_DIR/server/ca.pem"
            --tlscert "$TLS_DIR/server/cert.pem"
            --tlskey "$TLS_DIR/server/key.pem"
            --data-root "$DATA_ROOT"
            --exec-root "$EXEC_ROOT"
            --pidfile "$PIDFILE"
            --bridge "$BRIDGE"
            --iptables=false
            --ip-masq=false
            --storage-driver "$driver"
            --cgroup-parent /ec2d-engine-b
            --shutdown-timeout 3
        )
        # Own containerd namespaces, in case this dockerd ever shares a containerd with the
        # default engine (both would use "moby" otherwise).
        if dockerd --help 2>&1 | grep -q -- '--containerd-namespace'; then
            flags+=(--containerd-namespace ec2d-b --containerd-plugins-namespace ec2d-b-plugins)
        fi
        note "starting dockerd ${flags[*]} (log: $LOG)"
        # Own session, no stdin, survives this script (later runs reuse it).
        printf '\n=== %s second-engine.sh start\n' "$(date -u +%FT%TZ)" >>"$LOG"
        setsid nohup dockerd "${flags[@]}" >>"$LOG" 2>&1 </dev/null &
        pid=$!
    fi
    local t0=$SECONDS
    while [ $((SECONDS - t0)) -lt "$START_TIMEOUT" ]; do
        if answers; then
            note "engine B (pid $pid) answers at $ENDPOINT after $((SECONDS - t0))s: server $(docker -H "$ENDPOINT" version --format '{{.Server.Version}}' 2>/dev/null || echo '?')"
            print_endpoints
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            note "dockerd exited early; last lines of $LOG:"
            tail -n 40 "$LOG" || true
            return 1
        fi
        sleep 0.2
    done
    note "engine B did not answer within ${START_TIMEOUT}s; last lines of $LOG:"
    tail -n 40 "$LOG" || true
    return 1
}

stop() {
    local pid
    if ! pid="$(running_pid)"; then
        note "engine B is not running"
        return 0
    fi
    note "stopping dockerd (pid $pid)"
    kill -TERM "$pid"
    # --shutdown-timeout 3 bounds the containers' stop; allow for the daemon's own shutdown.
    local i
    for i in $(seq 1 300); do
        if ! kill -0 "$pid" 2>/dev/null; then
            note "engine B stopped after $((i / 10)).$((i % 10))s"
            return 0
        fi
        sleep 0.1
    done
    note "dockerd (pid $pid) still runs 30 s after TERM; last lines of $LOG:"
    tail -n 20 "$LOG" || true
    return 1
}

status() {
    if answers; then
        note "engine B answers at $ENDPOINT"
        return 0
    fi
    note "engine B does not answer at $ENDPOINT"
    return 1
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
