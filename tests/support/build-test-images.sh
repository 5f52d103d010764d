#!/usr/bin/env bash
# Build the Docker images that ec2d's tests use as AMIs.
#
# No container registry is reachable, so nothing can be pulled: every image is
# made here from Debian packages and `docker import`ed. Images are cached by
# tag plus a recipe-version label; an image is rebuilt only when it is missing,
# its recipe version changed, or --force is given.
#
# Usage: tests/support/build-test-images.sh [--force] [busybox] [debian]
#   (no image names = the default set, currently: busybox)
#
#   busybox  ec2d-test/busybox:latest   static busybox root fs, CMD ["/bin/sh"]
#   debian   ec2d-test/debian:bookworm  debootstrap minbase (hook for later; not
#            in the default set; needs network to Debian's mirror, ~2-4 min)
#
# Needs: docker CLI + a running engine; busybox-static (/bin/busybox) for the
# busybox image; debootstrap for the debian image. scripts/test.sh installs them.
set -euo pipefail

BUSYBOX_TAG="${EC2D_TEST_BUSYBOX_IMAGE:-ec2d-test/busybox:latest}"
DEBIAN_TAG="${EC2D_TEST_DEBIAN_IMAGE:-ec2d-test/debian:bookworm}"
DEBIAN_SUITE="${EC2D_TEST_DEBIAN_SUITE:-bookworm}"
DEBIAN_MIRROR="${EC2D_TEST_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# Bump when a recipe below changes, so cached images get rebuilt.
BUSYBOX_RECIPE=1
DEBIAN_RECIPE=1
RECIPE_LABEL="org.ec2d.test.recipe"

log() { printf '[build-test-images] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

force=0
images=()
for arg in "$@"; do
    case "$arg" in
        --force | -f) force=1 ;;
        busybox | debian) images+=("$arg") ;;
        -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
        *) die "unknown argument: $arg" ;;
    esac
done
[ "${#images[@]}" -gt 0 ] || images=(busybox)

command -v docker >/dev/null || die "docker CLI not found"
docker info >/dev/null 2>&1 || die "docker engine is not answering (docker info failed)"

# up_to_date TAG RECIPE: the tag exists and carries the current recipe label.
up_to_date() {
    local have
    have="$(docker image inspect --format "{{ index .Config.Labels \"$RECIPE_LABEL\" }}" "$1" 2>/dev/null)" || return 1
    [ "$have" = "$2" ]
}

workdir=""
cleanup() { if [ -n "$workdir" ]; then rm -rf "$workdir"; fi; }
trap cleanup EXIT

build_busybox() {
    if [ "$force" = 0 ] && up_to_date "$BUSYBOX_TAG" "$BUSYBOX_RECIPE"; then
        log "$BUSYBOX_TAG is up to date (cached)"
        return 0
    fi
    local bb=""
    for cand in /bin/busybox /usr/bin/busybox; do
        # Must be the static build: the image has no libc.
        if [ -x "$cand" ] && ! ldd "$cand" >/dev/null 2>&1; then bb="$cand"; break; fi
    done
    [ -n "$bb" ] || die "static busybox not found (apt-get install busybox-static)"
    log "building $BUSYBOX_TAG from $bb ($("$bb" 2>&1 | head -n1))"

    workdir="$(mktemp -d /tmp/ec2d-busybox-rootfs.XXXXXX)"
    local root="$workdir/rootfs"
    mkdir -p "$root"/{bin,etc,root,tmp,var/run,var/log,var/tmp,home,proc,sys,dev,run,mnt,opt,srv,usr/local/bin}
    # One bin/ for everything: sbin, usr/bin, usr/sbin point at it.
    ln -s bin "$root/sbin"
    ln -s ../bin "$root/usr/bin"
    ln -s ../bin "$root/usr/sbin"
    cp "$bb" "$root/bin/busybox"
    chmod 0755 "$root/bin/busybox"
    # Same result as `busybox --install -s` run inside the image, but done from
    # outside with relative links: every applet -> bin/busybox.
    local applet n=0
    while IFS= read -r applet; do
        if [ -z "$applet" ] || [ "$applet" = busybox ]; then continue; fi
        ln -sf busybox "$root/bin/$applet"
        n=$((n + 1))
    done < <("$bb" --list)
    [ -e "$root/bin/sh" ] || die "busybox has no sh applet"
    [ -e "$root/bin/sleep" ] || die "busybox has no sleep applet"

    chmod 1777 "$root/tmp" "$root/var/tmp"
    chmod 0700 "$root/root"
    cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
EOF
    cat >"$root/etc/group" <<'EOF'
root:x:0:
daemon:x:1:
nogroup:x:65534:
EOF
    cat >"$root/etc/shadow" <<'EOF'
root:*:19000:0:99999:7:::
daemon:*:19000:0:99999:7:::
nobody:*:19000:0:99999:7:::
EOF
    chmod 0640 "$root/etc/shadow"
    echo 'ec2d-test' >"$root/etc/hostname"
    printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
    : >"$root/etc/resolv.conf"
    printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
    printf 'NAME="ec2d test busybox"\nID=busybox\n' >"$root/etc/os-release"

    tar --numeric-owner --owner=0 --group=0 -C "$root" -cf - . |
        docker import \
            --change 'CMD ["/bin/sh"]' \
            --change 'ENV PATH=/usr/local/bin:/bin' \
            --change 'WORKDIR /root' \
            --change "LABEL $RECIPE_LABEL=$BUSYBOX_RECIPE" \
            --change 'LABEL org.ec2d.test.image=busybox' \
            --message "ec2d test image: static busybox ($n applets)" \
            - "$BUSYBOX_TAG" >/dev/null
    rm -rf "$workdir"
    workdir=""
    # Smoke test: the image must run a shell and the basics that tests use.
    local out
    out="$(docker run --rm --network none "$BUSYBOX_TAG" sh -c 'id -u; ls /bin/sleep; echo ok' 2>&1)" ||
        die "smoke test of $BUSYBOX_TAG failed: $out"
    case "$out" in *ok) ;; *) die "smoke test of $BUSYBOX_TAG printed: $out" ;; esac
    log "built $BUSYBOX_TAG ($n applets)"
}

# Hook for a fuller Debian AMI (not in the default set yet).
build_debian() {
    if [ "$force" = 0 ] && up_to_date "$DEBIAN_TAG" "$DEBIAN_RECIPE"; then
        log "$DEBIAN_TAG is up to date (cached)"
        return 0
    fi
    command -v debootstrap >/dev/null || die "debootstrap not found (apt-get install debootstrap)"
    log "building $DEBIAN_TAG with debootstrap $DEBIAN_SUITE from $DEBIAN_MIRROR"
    workdir="$(mktemp -d /tmp/ec2d-debian-rootfs.XXXXXX)"
    local root="$workdir/rootfs"
    debootstrap --variant=minbase "$DEBIAN_SUITE" "$root" "$DEBIAN_MIRROR" >"$workdir/debootstrap.log" 2>&1 || {
        tail -n 30 "$workdir/debootstrap.log" >&2
        die "debootstrap failed"
    }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar --numeric-owner -C "$root" -cf - . |
        docker import \
            --change 'CMD ["/bin/bash"]' \
            --change "LABEL $RECIPE_LABEL=$DEBIAN_RECIPE" \
            --change 'LABEL org.ec2d.test.image=debian' \
            --message "ec2d test image: debian $DEBIAN_SUITE minbase" \
            - "$DEBIAN_TAG" >/dev/null
    rm -rf "$workdir"
    workdir=""
    docker run --rm --network none "$DEBIAN_TAG" true || die "smoke test of $DEBIAN_TAG failed"
    log "built $DEBIAN_TAG"
}

for img in "${images[@]}"; do
    "build_$img"
done
