#!/usr/bin/env bash
# Shell functions the image-building scripts share; sourced, never run. Callers define
# log() and set RECIPE_LABEL and workdir before using them.

# The mirror this machine's apt already uses (the first main-archive URI in its sources), so
# images come from the same package registry as every other package.
apt_mirror() {
    local uri
    uri=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
        | grep -v -e security -e '\[' | sed -E 's/^URIs:[[:space:]]*//; s/^deb[[:space:]]+//' \
        | awk '{print $1}' | grep -E '/debian/?$' | head -n 1)
    printf '%s' "$uri"
}

# up_to_date TAG RECIPE: the tag exists and carries the current recipe label.
up_to_date() {
    local have
    have="$(docker image inspect --format "{{ index .Config.Labels \"$RECIPE_LABEL\" }}" "$1" 2>/dev/null)" || return 1
    [ "$have" = "$2" ]
}

# Unmount whatever debootstrap left mounted under DIR (proc, sys, devices when it is
# interrupted), deepest first, so that removing DIR never reaches into the host.
unmount_under() {
    local dir mnt
    dir="$(readlink -f "$1")"
    [ -r /proc/mounts ] || return 0
    while read -r mnt; do
        umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || log "could not unmount $mnt"
    done < <(awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts | sort -r)
}

# Removes $workdir (unmounting first) and forgets it: the EXIT trap's cleanup.
remove_workdir() {
    if [ -n "${workdir:-}" ] && [ -d "$workdir" ]; then
        unmount_under "$workdir"
        rm -rf --one-file-system "$workdir"
    fi
    workdir=""
}
