#!/bin/sh
# The proxy container's main process: renders the config (render.sh), runs nginx, and reloads
# it when an API instance's address changes. nginx resolves upstream names only when it loads
# its config, and a re-created API container comes back with a new address.
set -eu
conf="${AZF_NGINX_RUN_DIR:-/run/azuraforge-nginx}/nginx.conf"
"$(dirname "$0")/render.sh" "$conf"

addresses() {
    for upstream in $AZF_API_UPSTREAMS; do
        getent hosts "${upstream%:*}" | awk '{ print $1 }' || true
    done | sort | tr '\n' ' '
}

nginx -c "$conf" -e stderr &
nginx_pid=$!
trap 'kill -TERM "$nginx_pid" 2>/dev/null' TERM INT
trap 'kill -QUIT "$nginx_pid" 2>/dev/null' QUIT

known=$(addresses)
while kill -0 "$nginx_pid" 2>/dev/null; do
    sleep "${AZF_RESOLVE_SECONDS:-5}" &
    wait $! || true
    now=$(addresses)
    if [ "$now" != "$known" ]; then
        echo "proxy: API addresses now $now(were $known): reloading nginx" >&2
        if nginx -c "$conf" -e stderr -s reload; then
            known=$now
        fi  # not resolvable yet (an instance is down): try again next time
    fi
done
wait "$nginx_pid"
