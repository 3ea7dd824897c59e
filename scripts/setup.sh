#!/bin/sh
# Install the Debian 12 packages paddock's build, tests and benchmarks need,
# then the npm packages of tests/sdk and tests/browser (npm ci from each
# package-lock.json).
# Idempotent: checks each package with dpkg-query and installs only what is
# missing (apt-get; through sudo when not root), and runs npm ci only when
# the lock file changed since the last install. Safe to run on every build.
set -eu

PACKAGES="
gcc make pkg-config clang clang-format libclang-rt-14-dev
libjansson-dev libsqlite3-dev libssl-dev
libcurl4-openssl-dev
libpq-dev postgresql
libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
libswresample-dev libx264-dev
ffmpeg python3 python3-jsonschema curl ca-certificates
wrk nginx-light systemd
chromium
"
# tests/sdk runs the Vercel AI SDK on Node.js: Debian's, unless the machine
# already has a node (and npm) of its own.
command -v node >/dev/null 2>&1 || PACKAGES="$PACKAGES nodejs"
command -v npm >/dev/null 2>&1 || PACKAGES="$PACKAGES npm"

missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
    *"install ok installed"*) ;;
    *) missing="$missing $p" ;;
    esac
done

if [ -n "$missing" ]; then
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
fi

# tests/sdk's and tests/browser's packages (the web console's test drives
# Debian's chromium above with playwright-core, which downloads no browser
# of its own), exactly as each package-lock.json pins them. The copy of the
# lock left in node_modules says they are current; the tests then run
# offline.
root="$(cd "$(dirname "$0")/.." && pwd)"
for dir in "$root/tests/sdk" "$root/tests/browser"; do
    if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.setup-lock"; then
        echo "setup: npm ci in ${dir#"$root"/}" >&2
        (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund)
        cp "$dir/package-lock.json" "$dir/node_modules/.setup-lock"
    fi
done
