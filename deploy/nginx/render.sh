#!/bin/sh
# Renders nginx.conf.template (beside this script) into the config nginx runs, for the
# compose stack's proxy and for the local-process topology alike.
#
#   AZF_API_UPSTREAMS="api-1:8000 api-2:8000" deploy/nginx/render.sh OUT.conf
#
# Settings (environment):
#   AZF_API_UPSTREAMS      the API instances, host:port separated by spaces (required)
#   AZF_HTTP_PORT          port of the plain HTTP listener that redirects (default 80)
#   AZF_HTTPS_PORT         port of the TLS listener (default 443)
#   AZF_PUBLIC_HTTPS_PORT  the HTTPS port users type, for the redirect (default AZF_HTTPS_PORT)
#   AZF_TLS_CERT           certificate chain, PEM (default /etc/azuraforge/tls/cert.pem)
#   AZF_TLS_KEY            its private key, PEM (default /etc/azuraforge/tls/key.pem)
#   AZF_NGINX_RUN_DIR      pid file and temporary files (default /run/azuraforge-nginx)
#   AZF_NGINX_ACCESS_LOG   access log path, or /dev/stdout (default /dev/stdout)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: render.sh OUT.conf}
: "${AZF_API_UPSTREAMS:?set AZF_API_UPSTREAMS to the API instances, e.g. \"api-1:8000 api-2:8000\"}"

AZF_API_SERVERS=""
for upstream in $AZF_API_UPSTREAMS; do
    case $upstream in
        *[!A-Za-z0-9.:_-]*) echo "render.sh: bad upstream address: $upstream" >&2; exit 2 ;;
    esac
    AZF_API_SERVERS="${AZF_API_SERVERS}server $upstream max_fails=1 fail_timeout=10s; "
done
export AZF_API_SERVERS
export AZF_HTTP_PORT="${AZF_HTTP_PORT:-80}"
export AZF_HTTPS_PORT="${AZF_HTTPS_PORT:-443}"
export AZF_PUBLIC_HTTPS_PORT="${AZF_PUBLIC_HTTPS_PORT:-$AZF_HTTPS_PORT}"
export AZF_TLS_CERT="${AZF_TLS_CERT:-/etc/azuraforge/tls/cert.pem}"
export AZF_TLS_KEY="${AZF_TLS_KEY:-/etc/azuraforge/tls/key.pem}"
export AZF_NGINX_RUN_DIR="${AZF_NGINX_RUN_DIR:-/run/azuraforge-nginx}"
export AZF_NGINX_ACCESS_LOG="${AZF_NGINX_ACCESS_LOG:-/dev/stdout}"

for path in "$AZF_TLS_CERT" "$AZF_TLS_KEY"; do
    if [ ! -r "$path" ]; then
        echo "render.sh: no readable $path: mount your certificate and key there, or make" \
             "a self-signed pair for local use with deploy/make-cert.sh" >&2
        exit 1
    fi
done
mkdir -p "$AZF_NGINX_RUN_DIR"

# Only our variables: nginx's own ($host, $http_upgrade, ...) must reach nginx untouched.
vars='${AZF_API_SERVERS} ${AZF_HTTP_PORT} ${AZF_HTTPS_PORT} ${AZF_PUBLIC_HTTPS_PORT}
${AZF_TLS_CERT} ${AZF_TLS_KEY} ${AZF_NGINX_RUN_DIR} ${AZF_NGINX_ACCESS_LOG}'
envsubst "$vars" < "$here/nginx.conf.template" > "$out"
