#!/bin/sh
# A self-signed certificate for LOCAL use (a trial, a laptop, the local-process topology):
# browsers warn about it, and clients must be told to trust it (curl --cacert cert.pem).
# For a real deployment, mount your own certificate and key instead (deploy/README.md).
#
#   deploy/make-cert.sh [DIR [NAME...]]
#
# writes DIR/cert.pem and DIR/key.pem (default DIR: deploy/certs), valid for the names given
# (default: localhost) plus localhost, 127.0.0.1 and ::1. An existing pair is kept.
set -eu

dir=${1:-"$(cd "$(dirname "$0")" && pwd)/certs"}
[ $# -gt 0 ] && shift
names=${*:-localhost}

if [ -s "$dir/cert.pem" ] && [ -s "$dir/key.pem" ]; then
    echo "keeping the certificate in $dir (delete cert.pem and key.pem to make a new one)"
    exit 0
fi
command -v openssl >/dev/null 2>&1 || {
    echo "make-cert.sh needs openssl (apt-get install openssl)" >&2
    exit 1
}

san="DNS:localhost,IP:127.0.0.1,IP:::1"
for name in $names; do
    case $name in
        localhost) ;;
        *[!0-9.]*) san="$san,DNS:$name" ;;
        *) san="$san,IP:$name" ;;
    esac
done
first=$(echo "$names" | cut -d' ' -f1)

mkdir -p "$dir"
umask 077  # the key is for this user's eyes only
# A CA-style self-signed certificate with the extensions strict verifiers (OpenSSL 3's
# X509_STRICT, as Python 3.13 uses) require of a trust anchor.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
    -days 825 -subj "/CN=$first" \
    -addext "subjectAltName=$san" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,digitalSignature,keyCertSign" \
    -addext "extendedKeyUsage=serverAuth" \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
chmod 644 "$dir/cert.pem"
echo "self-signed certificate for $san in $dir (cert.pem, key.pem)"
