#!/usr/bin/env bash
# Start a private PostgreSQL 15 cluster in a temporary directory, run a command with ENCLAVEKIT_TEST_POSTGRES_URL
# pointing at a fresh database in it, and stop the cluster afterwards. PostgreSQL refuses to run as root: as root the
# cluster runs as nobody.
#   Scripts/test-postgres.sh swift test --filter PostgresReplicaTests
set -euo pipefail

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || bin=$(dirname "$(command -v initdb)")
dir=$(mktemp -d /tmp/enclavekit-pg.XXXXXX)
port=$(( 20000 + RANDOM % 20000 ))
as_owner=()
if [ "$(id -u)" = 0 ]; then
    chown 65534:65534 "$dir"
    as_owner=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
cleanup() {
    "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT
"${as_owner[@]}" "$bin/initdb" -D "$dir/data" -U enclavekit --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1
"${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
"${as_owner[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U enclavekit enclavekit_test
export ENCLAVEKIT_TEST_POSTGRES_URL="postgres://enclavekit@127.0.0.1:$port/enclavekit_test"
echo "==> PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on port $port"
"$@"
