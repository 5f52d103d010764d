#!/usr/bin/env bash
# Build the Docker images that ec2d's tests use as AMIs.
#
# No container registry is reachable, so nothing can be pulled: every image is
# made here from Debian packages and `docker import`ed. Images are cached by
# tag plus a recipe-version label; an image is rebuilt only when it is missing,
# its recipe version changed, or --force is given.
#
# Usage: tests/support/build-test-images.sh [--force] [busybox] [debian] [cloudinit] [awscli]
#   (no image names = the default set: busybox debian cloudinit awscli)
#
#   busybox  ec2d-test/busybox:latest   static busybox root fs, CMD ["/bin/sh"]
#   debian   ec2d-test/debian-ssh:latest  debootstrap --variant=minbase of the
#            host's Debian suite (bookworm) + openssh-server, procps, iproute2,
#            python3-minimal; CMD ["/bin/bash"]. No SSH host keys are baked in:
#            ec2d's boot script runs `ssh-keygen -A` per instance. Needs the
#            Debian mirror apt is configured with; ~1-2 min on a cold cache.
#   cloudinit ec2d-test/debian-cloudinit:latest  the debian recipe + Debian's
#            cloud-init package, configured as an EC2 AMI is (datasource_list
#            [Ec2, None]); CMD ["/bin/bash"]. ec2d's boot script starts cloud-init's
#            stages itself (no systemd in the container) and leaves the user data
#            to it; cloud-init reads it from ec2d's IMDS. ~2-3 min on a cold cache.
#   awscli   ec2d-test/debian-awscli:latest  the cloudinit image + the AWS CLI (v1, from PyPI's
#            wheels, installed by pip in a `docker build` step without network) at
#            /usr/local/bin/aws: an instance runs `aws ec2 ...` with nothing configured, as on
#            EC2 (credentials from IMDS, the endpoint from AWS_ENDPOINT_URL, which Debian's own
#            awscli 2.9 predates). Builds the cloudinit image first; ~30 s on top of it.
#
# Needs: docker CLI + a running engine; busybox-static (/bin/busybox) for the
# busybox image; debootstrap for the debian image. scripts/test.sh installs them.
#
# Env: EC2D_TEST_BUSYBOX_IMAGE, EC2D_TEST_DEBIAN_IMAGE (tags),
#      EC2D_TEST_CLOUDINIT_IMAGE, EC2D_TEST_AWSCLI_IMAGE, EC2D_TEST_DEBIAN_SUITE (default: the host's VERSION_CODENAME if it is a
#      Debian release, else bookworm), EC2D_TEST_DEBIAN_MIRROR.
set -euo pipefail

BUSYBOX_TAG="${EC2D_TEST_BUSYBOX_IMAGE:-ec2d-test/busybox:latest}"
DEBIAN_TAG="${EC2D_TEST_DEBIAN_IMAGE:-ec2d-test/debian-ssh:latest}"
CLOUDINIT_TAG="${EC2D_TEST_CLOUDINIT_IMAGE:-ec2d-test/debian-cloudinit:latest}"
AWSCLI_TAG="${EC2D_TEST_AWSCLI_IMAGE:-ec2d-test/debian-awscli:latest}"
# The host's suite when the host is a Debian release debootstrap knows, else bookworm.
host_suite() {
    local id="" codename=""
    if [ -r /etc/os-release ]; then
        # shellcheck source=/dev/null
        id="$(. /etc/os-release && echo "${ID:-}")"
        # shellcheck source=/dev/null
        codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
    fi
    if [ "$id" = debian ] && [ -n "$codename" ] && [ -e "/usr/share/debootstrap/scripts/$codename" ]; then
        echo "$codename"
    else
        echo bookworm
    fi
}
DEBIAN_SUITE="${EC2D_TEST_DEBIAN_SUITE:-$(host_suite)}"
DEBIAN_PACKAGES="openssh-server,procps,iproute2,python3-minimal"
# debootstrap resolves no virtual packages: python3-cffi-backend provides the
# python3-cffi-backend-api-* that python3-cryptography (oauthlib, for cloud-init) needs.
CLOUDINIT_PACKAGES="$DEBIAN_PACKAGES,cloud-init,python3-cffi-backend"
# shellcheck source=tests/support/lib.sh
. "$(dirname "$0")/lib.sh"
DEBIAN_MIRROR="${EC2D_TEST_DEBIAN_MIRROR:-$(apt_mirror)}"
# Bump when a recipe below changes, so cached images get rebuilt.
BUSYBOX_RECIPE=1
DEBIAN_RECIPE=2
CLOUDINIT_RECIPE=2
AWSCLI_RECIPE=1
RECIPE_LABEL="org.ec2d.test.recipe"

log() { printf '[build-test-images] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

force=0
images=()
for arg in "$@"; do
    case "$arg" in
        --force | -f) force=1 ;;
        busybox | debian | cloudinit | awscli) images+=("$arg") ;;
        -h | --help) sed -n '2,36p' "$0"; exit 0 ;;
        *) die "unknown argument: $arg" ;;
    esac
done
[ "${#images[@]}" -gt 0 ] || images=(busybox debian cloudinit awscli)

command -v docker >/dev/null || die "docker CLI not found"
docker info >/dev/null 2>&1 || die "docker engine is not answering (docker info failed)"

workdir=""
cleanup() { remove_workdir; }
trap cleanup EXIT
trap 'exit 130' INT TERM

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

# A Debian AMI with an SSH server: what the "ssh into the instance" tests log in to.
build_debian() {
    build_debootstrap "$DEBIAN_TAG" "$DEBIAN_RECIPE" "$DEBIAN_PACKAGES" debian-ssh
}

# The same Debian with cloud-init, set up as an EC2 AMI is: the Ec2 datasource only (no
# ds-identify guessing in a container without DMI data), found through ec2d's IMDS.
build_cloudinit() {
    build_debootstrap "$CLOUDINIT_TAG" "$CLOUDINIT_RECIPE" "$CLOUDINIT_PACKAGES" debian-cloudinit
}

# Debian's cloud-init, configured for a container that is an EC2 instance.
configure_cloudinit() {
    local root="$1"
    mkdir -p "$root/etc/cloud/cloud.cfg.d"
    cat >"$root/etc/cloud/cloud.cfg.d/90-ec2d.cfg" <<'EOF'
# ec2d test AMI: an EC2 instance whose metadata service is ec2d's IMDS.
datasource_list: [ Ec2, None ]
datasource:
  Ec2:
    strict_id: false
    metadata_urls: [ "http://169.254.169.254" ]
    max_wait: 30
    timeout: 5
# No network configuration from the datasource: Docker owns the container's interfaces.
network: {config: disabled}
# ec2d's instances are logged in to as root with the key pair's key (its boot script puts it
# there): cloud-init must neither lock root out nor replace the host keys sshd already uses.
disable_root: false
ssh_deletekeys: false
# Debian's default locale (en_US.UTF-8) is not generated in a minbase image: its module
# would fail the config stage. C.UTF-8 is always there.
locale: C.UTF-8
EOF
    # cloud-init's per-instance state must start empty in every instance.
    rm -rf "$root/var/lib/cloud"/* "$root"/var/log/cloud-init*.log
}

# build_debootstrap TAG RECIPE PACKAGES LABEL: a minbase Debian with PACKAGES as image TAG.
build_debootstrap() {
    local tag="$1" recipe="$2" packages="$3" label="$4"
    if [ "$force" = 0 ] && up_to_date "$tag" "$recipe"; then
        log "$tag is up to date (cached)"
        return 0
    fi
    command -v debootstrap >/dev/null || die "debootstrap not found (apt-get install debootstrap)"
    local t0=$SECONDS
    log "building $tag: debootstrap --variant=minbase --include=$packages $DEBIAN_SUITE from $DEBIAN_MIRROR"
    workdir="$(mktemp -d /tmp/ec2d-debian-rootfs.XXXXXX)"
    local root="$workdir/rootfs"
    debootstrap --variant=minbase --include="$packages" \
        "$DEBIAN_SUITE" "$root" ${DEBIAN_MIRROR:+"$DEBIAN_MIRROR"} >"$workdir/debootstrap.log" 2>&1 || {
        tail -n 30 "$workdir/debootstrap.log" >&2
        if [ -f "$root/debootstrap/debootstrap.log" ]; then tail -n 30 "$root/debootstrap/debootstrap.log" >&2; fi
        die "debootstrap failed"
    }
    log "debootstrap done after $((SECONDS - t0))s"
    unmount_under "$root"
    # Smaller image; nothing in it needs docs or the package lists.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* \
        "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*.log \
        "$root"/debootstrap
    # Every instance must get its own host keys (ec2d's boot script runs `ssh-keygen -A`),
    # not ones baked into the image and shared by all of them.
    rm -f "$root"/etc/ssh/ssh_host_*
    # No init system runs sshd's tmpfiles; the boot script creates /run/sshd, but be safe.
    mkdir -p "$root/run/sshd"
    echo 'ec2d-test' >"$root/etc/hostname"
    : >"$root/etc/resolv.conf"
    local check='test -x /usr/sbin/sshd && command -v ssh-keygen >/dev/null && ps -p 1 -o comm= >/dev/null && ip -V >/dev/null && python3 -c "print(\"ok\")"'
    case ",$packages," in
        *,cloud-init,*)
            configure_cloudinit "$root"
            check="test -x /usr/bin/cloud-init && $check"
            ;;
    esac
    tar --numeric-owner -C "$root" -cf - . |
        docker import \
            --change 'CMD ["/bin/bash"]' \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change "LABEL $RECIPE_LABEL=$recipe" \
            --change "LABEL org.ec2d.test.image=$label" \
            --change "LABEL org.ec2d.test.suite=$DEBIAN_SUITE" \
            --message "ec2d test image: debian $DEBIAN_SUITE minbase + $packages" \
            - "$tag" >/dev/null
    remove_workdir
    # Smoke test: sshd, ssh-keygen and the extras (ps, ip, python3, cloud-init) are there.
    local out
    out="$(docker run --rm --network none "$tag" sh -c "$check" 2>&1)" ||
        die "smoke test of $tag failed: $out"
    case "$out" in *ok) ;; *) die "smoke test of $tag printed: $out" ;; esac
    log "built $tag in $((SECONDS - t0))s ($(docker image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
}

# The AWS CLI an SDK user on EC2 would have, on the cloud-init image. Its wheels come from
# PyPI through the host's pip (the package registry this machine reaches), for the image's
# Python and architecture; the image's own pip step runs without network.
build_awscli() {
    if [ "$force" = 0 ] && up_to_date "$AWSCLI_TAG" "$AWSCLI_RECIPE.$CLOUDINIT_RECIPE"; then
        log "$AWSCLI_TAG is up to date (cached)"
        return 0
    fi
    build_cloudinit
    local t0=$SECONDS pyver arch
    pyver="$(docker run --rm --network none "$CLOUDINIT_TAG" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')" ||
        die "no python3 in $CLOUDINIT_TAG"
    arch="$(docker image inspect --format '{{.Architecture}}' "$CLOUDINIT_TAG")"
    case "$arch" in amd64) arch=x86_64 ;; arm64) arch=aarch64 ;; esac
    workdir="$(mktemp -d /tmp/ec2d-awscli.XXXXXX)"
    log "building $AWSCLI_TAG: awscli wheels for python $pyver ($arch) from PyPI"
    python3 -m pip download -q --disable-pip-version-check --dest "$workdir/wheels" \
        --only-binary=:all: --python-version "$pyver" --implementation cp \
        --platform "manylinux2014_$arch" awscli pip >"$workdir/pip.log" 2>&1 || {
        tail -n 20 "$workdir/pip.log" >&2
        die "pip download awscli failed"
    }
    printf '%s\n' '#!/bin/sh' '# The AWS CLI v1 under /opt/awscli (ec2d test image).' \
        'PYTHONPATH="/opt/awscli${PYTHONPATH:+:$PYTHONPATH}" exec python3 -m awscli "$@"' >"$workdir/aws"
    printf '%s\n' \
        "FROM $CLOUDINIT_TAG" \
        'COPY wheels /tmp/wheels' \
        'COPY aws /usr/local/bin/aws' \
        'RUN set -e; pip=$(echo /tmp/wheels/pip-*.whl); python3 "$pip/pip" install -q --disable-pip-version-check --no-index --find-links /tmp/wheels --target /opt/awscli awscli; rm -rf /tmp/wheels; chmod 0755 /usr/local/bin/aws' \
        "LABEL $RECIPE_LABEL=$AWSCLI_RECIPE.$CLOUDINIT_RECIPE org.ec2d.test.image=debian-awscli" \
        >"$workdir/Dockerfile"
    docker build -q --force-rm --network none -t "$AWSCLI_TAG" "$workdir" >"$workdir/build.log" 2>&1 || {
        tail -n 30 "$workdir/build.log" >&2
        die "docker build $AWSCLI_TAG failed"
    }
    remove_workdir
    local out
    out="$(docker run --rm --network none "$AWSCLI_TAG" aws --version 2>&1)" ||
        die "smoke test of $AWSCLI_TAG failed: $out"
    case "$out" in aws-cli/1.*) ;; *) die "smoke test of $AWSCLI_TAG printed: $out" ;; esac
    log "built $AWSCLI_TAG in $((SECONDS - t0))s (${out%% *})"
}

for img in "${images[@]}"; do
    "build_$img"
done
