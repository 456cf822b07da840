#!/bin/sh
# PostgreSQL for the compose stack, from Debian's package. On the first start (an empty
# volume) it makes the cluster, with POSTGRES_USER as its superuser and password
# authentication over the network, and the database POSTGRES_DB; then it runs the server in
# the foreground.
set -eu
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD (deploy/.env)}"
user=${POSTGRES_USER:-azuraforge}
db=${POSTGRES_DB:-azuraforge}
PGDATA=${PGDATA:-/var/lib/postgresql/data}
port=${PGPORT:-5432}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb -D "$PGDATA" --username="$user" --pwfile="$pwfile" --encoding=UTF8 --no-locale \
        --auth-local=peer --auth-host=scram-sha-256 >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    if [ "$db" != postgres ]; then
        echo "CREATE DATABASE \"$db\" OWNER \"$user\";" \
            | postgres --single -D "$PGDATA" -c "port=$port" postgres >/dev/null
    fi
    echo "postgres-entrypoint: made the cluster in $PGDATA with database $db"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c "port=$port" \
    -c unix_socket_directories=/run/postgresql
