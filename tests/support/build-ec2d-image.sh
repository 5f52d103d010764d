#!/usr/bin/env bash
# Build ec2d's own container image (the repository's Dockerfile) where no registry is reachable.
#
# The Dockerfile builds FROM two ordinary base images (rust:1-bookworm and
# gcr.io/distroless/cc-debian12) that users pull; nothing can be pulled here, so this
# script makes local stand-ins for both, cached by tag plus a recipe label, and passes
# them as build arguments:
#
#   ec2d-build/rust:local     debootstrap --variant=minbase of bookworm + gcc, libc6-dev,
#                             ca-certificates, with the host's Rust toolchain (cargo, rustc,
#                             the std library; no docs) at /usr/local/rust and
#                             /usr/local/cargo/bin on PATH, as the rust image has it, and
#                             the host's CA bundle (a TLS-inspecting proxy's CA included).
#                             ~1-2 min on a cold cache.
#   ec2d-build/runtime:local  only what the binary needs, as distroless/cc has it: the glibc
#                             and libgcc libraries `ldd` names for a dynamically linked Rust
#                             program, the CA bundle, /etc/passwd and /etc/group, /tmp.
#
# then `docker build -t ec2d:local .` (the release compile happens inside the build stage;
# the dependency layer is cached by the engine, so a rebuild after a source change only
# compiles ec2d itself).
#
# With --binary PATH, the build stage is skipped: the Dockerfile's final stage (its lines
# after the last FROM, with the binary copied from PATH instead of the build stage) is built
# on the runtime stand-in, in seconds. CI uses it with the binary `cargo test` just built,
# since the release compile in the build stage takes ~25 min on 2 busy cores.
#
# Usage: tests/support/build-ec2d-image.sh [--force] [--bases-only] [--binary PATH]
# Env:   EC2D_IMAGE (tag to build, default ec2d:local), EC2D_BUILD_RUST_IMAGE,
#        EC2D_BUILD_RUNTIME_IMAGE (stand-in tags), EC2D_TEST_DEBIAN_MIRROR,
#        RUST_TOOLCHAIN_DIR (default: the active rustup toolchain's sysroot).
set -euo pipefail

REPO="$(cd "$(dirname "$0")/../.." && pwd)"
IMAGE="${EC2D_IMAGE:-ec2d:local}"
RUST_TAG="${EC2D_BUILD_RUST_IMAGE:-ec2d-build/rust:local}"
RUNTIME_TAG="${EC2D_BUILD_RUNTIME_IMAGE:-ec2d-build/runtime:local}"
SUITE=bookworm
# Bump when a recipe below changes, so cached stand-ins get rebuilt.
RUST_RECIPE=2
RUNTIME_RECIPE=1
RECIPE_LABEL="org.ec2d.build.recipe"

log() { printf '[build-ec2d-image] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

force=0
bases_only=0
binary=""
while [ "$#" -gt 0 ]; do
    case "$1" in
        --force | -f) force=1 ;;
        --bases-only) bases_only=1 ;;
        --binary) shift; binary="${1:-}"; [ -n "$binary" ] || die "--binary needs a path" ;;
        -h | --help) sed -n '2,31p' "$0"; exit 0 ;;
        *) die "unknown argument: $1" ;;
    esac
    shift
done

command -v docker >/dev/null || die "docker CLI not found"
docker info >/dev/null 2>&1 || die "docker engine is not answering (docker info failed)"

# shellcheck source=tests/support/lib.sh
. "$(dirname "$0")/lib.sh"
MIRROR="${EC2D_TEST_DEBIAN_MIRROR:-$(apt_mirror || true)}"

workdir=""
cleanup() { remove_workdir; }
trap cleanup EXIT

build_rust() {
    if [ "$force" = 0 ] && up_to_date "$RUST_TAG" "$RUST_RECIPE"; then
        log "$RUST_TAG is up to date (cached)"
        return 0
    fi
    command -v debootstrap >/dev/null || die "debootstrap not found (apt-get install debootstrap)"
    local toolchain="${RUST_TOOLCHAIN_DIR:-$(rustc --print sysroot)}"
    [ -x "$toolchain/bin/cargo" ] && [ -x "$toolchain/bin/rustc" ] || die "no cargo/rustc in $toolchain"
    local t0=$SECONDS
    workdir="$(mktemp -d /tmp/ec2d-build-rust.XXXXXX)"
    local root="$workdir/rootfs"
    log "building $RUST_TAG: debootstrap minbase $SUITE + gcc libc6-dev ca-certificates, toolchain from $toolchain"
    debootstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates \
        "$SUITE" "$root" ${MIRROR:+"$MIRROR"} >"$workdir/debootstrap.log" 2>&1 || {
        tail -n 30 "$workdir/debootstrap.log" >&2
        die "debootstrap failed"
    }
    unmount_under "$root"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
        "$root"/usr/share/man/* "$root"/debootstrap
    : >"$root/etc/resolv.conf"
    # The host's trust store, not Debian's alone: where crates.io is reached through a
    # TLS-inspecting proxy, the host trusts its CA and cargo in the build stage must too.
    cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
    # Only what compiling needs: cargo, rustc and the host target's std (no docs, clippy, rustfmt).
    local dest="$root/usr/local/rust"
    mkdir -p "$dest/bin" "$dest/lib/rustlib" "$root/usr/local/cargo/bin"
    cp -a "$toolchain/bin/cargo" "$toolchain/bin/rustc" "$dest/bin/"
    cp -a "$toolchain"/lib/*.so* "$dest/lib/"
    cp -a "$toolchain/lib/rustlib/x86_64-unknown-linux-gnu" "$dest/lib/rustlib/"
    ln -s ../../rust/bin/cargo "$root/usr/local/cargo/bin/cargo"
    ln -s ../../rust/bin/rustc "$root/usr/local/cargo/bin/rustc"
    tar --numeric-owner -C "$root" -cf - . |
        docker import \
            --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENV CARGO_HOME=/usr/local/cargo' \
            --change 'CMD ["/bin/bash"]' \
            --change "LABEL $RECIPE_LABEL=$RUST_RECIPE" \
            --message "ec2d build stand-in for rust:1-bookworm" - "$RUST_TAG" >/dev/null
    cleanup
    docker run --rm --network none "$RUST_TAG" cargo --version >/dev/null || die "cargo does not run in $RUST_TAG"
    log "built $RUST_TAG in $((SECONDS - t0))s"
}

build_runtime() {
    if [ "$force" = 0 ] && up_to_date "$RUNTIME_TAG" "$RUNTIME_RECIPE"; then
        log "$RUNTIME_TAG is up to date (cached)"
        return 0
    fi
    local t0=$SECONDS
    workdir="$(mktemp -d /tmp/ec2d-build-runtime.XXXXXX)"
    local root="$workdir/rootfs"
    mkdir -p "$root"/{etc/ssl/certs,tmp,var/lib,usr/lib/x86_64-linux-gnu,lib64,usr/local/bin}
    chmod 1777 "$root/tmp"
    # distroless/cc's set: glibc, libgcc_s (Rust's unwinder), nothing else. Taken from the
    # host, which is the same Debian release as the build stand-in.
    local lib
    for lib in libc.so.6 libm.so.6 libgcc_s.so.1 libdl.so.2 libpthread.so.0 librt.so.1; do
        cp -L "/lib/x86_64-linux-gnu/$lib" "$root/usr/lib/x86_64-linux-gnu/$lib"
    done
    cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/ld-linux-x86-64.so.2"
    ln -s usr/lib "$root/lib"
    cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
    tar --numeric-owner -C "$root" -cf - . |
        docker import \
            --change "LABEL $RECIPE_LABEL=$RUNTIME_RECIPE" \
            --message "ec2d build stand-in for gcr.io/distroless/cc-debian12" - "$RUNTIME_TAG" >/dev/null
    cleanup
    log "built $RUNTIME_TAG in $((SECONDS - t0))s"
}

if [ -n "$binary" ]; then
    [ -x "$binary" ] || die "no executable at $binary"
    build_runtime
    t0=$SECONDS
    workdir="$(mktemp -d /tmp/ec2d-image-context.XXXXXX)"
    cp "$binary" "$workdir/ec2d"
    # The final stage as the Dockerfile has it, so the image is configured the same way.
    {
        echo "FROM $RUNTIME_TAG"
        awk '/^FROM /{n++} {lines[NR]=$0; from[NR]=n} END {for (i=1;i<=NR;i++) if (from[i]==n && lines[i] !~ /^FROM /) print lines[i]}' \
            "$REPO/Dockerfile" | sed 's|^COPY --from=build /ec2d |COPY ec2d |'
    } >"$workdir/Dockerfile"
    grep -q '^COPY ec2d ' "$workdir/Dockerfile" || die "the Dockerfile's final stage no longer copies /ec2d from the build stage"
    docker build -q -t "$IMAGE" "$workdir" >/dev/null || die "docker build of the final stage failed"
    cleanup
    size="$(docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.1f MB", $1/1e6}')"
    log "built $IMAGE from $binary in $((SECONDS - t0))s ($size)"
    exit 0
fi

build_rust
build_runtime
[ "$bases_only" = 1 ] && exit 0

t0=$SECONDS
log "docker build -t $IMAGE (release compile inside the build stage)"
build_log="$(mktemp /tmp/ec2d-image-build.XXXXXX.log)"
# --force-rm: a failed compile leaves no intermediate container behind (the legacy builder
# keeps them otherwise, each holding a half-built target directory).
docker build --force-rm \
    --build-arg "RUST_IMAGE=$RUST_TAG" \
    --build-arg "RUNTIME_IMAGE=$RUNTIME_TAG" \
    -t "$IMAGE" "$REPO" >"$build_log" 2>&1 || {
    tail -n 40 "$build_log" >&2
    die "docker build failed (whole log: $build_log)"
}
rm -f "$build_log"
size="$(docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.1f MB", $1/1e6}')"
log "built $IMAGE in $((SECONDS - t0))s ($size)"
