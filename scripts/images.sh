#!/bin/bash
# Build the FROM-scratch container images of sitesec (make images):
# sitesec/{sitesecd,cfgd,kmd,pkid,fwdd,cli}, the NATS server (sitesec/nats:
# nats-server built from the module that services already requires) and
# the test host (sitesec/host: tests/cmd/nettool). Every binary is built
# here, statically (CGO_ENABLED=0), into a private directory: a scratch
# image has no dynamic loader, so a binary from bin/ built some other way
# would not start. No registry is contacted: docker build --pull=false of
# FROM scratch.
#
#   scripts/images.sh            tag :dev (or $SITESEC_TAG)
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${SITESEC_TAG:-dev}
export CGO_ENABLED=0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin"
out=$PWD/$work
[ "${work:0:1}" = / ] && out=$work
go build -trimpath -o "$out/bin/cfgd" ./cfgd/cmd/cfgd
go build -trimpath -o "$out/bin/cli" ./cfgd/cmd/cli
go build -trimpath -o "$out/bin/kmd" ./kmd/cmd/kmd
go build -trimpath -o "$out/bin/pkid" ./pkid/cmd/pkid
go build -trimpath -o "$out/bin/fwdd" ./fwdd/cmd/fwdd
(cd services && go build -trimpath -o "$out/bin/sitesecd" ./cmd/sitesecd)
(cd services && go build -trimpath -o "$out/bin/nats-server" github.com/nats-io/nats-server/v2)
(cd tests && go build -trimpath -o "$out/bin/nettool" ./cmd/nettool)

# image name -> binary
for pair in sitesecd:sitesecd cfgd:cfgd kmd:kmd pkid:pkid fwdd:fwdd cli:cli nats:nats-server host:nettool; do
	name=${pair%%:*} bin=${pair#*:}
	ctx="$out/ctx-$name"
	mkdir -p "$ctx"
	cp "$out/bin/$bin" "$ctx/$bin"
	# The legacy builder warns on every build that it is deprecated: keep
	# standard error for failures only.
	if ! log=$(docker build --pull=false -q -f deploy/Dockerfile --build-arg "BIN=$bin" \
		--label org.sitesec.binary="$bin" -t "sitesec/$name:$tag" "$ctx" 2>&1); then
		echo "$log" >&2
		exit 1
	fi
	echo "sitesec/$name:$tag"
done
