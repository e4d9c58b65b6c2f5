#!/bin/sh
# Runs the kmd/ikesa strongSwan interop test: charon in private network and
# mount namespaces on loopback (INTEROP.md), the test binary beside it.
# Usage: sh run.sh [IKE ESP [SITESEC_IKE SITESEC_ESP]]   (from kmd/ikesa)
#   e.g. sh run.sh aes256-sha256-modp2048 aes256-sha1-modp3072 \
#        aes-256-cbc,sha-256,group14 aes-256-cbc,hmac-sha1-96,group15
set -eu
here=$(cd "$(dirname "$0")" && pwd)
props=${1:-aes256gcm16-prfsha256-ecp256}
esp=${2:-aes128gcm16-ecp256}
export SITESEC_IKE=${3:-} SITESEC_ESP=${4:-}
run=$(mktemp -d /tmp/kmd-interop.XXXXXX)
( cd "$here/../.." && go test -tags strongswan -c -o "$run/ikesa.test" . )
sed "s#RUNDIR#$run#g" "$here/strongswan.conf" > "$run/strongswan.conf"
mkdir -p "$run/swanctl/x509" "$run/swanctl/x509ca" "$run/swanctl/private"
# A CA, charon's certificate (127.0.0.1) and this side's (127.0.0.3) for
# TestStrongSwanCertificates; KEYTYPE rsa (default) or ecdsa, KEYSIZE bits
# (KEYSIZE=4096 makes IKE_AUTH big enough for RFC 7383 fragments).
kt=${KEYTYPE:-rsa}
size=${KEYSIZE:+--size $KEYSIZE}
pki --gen --type "$kt" $size --outform pem > "$run/ca-key.pem"
pki --self --ca --lifetime 2 --in "$run/ca-key.pem" --type "$kt" --dn "CN=kmd interop CA" --outform pem > "$run/swanctl/x509ca/ca.pem"
for who in charon:127.0.0.1 kmd:127.0.0.3; do
  n=${who%%:*}; ip=${who#*:}
  pki --gen --type "$kt" $size --outform pem > "$run/$n-key.pem"
  pki --pub --in "$run/$n-key.pem" --type "$kt" | pki --issue --lifetime 2 --cacert "$run/swanctl/x509ca/ca.pem" \
    --cakey "$run/ca-key.pem" --type pub --dn "CN=$ip" --san "$ip" --outform pem > "$run/$n.pem"
done
cp "$run/charon.pem" "$run/swanctl/x509/charon.pem"
cp "$run/charon-key.pem" "$run/swanctl/private/charon.pem"
sed "s#ESP_PROPOSALS#$esp#; s#IKE_PROPOSALS#$props#" "$here/swanctl.conf" > "$run/swanctl/swanctl.conf"
unshare --mount --net sh -c "
  set -e
  mount -t tmpfs tmpfs /run
  mkdir -p /run/ipsec /var/run
  ip link set lo up
  ip addr add 10.1.0.1/32 dev lo
  ip addr add 127.0.0.3/8 dev lo 2>/dev/null || true
  export STRONGSWAN_CONF=$run/strongswan.conf
  /usr/lib/ipsec/charon >$run/charon.out 2>&1 </dev/null & pid=\$!
  trap 'kill \$pid' EXIT
  for i in 1 2 3 4 5 6 7 8 9 10; do [ -S $run/charon.vici ] && break; sleep 0.3; done
  swanctl --load-all --uri unix://$run/charon.vici --file $run/swanctl/swanctl.conf >$run/swanctl.out 2>&1 || { cat $run/swanctl.out; exit 1; }
  status=0
  SITESEC_STRONGSWAN=$run SITESEC_CAPTURE=\${SITESEC_CAPTURE:-} $run/ikesa.test -test.run 'TestStrongSwan' -test.v -test.timeout 60s || status=\$?
  swanctl --list-sas --uri unix://$run/charon.vici || true
  exit \$status
"
echo "charon log: $run/charon.log"
