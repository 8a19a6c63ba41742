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
# The server offers TLS with a self-signed certificate; the user enclavekit_tls may connect only over TLS
# (hostssl), so a client that reaches it has proved it used TLS.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$dir/data/server.key" -out "$dir/data/server.crt" 2>/dev/null
cp "$dir/data/server.crt" "$dir/server-ca.pem"
chmod 0600 "$dir/data/server.key"
[ "$(id -u)" = 0 ] && chown 65534:65534 "$dir/data/server.key" "$dir/data/server.crt"
{
    echo "hostssl all enclavekit_tls 127.0.0.1/32 trust"
    echo "host    all enclavekit_tls 127.0.0.1/32 reject"
    cat "$dir/data/pg_hba.conf"
} >"$dir/pg_hba.conf" && cat "$dir/pg_hba.conf" >"$dir/data/pg_hba.conf" && rm "$dir/pg_hba.conf"
"${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c ssl=on" start >/dev/null
"${as_owner[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U enclavekit enclavekit_test
"${as_owner[@]}" "$bin/psql" -q -h 127.0.0.1 -p "$port" -U enclavekit -d enclavekit_test \
    -c "CREATE ROLE enclavekit_tls LOGIN" -c "CREATE DATABASE enclavekit_tls OWNER enclavekit_tls" >/dev/null
export ENCLAVEKIT_TEST_POSTGRES_URL="postgres://enclavekit@127.0.0.1:$port/enclavekit_test"
export ENCLAVEKIT_TEST_POSTGRES_TLS_URL="postgres://enclavekit_tls@127.0.0.1:$port/enclavekit_tls"
export ENCLAVEKIT_TEST_POSTGRES_CA="$dir/server-ca.pem"
echo "==> PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on port $port"
"$@"
