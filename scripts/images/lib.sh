# lib.sh: what scripts/images/build.sh and tests/images/test_images.sh share
# (sourced). podman with this machine's work-arounds (../shared/MACHINE-NOTES.md):
# a private containers.conf (CONTAINERS_CONF; /etc/containers is never
# written) and runc. Every call runs at the lowest CPU and I/O priority.
# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are for the scripts that source it

IMG_SRC=${IMG_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$IMG_SRC/deploy/images/containers.conf}
IMG_RUNTIME=${IMG_RUNTIME:-/usr/sbin/runc}
# The tag: the chart's appVersion unless IMAGE_TAG says otherwise.
IMG_TAG=${IMAGE_TAG:-$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' \
    "$IMG_SRC/deploy/helm/confidoc/Chart.yaml")}
IMG_PREFIX=${IMAGE_PREFIX:-localhost/confidoc}
IMG_BASE=localhost/confidoc-base:$IMG_TAG
# The components: the directory of each Containerfile under deploy/images/ and
# the repository the chart's values name (values.yaml, *.image.repository).
IMG_COMPONENTS=(confidoc-cas confidoc-api nginx mariadb memcached client)
img_repo() {
    case $1 in
        confidoc-cas | confidoc-api) echo "$IMG_PREFIX/$1" ;;
        *) echo "$IMG_PREFIX/confidoc-$1" ;;
    esac
}
img_ref() { echo "$(img_repo "$1"):$IMG_TAG"; }

pod() {
    nice -n 19 ionice -c3 podman --runtime "$IMG_RUNTIME" "$@"
}

# The measured programs: the value of cas.measurements.* (values.yaml), the
# component whose image holds it, its path there.
IMG_MEASURED=(
    "api confidoc-api /usr/bin/confidoc-api"
    "mariadbd mariadb /usr/sbin/mariadbd"
    "memcached memcached /usr/bin/memcached"
    "nginx nginx /usr/sbin/nginx"
    "curl client /usr/bin/curl"
    "openssl client /usr/bin/openssl"
    "mariadb mariadb /usr/bin/mariadb"
)

# img_sha256 COMPONENT PATH: the SHA-256 of PATH inside the component's image
# (symbolic links followed inside the image, as the launcher's exec does).
img_sha256() {
    local ref mnt rel
    ref=$(img_ref "$1")
    mnt=$(pod image mount "$ref") || return 1
    rel=$2
    local i
    for ((i = 0; i < 8; i++)); do
        [ -L "$mnt$rel" ] || break
        local t
        t=$(readlink "$mnt$rel")
        case $t in /*) rel=$t ;; *) rel=$(dirname "$rel")/$t ;; esac
    done
    sha256sum "$mnt$rel" | cut -d' ' -f1
    pod image unmount "$ref" >/dev/null
}
