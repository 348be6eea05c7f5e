#!/usr/bin/env bash
# install-deps.sh: install the Debian packages confidoc needs to build and test
# (with --bench, also those of `make bench`: wrk, gnuplot and valgrind; with
# --images, also those of `make images`: podman, runc and debootstrap).
# Installs only what is missing; does nothing when everything is present.
# Run as root (or with the packages already installed); never downloads anything
# but Debian packages.
set -euo pipefail

BUILD_PKGS=(
  build-essential cmake pkg-config
  libmicrohttpd-dev libgnutls28-dev   # HTTP/1.1 server and its TLS
  libmariadb-dev                       # MariaDB Connector/C
  libsodium-dev                        # AEAD, Argon2id, keyed hashing, secure memory
  libssl-dev                           # OpenSSL: memcached TLS client, X.509 in the CAS
  libjansson-dev                       # JSON
  libyaml-dev                          # policy files of confidoc-cas
  libkeyutils-dev libgfshare-dev       # confidoc-cas sealing key (kernel keyring), k-of-n recovery
  libseccomp-dev                       # the CAS network worker's system-call allow-list
  libcurl4-openssl-dev                 # HTTP client of the command-line client (confidoc)
  libqrencode-dev                      # QR codes of TOTP secrets (POST /users/me/totp)
  libcmocka-dev                        # unit tests
)
LINT_PKGS=(clang-format clang-tidy cppcheck)  # make lint (part of make check)
TEST_PKGS=(
  mariadb-server mariadb-client       # real database for integration tests
  memcached                            # real rate-limit store
  nginx-light                          # TLS front end
  curl jq openssl procps iproute2 psmisc
  unzip                                # helm and kubectl out of their npm package (test_helm)
  clang libclang-rt-14-dev             # libFuzzer harnesses (make fuzz, test_fuzz_smoke)
  chromium libnss3-tools               # the web application's end-to-end test (test_web: headless
                                       # Chromium; certutil puts the stack's CA in its NSS store)
  prometheus                           # promtool check metrics (test_metrics; the server is not run)
  galera-4 mariadb-backup socat        # make check-distributed: a 3-node Galera cluster, its state
                                       # transfers by mariabackup streamed over TLS by socat
)
BENCH_PKGS=(wrk gnuplot-nox valgrind)  # make bench only (install-deps.sh --bench; valgrind: bench/callgrind.sh)
# make images and make check-images only (install-deps.sh --images): podman
# runs with runc here (../shared/MACHINE-NOTES.md), debootstrap makes the base.
IMAGE_PKGS=(podman runc debootstrap)

want=("${BUILD_PKGS[@]}" "${LINT_PKGS[@]}" "${TEST_PKGS[@]}")
case "${1:-}" in
  "") ;;
  --bench) want+=("${BENCH_PKGS[@]}") ;;
  --images) want+=("${IMAGE_PKGS[@]}") ;;
  *) echo "usage: install-deps.sh [--bench|--images]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "confidoc: missing Debian packages; run as root:" >&2
  echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

echo "confidoc: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's packages start their servers at install time on a normal init; tests
# start their own, so stop any that a package started.
for svc in mariadb memcached nginx prometheus; do
  if command -v service >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
done
