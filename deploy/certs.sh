#!/bin/bash
# Make the bus's TLS certificates for docker compose: a CA of its own and a
# server certificate for the NATS containers, signed by it, in deploy/certs
# (git-ignored; keys mode 0600):
#
#   deploy/certs.sh            # once; does nothing if deploy/certs/ca.pem exists
#   deploy/certs.sh --force    # new CA and certificate
#
# ca.pem is what the daemons and the cli verify the server with
# (--bus-ca / SITESEC_BUS_CA); server.pem and server-key.pem are the nats
# containers'. The server certificate names every nats service of the
# examples and 127.0.0.1, the published port the cli uses from this machine.
set -euo pipefail
cd "$(dirname "$0")"
dir=certs
if [ -e "$dir/ca.pem" ] && [ "${1:-}" != --force ]; then
	exit 0
fi
umask 077
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
	-subj "/O=sitesec/CN=sitesec bus CA" -keyout "$tmp/ca-key.pem" -out "$tmp/ca.pem" \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-subj "/O=sitesec/CN=nats" -keyout "$tmp/server-key.pem" -out "$tmp/server.csr" 2>/dev/null
printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
	"extendedKeyUsage=serverAuth" \
	"subjectAltName=DNS:nats,DNS:nats-r1,DNS:nats-r2,DNS:localhost,IP:127.0.0.1" > "$tmp/ext"
openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca-key.pem" -CAcreateserial \
	-days 825 -extfile "$tmp/ext" -out "$tmp/server.pem" 2>/dev/null
# The CA's key is not kept: nothing else is ever signed with it.
cp "$tmp/ca.pem" "$tmp/server.pem" "$tmp/server-key.pem" "$dir/"
chmod 0644 "$dir/ca.pem" "$dir/server.pem"
chmod 0600 "$dir/server-key.pem"
