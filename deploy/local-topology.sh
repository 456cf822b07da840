#!/bin/sh
# The production topology as local processes (deploy/local_topology.py): nginx with TLS in
# front of two API instances and two Celery workers, on your PostgreSQL and Redis.
#
#   export AZURAFORGE_DATABASE_URL=postgresql://azuraforge@127.0.0.1/azuraforge
#   export AZURAFORGE_REDIS_URL=redis://127.0.0.1:6379/0
#   deploy/local-topology.sh [--workers N] [--https-port 8443] [--http-port 8080]
set -eu
cd "$(dirname "$0")/.."
if command -v uv >/dev/null 2>&1; then uv=uv; else uv="python3 -m uv"; fi
make --no-print-directory setup >&2   # the workspace and the built dashboard the APIs serve
exec $uv run --locked python deploy/local_topology.py "$@"
