#!/bin/sh
# Install the Debian 12 packages paddock's build, tests and benchmarks need.
# Idempotent: checks each package with dpkg-query and installs only what is
# missing (apt-get; through sudo when not root). Safe to run on every build.
set -eu

PACKAGES="
gcc make pkg-config clang clang-format libclang-rt-14-dev
libmicrohttpd-dev libjansson-dev libsqlite3-dev libssl-dev
libcurl4-openssl-dev
libpq-dev postgresql
libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
libswresample-dev libx264-dev
ffmpeg python3 curl ca-certificates
wrk nginx-light
"

missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
    *"install ok installed"*) ;;
    *) missing="$missing $p" ;;
    esac
done

[ -z "$missing" ] && exit 0

echo "setup: installing:$missing" >&2
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "setup: need root or sudo to install:$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
