#!/usr/bin/env bash
# build.sh: `make images` (docs/images.md). Builds the OCI images the Helm
# chart runs, here, without any registry:
#   1. a Debian bookworm root filesystem (debootstrap --variant=minbase, from
#      the archive this machine's apt uses), cached in BUILD/images/rootfs and
#      reused while it is there (remove it to refresh the base);
#   2. `podman import` of it as localhost/confidoc-base:TAG;
#   3. one image per component from deploy/images/COMPONENT/Containerfile:
#      Debian's runtime packages installed with apt inside the build (the
#      package lists and .debs in BUILD/images/apt, mounted for the build
#      only, never in a layer), the project's binaries from BUILD;
#   4. prints each image's id and digest and the SHA-256 of each measured
#      program, and writes BUILD/images/measurements.yaml (the chart's
#      cas.measurements) and BUILD/images/images.txt.
# Usage: build.sh [BUILD_DIR]   (IMAGE_TAG, default the chart's appVersion;
# IMAGE_PREFIX, default localhost/confidoc). Root only (podman import and
# debootstrap as root). Times each step.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
# shellcheck source=lib.sh
. "$SRC/scripts/images/lib.sh"
OUT=$BUILD/images
ROOTFS=$OUT/rootfs
SUITE=bookworm
T0=$SECONDS

[ "$(id -u)" = 0 ] || { echo "make images: run as root (debootstrap, podman)" >&2; exit 1; }
for f in confidoc-api confidoc-cas web/index.html; do
    [ -e "$BUILD/$f" ] || { echo "make images: $BUILD/$f missing (make build first)" >&2; exit 1; }
done
for c in podman debootstrap "$IMG_RUNTIME"; do
    command -v "$c" >/dev/null || { echo "make images: $c missing (scripts/install-deps.sh --images)" >&2; exit 1; }
done
mkdir -p "$OUT"
step() { printf '[images %4ss] %s\n' "$((SECONDS - T0))" "$*"; }

# The archive: the first deb.debian.org-style URI of this machine's apt
# sources (deb822 or one-line), else deb.debian.org.
mirror() {
    local u
    u=$(grep -h -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null |
        awk '{print $2}' | grep -v -- '-security' | head -n 1)
    [ -n "$u" ] || u=$(grep -h -E '^deb ' /etc/apt/sources.list 2>/dev/null |
        awk '{print $2}' | grep -v -- '-security' | head -n 1)
    echo "${u:-http://deb.debian.org/debian}"
}
security_mirror() {
    local u
    u=$(grep -h -E '^URIs:' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
        awk '{print $2}' | grep -- '-security' | head -n 1)
    echo "${u:-http://deb.debian.org/debian-security}"
}

# ---- 1. the root filesystem ----
if [ ! -e "$ROOTFS/.confidoc-rootfs" ]; then
    MIRROR=$(mirror)
    step "debootstrap --variant=minbase $SUITE from $MIRROR (the slow part)"
    rm -rf "$OUT/rootfs.tmp"
    t=$SECONDS
    if ! nice -n 19 ionice -c3 debootstrap --variant=minbase --arch="$(dpkg --print-architecture)" \
        "$SUITE" "$OUT/rootfs.tmp" "$MIRROR" >"$OUT/debootstrap.log" 2>&1; then
        tail -n 20 "$OUT/debootstrap.log" >&2
        echo "make images: debootstrap failed (log: $OUT/debootstrap.log)" >&2
        exit 1
    fi
    R=$OUT/rootfs.tmp
    # Security and point-release updates too, as this machine has.
    printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
        "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" "$(security_mirror)" "$SUITE" >"$R/etc/apt/sources.list"
    # Only what runs: no recommends, no documentation, manual pages or locales.
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n%s\n' \
        'Binary::apt::APT::Keep-Downloaded-Packages "true";' >"$R/etc/apt/apt.conf.d/90confidoc"
    printf '%s\n' 'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright' \
        'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/info/*' \
        'path-exclude=/usr/share/locale/*' 'path-include=/usr/share/locale/locale.alias' \
        'path-exclude=/usr/share/lintian/*' >"$R/etc/dpkg/dpkg.cfg.d/90confidoc-excludes"
    # Packages never start services in a build.
    printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"
    chmod 0755 "$R/usr/sbin/policy-rc.d"
    find "$R/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
    rm -rf "$R/usr/share/man" "$R/usr/share/info" "$R/var/lib/apt/lists"/* \
        "$R/var/cache/apt"/*.bin "$R/var/cache/apt/archives"/*.deb "$R/var/log"/*.log \
        "$R/var/log/apt" "$R/var/cache/debconf"/*-old "$R/root/.bash_history"
    : >"$R/etc/machine-id" 2>/dev/null || true
    date -u +%Y-%m-%dT%H:%M:%SZ >"$R/.confidoc-rootfs"
    rm -rf "$ROOTFS"
    mv "$R" "$ROOTFS"
    step "debootstrap done in $((SECONDS - t)) s"
else
    step "root filesystem: $ROOTFS (from $(cat "$ROOTFS/.confidoc-rootfs"); remove it to rebuild)"
fi

# ---- 2. the base image ----
stamp=$(cat "$ROOTFS/.confidoc-rootfs")
if [ "$(pod image inspect --format '{{index .Labels "confidoc.rootfs"}}' "$IMG_BASE" 2>/dev/null)" != "$stamp" ]; then
    t=$SECONDS
    oldbase=$(pod image inspect --format '{{.Id}}' "$IMG_BASE" 2>/dev/null || true)
    tar --numeric-owner --exclude=./.confidoc-rootfs --exclude='./dev/*' --exclude='./proc/*' \
        --exclude='./sys/*' -C "$ROOTFS" -cf - . |
        pod import --change "LABEL confidoc.rootfs=$stamp" --change 'CMD ["/bin/sh"]' - "$IMG_BASE" >/dev/null
    if [ -n "$oldbase" ]; then pod rmi "$oldbase" >/dev/null 2>&1 || true; fi
    step "imported $IMG_BASE in $((SECONDS - t)) s"
else
    step "base image $IMG_BASE is current"
fi

# ---- 3. the images ----
# The build context: exactly what the Containerfiles copy.
CTX=$OUT/context
rm -rf "$CTX"
mkdir -p "$CTX/bin" "$CTX/www/app"
install -m 0755 "$BUILD/confidoc-cas" "$BUILD/confidoc-api" "$CTX/bin/"
cp -R "$BUILD/web/." "$CTX/www/app/"
if [ -f "$SRC/docs/openapi.json" ]; then cp "$SRC/docs/openapi.json" "$CTX/www/openapi.json"; fi
chmod -R u=rwX,go=rX "$CTX"
mkdir -p "$OUT/apt/lists" "$OUT/apt/archives"
rm -f "$OUT/measurements.yaml" "$OUT/images.txt" # never left from an older build
for c in "${IMG_COMPONENTS[@]}"; do
    t=$SECONDS
    old=$(pod image inspect --format '{{.Id}}' "$(img_ref "$c")" 2>/dev/null || true)
    if ! pod build --pull=never --network host \
        --volume "$OUT/apt/lists:/var/lib/apt/lists" --volume "$OUT/apt/archives:/var/cache/apt/archives" \
        --build-arg "BASE=$IMG_BASE" --label "org.opencontainers.image.version=$IMG_TAG" \
        -f "$SRC/deploy/images/$c/Containerfile" -t "$(img_ref "$c")" "$CTX" >"$OUT/build-$c.log" 2>&1; then
        tail -n 30 "$OUT/build-$c.log" >&2
        echo "make images: building $c failed (log: $OUT/build-$c.log)" >&2
        exit 1
    fi
    # The image this tag named before, now untagged: removed (only ours;
    # the shared storage is never pruned as a whole).
    new=$(pod image inspect --format '{{.Id}}' "$(img_ref "$c")")
    if [ -n "$old" ] && [ "$old" != "$new" ]; then pod rmi "$old" >/dev/null 2>&1 || true; fi
    step "built $(img_ref "$c") in $((SECONDS - t)) s"
done

# ---- 4. what the chart needs ----
# Every image's launcher is the same file as the CAS's own binary: the CAS
# releases only to a launcher whose hash is that of its /proc/self/exe.
launcher=$(sha256sum "$BUILD/confidoc-cas" | cut -d' ' -f1)
for c in "${IMG_COMPONENTS[@]}"; do
    h=$(img_sha256 "$c" /usr/bin/confidoc-cas)
    [ "$h" = "$launcher" ] || { echo "make images: $c's /usr/bin/confidoc-cas is not $BUILD/confidoc-cas" >&2; exit 1; }
done
{
    echo "# image id digest size"
    for c in "${IMG_COMPONENTS[@]}"; do
        pod image inspect --format "$(img_ref "$c") {{.Id}} {{.Digest}} {{.Size}}" "$(img_ref "$c")"
    done
} >"$OUT/images.txt"
{
    echo "# measurements.yaml: written by make images ($(date -u +%Y-%m-%dT%H:%M:%SZ)) for tag $IMG_TAG;"
    echo "# the SHA-256 of each program the CAS sessions pin, as it is inside its image."
    echo "# helm install ... -f measurements.yaml"
    echo "cas:"
    echo "  measurements:"
    for m in "${IMG_MEASURED[@]}"; do
        read -r key comp path <<<"$m"
        echo "    $key: \"$(img_sha256 "$comp" "$path")\"  # $path in $(img_repo "$comp")"
    done
} >"$OUT/measurements.yaml.tmp"
if [ "$(grep -c -E '^    [a-z]+: "[0-9a-f]{64}"' "$OUT/measurements.yaml.tmp")" != "${#IMG_MEASURED[@]}" ]; then
    echo "make images: a measured program is missing from its image:" >&2
    cat "$OUT/measurements.yaml.tmp" >&2
    exit 1
fi
mv "$OUT/measurements.yaml.tmp" "$OUT/measurements.yaml"
echo "images (id, digest, bytes):"
sed 1d "$OUT/images.txt" | awk '{printf "  %s\n    id %s\n    digest %s\n    %s bytes\n", $1, $2, $3, $4}'
echo "launcher /usr/bin/confidoc-cas in every image: $launcher"
echo "measurements ($OUT/measurements.yaml):"
sed -n 's/^    /  /p' "$OUT/measurements.yaml"
step "make images done"
