#!/usr/bin/env bash
# A Debian userspace (its own Python and BCC) in a directory, to run
# ebpftop's kernel tests with it on the running kernel.
#
#   userspace.sh build RELEASE DIR    debootstrap RELEASE into DIR (once: an
#                                     existing DIR is kept; a half-built one
#                                     is started again)
#   userspace.sh run DIR SRC CMD...   run CMD inside DIR as root, with /proc,
#                                     /sys and /dev bound, the checkout SRC at
#                                     /src (read-only), and that release's
#                                     kernel headers linked for BCC
set -euo pipefail

MIRROR=${EBPFTOP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
ARCH=$(dpkg --print-architecture)
# What ebpftop needs there, and what its kernel tests need (gcc builds the
# workload; the venv gets pytest).
PACKAGES="python3,python3-venv,python3-pip,python3-bpfcc,libbpfcc,bpftool,linux-headers-$ARCH,gcc,libc6-dev,ca-certificates"

build() {
    local release=$1 dir=$2
    if [ -f "$dir/.ebpftop-userspace-ready" ] && [ "$(cat "$dir/.ebpftop-userspace-ready")" = "$PACKAGES" ]; then
        echo "userspace: $release ready at $dir"
        return 0
    fi
    if [ -f "$dir/.ebpftop-userspace-ready" ]; then  # built with fewer packages: add the rest
        echo "userspace: adding packages to $release"
        cp /etc/resolv.conf "$dir/etc/resolv.conf" 2>/dev/null || true
        chroot "$dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
            sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends $(echo "$PACKAGES" | tr , ' ')" \
            > "$dir.apt.log" 2>&1 || { tail -n 20 "$dir.apt.log" >&2; echo "userspace: error: apt-get in $release failed" >&2; exit 1; }
        rm -f "$dir.apt.log"
        echo "$PACKAGES" > "$dir/.ebpftop-userspace-ready"
        echo "userspace: $release ready at $dir"
        return 0
    fi
    local tmp="$dir.partial"
    mkdir -p "$(dirname "$dir")"
    if [ ! -f "$tmp/.debootstrap-done" ]; then
        rm -rf "$tmp"
        echo "userspace: debootstrap $release into $dir (a few minutes, once)"
        debootstrap --variant=minbase --include="$PACKAGES" "$release" "$tmp" "$MIRROR" > "$tmp.log" 2>&1 \
            || { tail -n 20 "$tmp.log" >&2; echo "userspace: error: debootstrap $release failed (log: $tmp.log)" >&2; exit 1; }
        touch "$tmp/.debootstrap-done"
    fi
    # pytest and the test dependencies, in a venv that sees that release's
    # BCC.  pip there trusts what this host trusts (a proxy's CA, say).
    [ -x "$tmp/opt/ebpftop-venv/bin/python" ] || chroot "$tmp" /usr/bin/python3 -m venv --system-site-packages /opt/ebpftop-venv
    cp /etc/resolv.conf "$tmp/etc/resolv.conf" 2>/dev/null || true
    cp /etc/ssl/certs/ca-certificates.crt "$tmp/etc/ebpftop-host-ca.crt"
    chroot "$tmp" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        /opt/ebpftop-venv/bin/python -m pip install -q --disable-pip-version-check --cert /etc/ebpftop-host-ca.crt \
        "pytest>=7" "textual>=8.2,<9" "prometheus-client>=0.17" >> "$tmp.log" 2>&1 \
        || { tail -n 20 "$tmp.log" >&2; echo "userspace: error: pip in $release failed (log: $tmp.log)" >&2; exit 1; }
    rm -rf "$tmp/var/cache/apt/archives"/*.deb
    echo "$PACKAGES" > "$tmp/.ebpftop-userspace-ready"
    rm -rf "$dir"
    mv "$tmp" "$dir"
    rm -f "$tmp.log"
    echo "userspace: $release ready at $dir"
}

run() {
    local dir=$1 src=$2
    shift 2
    local krel
    krel=$(uname -r)
    MOUNTS=()
    cleanup() {
        local i
        for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
            umount -l "${MOUNTS[$i]}" 2>/dev/null || true
        done
    }
    trap cleanup EXIT
    bind() {  # bind $1 at $dir$2
        mkdir -p "$dir$2"
        mount --rbind "$1" "$dir$2"
        mount --make-rslave "$dir$2"
        MOUNTS+=("$dir$2")
    }
    bind /proc /proc
    bind /sys /sys
    bind /dev /dev
    bind "$src" /src
    mount -o remount,bind,ro "$dir/src" 2>/dev/null || true
    mkdir -p "$dir/tmp" && chmod 1777 "$dir/tmp"
    # BCC compiles against /lib/modules/$(uname -r)/build: that release's
    # generic headers (ebpftop reads no kernel struct, so any version does)
    local tree common
    tree=$(cd "$dir" && ls -d usr/src/linux-headers-*-"$ARCH" 2>/dev/null | sort -V | tail -n 1)
    [ -n "$tree" ] || { echo "userspace: error: no kernel headers in $dir" >&2; exit 1; }
    common=$(cd "$dir" && ls -d "${tree%-*}-common" 2>/dev/null || true)
    mkdir -p "$dir/lib/modules/$krel"
    ln -sfn "/$tree" "$dir/lib/modules/$krel/build"
    [ -n "$common" ] && ln -sfn "/$common" "$dir/lib/modules/$krel/source"
    chroot "$dir" /usr/bin/env -i PATH=/opt/ebpftop-venv/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=/src ${CI:+CI=$CI} \
        ${EBPFTOP_FORCE_FALLBACK:+EBPFTOP_FORCE_FALLBACK=$EBPFTOP_FORCE_FALLBACK} "$@"
}

case "${1:-}" in
    build) shift; build "$@" ;;
    run) shift; run "$@" ;;
    *) echo "usage: userspace.sh build RELEASE DIR | run DIR SRC CMD..." >&2; exit 2 ;;
esac
