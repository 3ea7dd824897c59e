#!/bin/sh
# make install into a throw-away prefix, then check what an operator gets:
# the files, the systemd unit (systemd-analyze verify, which also checks
# that ExecStart's binary is there; any complaint fails), and that the
# installed example configuration loads. Prints "PASS install.*" lines.
set -u
cd "$(dirname "$0")/.."
prefix=$(mktemp -d /tmp/paddock-install.XXXXXX)
trap 'rm -rf "$prefix"' EXIT
fail=0
check() { # name, command...
    name=$1
    shift
    if out=$("$@" 2>&1); then
        echo "PASS install.$name"
    else
        echo "FAIL install.$name"
        echo "$out"
        fail=1
    fi
}
check make_install make --no-print-directory install PREFIX="$prefix"
check files test -x "$prefix/bin/paddock" -a \
    -f "$prefix/lib/systemd/system/paddock.service" -a \
    -f "$prefix/lib/sysusers.d/paddock.conf" -a \
    -f "$prefix/etc/paddock/paddock.conf" -a \
    -f "$prefix/share/doc/paddock/config.md"
verify() {
    out=$(systemd-analyze verify --man=no \
        "$prefix/lib/systemd/system/paddock.service" 2>&1) || {
        echo "$out"
        return 1
    }
    [ -z "$out" ] || { echo "$out"; return 1; }
}
if command -v systemd-analyze >/dev/null 2>&1; then
    check unit_verifies verify
else
    echo "FAIL install.unit_verifies (no systemd-analyze; scripts/setup.sh)"
    fail=1
fi
check unit_is_hardened grep -q '^ProtectSystem=strict$' \
    "$prefix/lib/systemd/system/paddock.service"
check example_config_loads "$prefix/bin/paddock" models \
    --config "$prefix/etc/paddock/paddock.conf"
# A second install keeps the operator's configuration.
echo "workers = 3" >>"$prefix/etc/paddock/paddock.conf"
make --no-print-directory install PREFIX="$prefix" >/dev/null 2>&1
check config_kept grep -q '^workers = 3$' "$prefix/etc/paddock/paddock.conf"
exit $fail
