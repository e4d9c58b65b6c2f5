#!/bin/sh
# kmd against a real strongSwan charon (kmd/ikesa/testdata/strongswan/run.sh)
# for each proposal set of the kmd issue, with sitesec as initiator and as
# responder, then certificates (RSA and ECDSA). Each line gives charon's IKE
# and ESP proposals and the same in Junos words for this side. Needs root
# and charon (scripts/deps.sh installs it); says so and exits 0 without
# (1 under CI=true).
set -eu
cd "$(dirname "$0")/../kmd/ikesa"
if [ "$(id -u)" != 0 ] || [ ! -x /usr/lib/ipsec/charon ]; then
	echo "interop: skipped (needs root and /usr/lib/ipsec/charon)"
	# In CI everything is installed by scripts/deps.sh: a skip is a failure.
	[ "${CI:-}" = true ] && exit 1
	exit 0
fi
log=$(mktemp /tmp/sitesec-interop.XXXXXX)
run() {
	echo "== interop: $*"
	if ! sh testdata/strongswan/run.sh "$@" > "$log" 2>&1; then
		cat "$log"
		exit 1
	fi
	grep -E '^(--- |PASS|FAIL)' "$log"
}
run aes256gcm16-prfsha256-ecp256 aes256gcm16-ecp256 aes-256-gcm,sha-256,group19 aes-256-gcm,,group19
run aes128-sha256-modp2048 aes128-sha256-modp2048 aes-128-cbc,sha-256,group14 aes-128-cbc,hmac-sha-256-128,group14
run aes256-sha384-ecp384 aes256-sha384-ecp384 aes-256-cbc,sha-384,group20 aes-256-cbc,hmac-sha-384-192,group20
run chacha20poly1305-prfsha256-x25519 chacha20poly1305-x25519 chacha20-poly1305,sha-256,group31 chacha20-poly1305,,group31
# Junos's default proposal values (3des-cbc, sha1; issue 12 item 8) in IKEv2.
run 3des-sha1-modp2048 3des-sha1-modp2048 3des-cbc,sha1,group14 3des-cbc,hmac-sha1-96,group14
KEYTYPE=ecdsa run
rm -f "$log"
