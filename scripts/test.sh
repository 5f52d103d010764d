#!/usr/bin/env bash
# shellcheck disable=SC2317  # functions below are called indirectly (setup_step, check)
# The one test command for ec2d: ./scripts/test.sh
#
# Works on a fresh Debian machine (as root): installs what the tests need,
# makes sure a Docker engine answers and starts a second one beside it (engine B, for the
# availability-zone tests), builds the test AMI images, then runs
#   fmt check -> clippy -> cargo test (EC2D_REQUIRE_DOCKER=1) -> real-client tests
# Set-up is idempotent and takes ~1 s when everything is already there.
#
# Usage: ./scripts/test.sh [STEP...]
#   STEP is any of: setup fmt clippy cargo-test clients   (default: all of them,
#   in that order; setup always runs first when any later step is asked for
#   unless EC2D_TEST_SKIP_SETUP=1).
#
# Environment:
#   EC2D_TEST_FAIL_FAST=1   stop at the first failing check (default: run all
#                           checks, then report every failure)
#   EC2D_TEST_SKIP_SETUP=1  skip package install / dockerd / image build
#   EC2D_TEST_DOCKERD_LOG   where a dockerd started by this script logs
#                           (default /var/log/ec2d-test-dockerd.log)
#   EC2D_TEST_ENGINE_B_TLS, EC2D_TEST_ENGINE_B_CERTS   exported with it: engine B's TLS
#                           listener (https://127.0.0.1:…) and the client certificates' directory
#   EC2D_TEST_ENGINE_B      exported to cargo test and pytest: the endpoint of the second
#                           engine tests/support/second-engine.sh starts in set-up
#                           (unix:///run/ec2d-engine-b/docker.sock; log
#                           /var/log/ec2d-test-dockerd-b.log). When it cannot start, its tests
#                           skip loudly, except with CI=true or EC2D_REQUIRE_SECOND_ENGINE=1,
#                           where the run fails.
#   EC2D_TEST_IMAGES        test images to build (default "busybox debian cloudinit awscli":
#                           the static busybox AMI, the debootstrap Debian+sshd AMI, the
#                           same with cloud-init, and that with the AWS CLI, built once
#                           (~8 min, from apt's Debian mirror and PyPI) then cached by tag;
#                           see tests/support/build-test-images.sh)
#   EC2D_TEST_IMAGE_FROM_SOURCE=1  the client step builds ec2d:local with the whole
#                           Dockerfile (release compile, ~25 min) instead of around the
#                           binary just built (tests/support/build-ec2d-image.sh)
#   PYTEST_ARGS             extra arguments for pytest (e.g. "-k restart -x")
#   CARGO_TEST_ARGS         extra arguments for cargo test, after --all-targets
#   EC2D_TEST_CARGO_TIMEOUT / EC2D_TEST_PYTEST_TIMEOUT
#                           seconds before a hung cargo test (1800) / pytest (1200)
#                           is stopped, so CI never hangs
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export DEBIAN_FRONTEND=noninteractive
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
PYTHON="${PYTHON:-python3}"
DOCKERD_LOG="${EC2D_TEST_DOCKERD_LOG:-/var/log/ec2d-test-dockerd.log}"
FAIL_FAST="${EC2D_TEST_FAIL_FAST:-0}"
TEST_IMAGES="${EC2D_TEST_IMAGES:-busybox debian cloudinit awscli}"
CARGO_TEST_TIMEOUT="${EC2D_TEST_CARGO_TIMEOUT:-1800}"
PYTEST_TIMEOUT="${EC2D_TEST_PYTEST_TIMEOUT:-1200}"
SDK_EXAMPLE_TARGET="$ROOT/examples/aws-sdk-rust/target"

ALL_STEPS=(setup fmt clippy cargo-test clients)
if [ "$#" -gt 0 ]; then
    STEPS=("$@")
    for s in "${STEPS[@]}"; do
        case " ${ALL_STEPS[*]} " in *" $s "*) ;; *)
            echo "unknown step '$s' (known: ${ALL_STEPS[*]})" >&2
            exit 2
            ;;
        esac
    done
    if [ "${EC2D_TEST_SKIP_SETUP:-0}" != 1 ]; then
        case " ${STEPS[*]} " in *" setup "*) ;; *) STEPS=(setup "${STEPS[@]}") ;; esac
    fi
else
    STEPS=("${ALL_STEPS[@]}")
    if [ "${EC2D_TEST_SKIP_SETUP:-0}" = 1 ]; then STEPS=("${ALL_STEPS[@]:1}"); fi
fi
want() { case " ${STEPS[*]} " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# ---------------------------------------------------------------- reporting
SCRIPT_START=$SECONDS
SUMMARY=()  # lines "STATUS  NAME  Ns"
FAILED=0
CURRENT_SETUP=""

banner() {
    printf '\n==================================================================\n'
    printf '=== %s\n' "$*"
    printf '==================================================================\n'
}
note() { printf '[test.sh] %s\n' "$*"; }
record() { # record STATUS NAME SECONDS
    SUMMARY+=("$(printf '%-5s %-48s %5ss' "$1" "$2" "$3")")
}
print_summary() {
    printf '\n==================================================================\n'
    printf '=== SUMMARY (total %ss)\n' "$((SECONDS - SCRIPT_START))"
    printf '==================================================================\n'
    local line
    for line in "${SUMMARY[@]}"; do printf '  %s\n' "$line"; done
    if [ "$FAILED" -eq 0 ]; then
        printf '=== RESULT: ALL PASSED\n'
    else
        printf '=== RESULT: %s STEP(S) FAILED\n' "$FAILED"
    fi
}
on_exit() {
    local rc=$?
    if [ "$rc" -ne 0 ] && [ "$FAILED" -eq 0 ]; then
        # died in set-up (set -e) rather than in a recorded check
        FAILED=1
        if [ -n "$CURRENT_SETUP" ]; then
            record FAIL "setup: $CURRENT_SETUP (rc=$rc)" "-"
            note "set-up step '$CURRENT_SETUP' failed (rc=$rc); the tests cannot run"
        else
            record FAIL "(aborted, rc=$rc)" "-"
        fi
    fi
    print_summary
    exit "$rc"
}
trap on_exit EXIT

# setup_step NAME FUNCTION: set-up steps run under set -e and abort the whole
# run when they fail (the EXIT trap records which one).
setup_step() {
    local t0=$SECONDS
    CURRENT_SETUP="$1"
    banner "setup: $1"
    "$2"
    record ok "setup: $1" "$((SECONDS - t0))"
    CURRENT_SETUP=""
}

# check NAME CMD...: runs a check; records failure and goes on (unless fail-fast).
check() {
    local name="$1" t0=$SECONDS rc=0
    shift
    banner "$name"
    note "+ $*"
    set +e
    "$@"
    rc=$?
    set -e
    if [ "$rc" -eq 0 ]; then
        record ok "$name" "$((SECONDS - t0))"
    else
        FAILED=$((FAILED + 1))
        record FAIL "$name (rc=$rc)" "$((SECONDS - t0))"
        note "FAILED: $name (rc=$rc)"
        if [ "$FAIL_FAST" = 1 ]; then exit "$rc"; fi
    fi
    return 0
}

# ---------------------------------------------------------------- set-up
APT_UPDATED=0
apt_install() { # apt_install PKG...: install (update package lists only once, only when needed)
    if [ "$APT_UPDATED" = 0 ]; then
        note "apt-get update"
        apt-get update -qq
        APT_UPDATED=1
    fi
    note "apt-get install $*"
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

have_deb() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

setup_packages() {
    local missing=()
    have_deb busybox-static || missing+=(busybox-static)
    # ssh/ssh-keygen: the client tests log in to instances (tests/clients/test_inside_instance.py)
    command -v ssh >/dev/null 2>&1 && command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
    # debootstrap: the Debian test images and the build stand-in of ec2d's own image
    have_deb debootstrap || missing+=(debootstrap)
    # ip: tests/support/second-engine.sh makes engine B's bridge
    command -v ip >/dev/null 2>&1 || missing+=(iproute2)
    # the compose smoke test (tests/clients/test_container_image.py): v2 plugin or v1
    docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
    # docker.io only when there is no docker CLI or no engine binary at all
    if ! command -v docker >/dev/null 2>&1 || ! command -v dockerd >/dev/null 2>&1; then
        if ! docker info >/dev/null 2>&1; then missing+=(docker.io); fi
    fi
    if [ "${#missing[@]}" -gt 0 ]; then
        command -v apt-get >/dev/null || { note "apt-get not found; install: ${missing[*]}"; return 1; }
        apt_install "${missing[@]}"
    else
        note "Debian packages present (busybox-static, openssh-client, docker, debootstrap if needed)"
    fi

    # Python: pytest, boto3, awscli, awscli-local, prometheus_client, ansible (same interpreter as the tests;
    # `ansible` is the full package: ansible-core plus the amazon.aws and ansible.posix
    # collections tests/clients/test_ansible.py runs)
    # One interpreter start: print the pip names whose module cannot be found.
    local pips=()
    read -r -a pips <<<"$("$PYTHON" - <<'PY'
import importlib.util
need = {"pytest": "pytest", "boto3": "boto3", "awscli": "awscli", "localstack_client": "awscli-local",
        "prometheus_client": "prometheus_client",
        "ansible_collections.amazon.aws": "ansible", "ansible_collections.ansible.posix": "ansible",
        "testcontainers.community.localstack": "testcontainers"}
def missing(mod):
    try:
        return importlib.util.find_spec(mod) is None
    except ModuleNotFoundError:  # a dotted name whose parent package is missing
        return True
print(" ".join(sorted({pkg for mod, pkg in need.items() if missing(mod)})))
PY
)"
    if ! awslocal_path >/dev/null 2>&1; then
        case " ${pips[*]} " in *" awscli-local "*) ;; *) pips+=(awscli-local) ;; esac
    fi
    if [ "${#pips[@]}" -gt 0 ]; then
        note "pip install ${pips[*]}"
        # (a Debian system python refuses plain installs: PEP 668, so retry past it)
        PIP_ROOT_USER_ACTION=ignore "$PYTHON" -m pip install -q --disable-pip-version-check "${pips[@]}" ||
            PIP_ROOT_USER_ACTION=ignore "$PYTHON" -m pip install -q --disable-pip-version-check \
                --break-system-packages "${pips[@]}"
        if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
    else
        note "python packages present (pytest, boto3, awscli, awscli-local, prometheus_client, ansible, testcontainers)"
    fi
    local versions
    versions="$("$PYTHON" -c 'import sys, pytest, boto3, awscli, localstack_client, ansible.release; print("python", sys.version.split()[0], "| pytest", pytest.__version__, "| boto3", boto3.__version__, "| awscli", awscli.__version__, "| ansible-core", ansible.release.__version__)')"
    note "$versions"
    awslocal_path >/dev/null || { note "awslocal script not found after install"; return 1; }
    note "awslocal: $(awslocal_path)"
}

# awslocal next to the interpreter's scripts, else on PATH
awslocal_path() {
    local d
    d="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null)" || d=""
    if [ -n "$d" ] && [ -x "$d/awslocal" ]; then echo "$d/awslocal"; return 0; fi
    command -v awslocal
}

setup_docker() {
    if docker info >/dev/null 2>&1; then
        note "docker engine answers: server $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?')"
        return 0
    fi
    command -v dockerd >/dev/null || { note "dockerd not found"; return 1; }
    note "docker engine not answering; starting dockerd (log: $DOCKERD_LOG)"
    mkdir -p "$(dirname "$DOCKERD_LOG")"
    # Own session, no stdin, survives this script (later runs reuse it).
    setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    local pid=$! i
    for i in $(seq 1 60); do
        if docker info >/dev/null 2>&1; then
            note "dockerd (pid $pid) answers after ${i}s: server $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?')"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            note "dockerd exited early; last lines of $DOCKERD_LOG:"
            tail -n 40 "$DOCKERD_LOG" || true
            return 1
        fi
        sleep 1
    done
    note "docker engine did not answer within 60 s; last lines of $DOCKERD_LOG:"
    tail -n 40 "$DOCKERD_LOG" || true
    return 1
}

# Engine B: a second dockerd on this machine (own socket, data root, bridge, address pools),
# so the tests can put availability zones on separate engines. Needs the default engine up.
ENGINE_B_SCRIPT="$ROOT/tests/support/second-engine.sh"
require_second_engine() { [ "${CI:-}" = true ] || [ "${EC2D_REQUIRE_SECOND_ENGINE:-0}" = 1 ]; }
setup_second_engine() {
    local out rc=0
    out="$(bash "$ENGINE_B_SCRIPT" start 2>&1)" || rc=$?
    printf '%s\n' "$out"
    local endpoint
    endpoint="$(printf '%s\n' "$out" | sed -n 's/^EC2D_TEST_ENGINE_B=//p' | tail -n 1)"
    if [ "$rc" -eq 0 ] && [ -n "$endpoint" ]; then
        export EC2D_TEST_ENGINE_B="$endpoint"
        note "EC2D_TEST_ENGINE_B=$EC2D_TEST_ENGINE_B (for cargo test and pytest)"
        local tls certs
        tls="$(printf '%s\n' "$out" | sed -n 's/^EC2D_TEST_ENGINE_B_TLS=//p' | tail -n 1)"
        certs="$(printf '%s\n' "$out" | sed -n 's/^EC2D_TEST_ENGINE_B_CERTS=//p' | tail -n 1)"
        if [ -n "$tls" ] && [ -n "$certs" ]; then
            export EC2D_TEST_ENGINE_B_TLS="$tls" EC2D_TEST_ENGINE_B_CERTS="$certs"
            note "EC2D_TEST_ENGINE_B_TLS=$tls (client certificates in $certs)"
        fi
        return 0
    fi
    if require_second_engine; then
        note "engine B did not start (rc=$rc) and CI=${CI:-} / EC2D_REQUIRE_SECOND_ENGINE=${EC2D_REQUIRE_SECOND_ENGINE:-}: failing"
        return 1
    fi
    unset EC2D_TEST_ENGINE_B
    note "WARNING: engine B did not start (rc=$rc); the tests that need it will SKIP"
}

setup_images() {
    # shellcheck disable=SC2086 # a list of image names
    bash "$ROOT/tests/support/build-test-images.sh" $TEST_IMAGES
}

# ec2d:local, the image the compose and Testcontainers client tests run: the Dockerfile's
# final stage around the binary just built (seconds), or with EC2D_TEST_IMAGE_FROM_SOURCE=1
# the whole Dockerfile, release compile included (~25 min on 2 busy cores; layers cached).
build_ec2d_image() {
    if [ "${EC2D_TEST_IMAGE_FROM_SOURCE:-0}" = 1 ]; then
        bash "$ROOT/tests/support/build-ec2d-image.sh"
    else
        bash "$ROOT/tests/support/build-ec2d-image.sh" --binary "$1"
    fi
}

setup_toolchain() {
    command -v cargo >/dev/null || { note "cargo not found"; return 1; }
    cargo --version
    cargo fmt --version >/dev/null 2>&1 || { note "rustfmt missing (rustup component add rustfmt)"; return 1; }
    cargo clippy --version >/dev/null 2>&1 || { note "clippy missing (rustup component add clippy)"; return 1; }
    note "$(cargo fmt --version); $(cargo clippy --version)"
}

# ---------------------------------------------------------------- checks
run_pytest_clients() {
    # `cargo test --all-targets` (the step before) already built target/debug/ec2d for the
    # integration tests; building it again with `cargo build` would recompile half the
    # dependency graph for other features. Only build when that step did not run.
    if ! want cargo-test || [ ! -x "$ROOT/target/debug/ec2d" ]; then
        note "+ cargo build --bin ec2d"
        cargo build --bin ec2d || return $?
    fi
    # The AWS SDK for Rust example (tests/clients/test_rust_sdk.py runs it) is its own cargo
    # workspace with its own lock file and target dir, so the SDK never enters ec2d's build.
    note "+ cargo build --locked (examples/aws-sdk-rust)"
    cargo build --locked --manifest-path "$ROOT/examples/aws-sdk-rust/Cargo.toml" \
        --target-dir "$SDK_EXAMPLE_TARGET" || return $?
    note "+ ec2d:local image"
    build_ec2d_image "${EC2D_BIN:-$ROOT/target/debug/ec2d}" || return $?
    local -a extra=()
    if [ -n "${PYTEST_ARGS:-}" ]; then read -r -a extra <<<"$PYTEST_ARGS"; fi
    # Make sure the aws/awslocal of this interpreter come first on PATH, then the scripts of
    # its user site (a `pip install --user ansible` puts ansible-playbook there, not on PATH).
    local scripts user_scripts
    scripts="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
    user_scripts="$("$PYTHON" -c 'import os, sysconfig; print(sysconfig.get_path("scripts", f"{os.name}_user"))')"
    local rc=0
    # SIGINT first: pytest then still tears down (stops ec2d, removes containers).
    PATH="$scripts:$PATH:$user_scripts" EC2D_BIN="${EC2D_BIN:-$ROOT/target/debug/ec2d}" \
        EC2D_SDK_EXAMPLE_BIN="$SDK_EXAMPLE_TARGET/debug/ec2d-aws-sdk-rust-example" \
        timeout --signal=INT --kill-after=60 "$PYTEST_TIMEOUT" \
        "$PYTHON" -m pytest tests/clients -q "${extra[@]}" || rc=$?
    # pytest exit 5 = no tests collected: that is a failure here.
    if [ "$rc" -eq 5 ]; then note "pytest collected no tests"; fi
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 130 ]; then note "pytest stopped after ${PYTEST_TIMEOUT}s"; fi
    return "$rc"
}

run_cargo_test() {
    local -a extra=()
    if [ -n "${CARGO_TEST_ARGS:-}" ]; then read -r -a extra <<<"$CARGO_TEST_ARGS"; fi
    local rc=0
    EC2D_REQUIRE_DOCKER=1 timeout --kill-after=60 "$CARGO_TEST_TIMEOUT" \
        cargo test --all-targets "${extra[@]}" || rc=$?
    if [ "$rc" -eq 124 ]; then note "cargo test stopped after ${CARGO_TEST_TIMEOUT}s"; fi
    return "$rc"
}

# ---------------------------------------------------------------- main
note "ec2d tests in $ROOT; steps: ${STEPS[*]}; CI=${CI:-}"

if want setup; then
    setup_step "packages (apt, pip)" setup_packages
    setup_step "docker engine" setup_docker
    setup_step "second docker engine (B)" setup_second_engine
    setup_step "test images" setup_images
    setup_step "rust toolchain" setup_toolchain
fi

# Set-up skipped: a running engine B is still handed to the tests.
if ! want setup && [ -z "${EC2D_TEST_ENGINE_B:-}" ] && bash "$ENGINE_B_SCRIPT" status >/dev/null 2>&1; then
    # `start` of a running engine only prints its endpoints (TLS included).
    setup_second_engine
fi

FMT_ARGS=(--check)
[ -t 1 ] || FMT_ARGS+=(--color never) # plain diff in CI logs
want fmt && check "cargo fmt --check" cargo fmt --all -- "${FMT_ARGS[@]}"
want clippy && check "cargo clippy -D warnings" cargo clippy --all-targets -- -D warnings
want cargo-test && check "cargo test (EC2D_REQUIRE_DOCKER=1)" run_cargo_test
want clients && check "client tests (pytest tests/clients)" run_pytest_clients

if [ "$FAILED" -ne 0 ]; then exit 1; fi
exit 0
