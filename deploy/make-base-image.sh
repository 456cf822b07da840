#!/bin/sh
# Makes `azuraforge-base`, the image every AzuraForge image is built FROM, without any image
# registry: a minimal Debian bookworm assembled by mmdebstrap from Debian's packages, imported
# into the container engine.
#
#   deploy/make-base-image.sh [ENGINE]     ENGINE: docker (default) or podman
#
# With a registry you can skip this and set BASE_IMAGE=python:3.11-slim-bookworm in .env.
set -eu
engine=${1:-docker}
suite=${SUITE:-bookworm}
name=${BASE_IMAGE:-azuraforge-base}

command -v "$engine" >/dev/null 2>&1 || { echo "make-base-image.sh: no $engine here" >&2; exit 1; }
if ! command -v mmdebstrap >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq mmdebstrap >/dev/null
    else
        echo "make-base-image.sh needs mmdebstrap: sudo apt-get install mmdebstrap" >&2
        exit 1
    fi
fi

# minbase: only the essential packages and apt; each image adds what it runs.
mmdebstrap --variant=minbase --include=ca-certificates "$suite" - \
    | "$engine" import --change 'ENV LANG=C.UTF-8' --change 'CMD ["bash"]' - "$name"
echo "made $name (Debian $suite, minbase)"
