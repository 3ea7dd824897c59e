#!/bin/sh
# A throw-away PostgreSQL cluster for the tests: initdb in a temporary
# directory, the server on 127.0.0.1 at a free port (and a socket in that
# directory), removed afterwards.
#
#   tests/pg.sh run CMD [ARG...]
#       start a cluster, run CMD with PADDOCK_TEST_PG set to its URL
#       (postgresql://paddock@127.0.0.1:PORT/postgres; trust auth, fsync on)
#       and PADDOCK_TEST_PG_CTL to "tests/pg.sh ctl DIR" (append start,
#       stop or restart), then stop the cluster and remove it. Exits with
#       CMD's status. With PADDOCK_TEST_PG already set, just runs CMD.
#   tests/pg.sh ctl DIR start|stop|restart
#       what PADDOCK_TEST_PG_CTL runs; stop and restart are immediate
#       (a crash, as a killed or failed-over server looks to clients).
#
# PostgreSQL refuses to run as root. As root (CI), initdb and the server
# run as the unprivileged "nobody" through runuser (util-linux, always on
# Debian), and the directory, under /tmp, belongs to nobody; as any other
# user they run as that user. When PostgreSQL is not installed, CMD still
# runs (its other cases still count) after a FAIL line, and the exit status
# says failure.
set -u

here=$(cd "$(dirname "$0")" && pwd)

bindir() { # the newest installed server's bin directory
    if command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return
    fi
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V); do
        [ -x "$d/initdb" ] && last=$d
    done
    [ -n "${last:-}" ] && echo "$last"
}

as_owner() { # run as the cluster's owner
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u nobody -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
        echo $((20000 + $$ % 30000))
}

ctl() { # DIR start|stop|restart
    dir=$1
    bin=$(bindir)
    case "$2" in
    start) as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 start >/dev/null ;;
    stop) as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null ;;
    restart) as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -m immediate -w -t 60 restart >/dev/null ;;
    *)
        echo "pg.sh: ctl DIR start|stop|restart" >&2
        return 2
        ;;
    esac
}

start() { # DIR: initdb and start; prints the port
    dir=$1
    bin=$(bindir)
    [ -n "$bin" ] || {
        echo "PostgreSQL is not installed (run scripts/setup.sh)" >&2
        return 1
    }
    [ "$(id -u)" -eq 0 ] && chown nobody "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -A trust -U paddock -E UTF8 \
        --locale=C.UTF-8 -N >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        return 1
    }
    # In the config file, not on the command line: ctl start reads it too.
    # A port taken between free_port and the server's bind: try another.
    cp "$dir/data/postgresql.conf" "$dir/postgresql.conf.orig"
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        {
            cat "$dir/postgresql.conf.orig"
            echo "listen_addresses = '127.0.0.1'"
            echo "port = $port"
            echo "unix_socket_directories = '$dir'"
            echo "fsync = on"
        } >"$dir/data/postgresql.conf"
        if ctl "$dir" start 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    cat "$dir/log" >&2
    return 1
}

case "${1:-}" in
run)
    shift
    if [ -n "${PADDOCK_TEST_PG:-}" ]; then
        exec "$@"
    fi
    dir=$(mktemp -d /tmp/paddock-pg-XXXXXX) || exit 1
    trap 'ctl "$dir" stop 2>/dev/null; rm -rf "$dir"' EXIT
    trap 'exit 1' INT TERM
    if ! port=$(start "$dir"); then
        echo "FAIL store.postgres (no throw-away PostgreSQL cluster)"
        "$@"
        exit 1
    fi
    PADDOCK_TEST_PG="postgresql://paddock@127.0.0.1:$port/postgres" \
        PADDOCK_TEST_PG_CTL="$here/pg.sh ctl $dir" "$@"
    ;;
ctl)
    shift
    ctl "$@"
    ;;
*)
    echo "usage: tests/pg.sh run CMD [ARG...] | ctl DIR start|stop|restart" >&2
    exit 2
    ;;
esac
