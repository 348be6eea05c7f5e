#!/usr/bin/env bash
# test_stack_links.sh: review finding 2 (review_2_stack_links): as root, `make up`
# must never follow a link that a service account planted. The stack comes up
# in a temporary state directory; then, one component at a time, the component
# is stopped and ITS service user replaces, in every directory of the state
# that it can write, every `tmp` and `conf` directory, every `*.new` file and
# every other name that make up writes there with links to a root-owned
# sentinel directory and file; make up runs again as root; the sentinels must
# be exactly as they were (content, mode, owner, entries), and the stack must
# come back. Root only (the attack needs service users): skipped otherwise.
set -uo pipefail
SRC=${CONFIDOC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
export CONFIDOC_SOURCE_DIR=$SRC
export CONFIDOC_BUILD_DIR=${CONFIDOC_BUILD_DIR:-$SRC/build}
. "$SRC/tests/lib/testlib.sh"
. "$SRC/tests/lib/certs.sh"
. "$SRC/tests/lib/stack.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "ok - skipped: review_2_stack_links needs root (it plants links as the service users)"
    exit 77
fi
for v in $(compgen -e | grep '^CONFIDOC_'); do
    case $v in CONFIDOC_SOURCE_DIR | CONFIDOC_BUILD_DIR) ;; *) unset "$v" ;; esac
done

WORK=$(mktemp -d /tmp/confidoc-links-test.XXXXXX)
chmod 0711 "$WORK"
export CONFIDOC_STATE_DIR=$WORK/state STACK_LOG=$WORK/stack.log
# As root, make up installs confidoc-api into a root-owned directory per
# content (default /usr/local/libexec/confidoc): here inside WORK, so that the
# test leaves nothing behind.
export CONFIDOC_LIBEXEC_DIR=$WORK/libexec
CONFIDOC_HTTPS_PORT=$(free_port) || exit 1
export CONFIDOC_HTTPS_PORT
cleanup() {
    stack down || stack_kill_all
    if [ "$T_FAIL" -gt 0 ]; then
        echo "# stack.sh output:"
        tail -n 40 "$STACK_LOG" 2>/dev/null | sed 's/^/#   /'
    fi
    rm -rf "$WORK"
}
t_watchdog 280
trap 'trap "" TERM; t_watchdog_stop; cleanup' EXIT

# The sentinels: root's, with modes the stack would change (it sets 0700/0600).
SENT=$WORK/sentinel
mkdir -p "$SENT/dir"
chmod 0700 "$SENT"
echo "sentinel file: root's, untouched" >"$SENT/file"
echo inside >"$SENT/dir/inside"
chmod 0644 "$SENT/file"
chmod 0755 "$SENT/dir"
snapshot() {
    stat -c '%n %a %U:%G %s' "$SENT/file" "$SENT/dir"
    sha256sum <"$SENT/file"
    find "$SENT/dir" -mindepth 1 -printf '%P %m %u:%g\n' | sort
}
BEFORE=$(snapshot)

# Names make up (scripts/stack.sh, confidoc-cas, nginx's master) writes, chmods
# or chowns in the state directories, now or in earlier layouts.
# (Not the files a service writes itself, such as MariaDB's socket and pid
# file: a service that breaks its own start-up harms only itself. Not the
# CAS's tls/, db/, mc/: confidoc-cas refuses a link there, and stopping at it
# would hide what the later steps do.)
NAMES=(tmp conf data run my.cnf api.conf nginx.conf memcached.conf keyfile
    master.keyring nginx.pid client_body proxy fastcgi uwsgi scgi my.cnf.new api.conf.new
    nginx.conf.new memcached.conf.new ports.env.new stack.env.new keyfile.new)

# plant USER: as USER, in every directory of the state that USER can write,
# replace each name of NAMES and every existing *.new entry
# with a link (directories' names to the sentinel directory, the rest to the
# sentinel file). Prints how many links were planted.
plant() {
    local u=$1 d
    find "$CONFIDOC_STATE_DIR" -type d 2>/dev/null | while read -r d; do
        runuser -u "$u" -- test -w "$d" 2>/dev/null || continue
        # shellcheck disable=SC2016 # expanded by the inner shell, as the user
        runuser -u "$u" -- bash -c '
            d=$1 sdir=$2 sfile=$3; shift 3
            n=0
            for e in "$@" $(cd "$d" && ls -A 2>/dev/null | grep -E "\.new$"); do
                case $e in tmp | conf | data | run | client_body | proxy | fastcgi | uwsgi | scgi) t=$sdir ;; *) t=$sfile ;; esac
                rm -rf "${d:?}/$e" 2>/dev/null
                ln -sfn "$t" "$d/$e" 2>/dev/null && n=$((n + 1))
            done
            echo "$n"' _ "$d" "$SENT/dir" "$SENT/file" "${NAMES[@]}"
    done | awk '{ s += $1 } END { print s + 0 }'
}

echo "# make up as root [${SECONDS}s]"
t_true "make up starts the stack" stack up
stack_env

# (confidoc-migrate runs only `confidoc-api --migrate`, before the API starts.)
for cu in cas:confidoc-cas mariadb:mysql memcached:memcache memcached-lockout:memcache api:confidoc api:confidoc-migrate nginx:www-data; do
    c=${cu%%:*} u=${cu#*:}
    echo "# $c: stopped, links planted as $u, make up again [${SECONDS}s]"
    t_true "stop $c" stack stop "$c"
    n=$(plant "$u")
    echo "# $u planted $n links"
    stack up
    t_eq "review_2_stack_links: make up after $u planted links ($n)" "$?" 0
    t_eq "review_2_stack_links: the sentinels are untouched after $c's restart" "$(snapshot)" "$BEFORE"
    t_true "review_2_stack_links: $c runs again" bash -c "bash '$SRC/scripts/stack.sh' status >/dev/null"
done

echo "# the layout: what each service user may write [${SECONDS}s]"
S=$CONFIDOC_STATE_DIR
for u in mysql memcache confidoc www-data confidoc-migrate confidoc-cas confidoc-probe; do
    # (MariaDB's own subdirectories of data/ are its own too.)
    w=$(find "$S" -type d 2>/dev/null | while read -r d; do
        runuser -u "$u" -- test -w "$d" 2>/dev/null && echo "${d#"$S"/}"
    done | grep -v '^mariadb/data/' | sort | xargs)
    case $u in
    mysql) want="mariadb/data mariadb/run mariadb/tmp" ;;
    www-data) want="nginx/tmp/client_body nginx/tmp/fastcgi nginx/tmp/proxy nginx/tmp/scgi nginx/tmp/uwsgi" ;;
    *) want="" ;;
    esac
    t_eq "review_2_stack_links: $u may write only its own directories" "$w" "$want"
done
# (The keys are in no directory: each service's are in its private tmpfs,
# mounted on secrets/NAME inside its own mount namespace only.)
for d in "" run log cas cas-key operator secrets secrets/api secrets/mariadb secrets/memcached \
    secrets/migrate secrets/nginx secrets/probe public api mariadb mariadb-key memcached \
    memcached-lockout nginx nginx/conf nginx/tmp nginx/www nginx/www/app migrate; do
    t_eq "review_2_stack_links: STATE/$d is root's" "$(stat -c %U "$S/$d")" root
done
t_eq "review_2_stack_links: the pid files are root's" \
    "$(stat -c %U "$S"/run/*.pid | sort -u)" root

echo "# make down [${SECONDS}s]"
t_true "make down" stack down
t_eq "the sentinels are untouched at the end" "$(snapshot)" "$BEFORE"
t_finish
