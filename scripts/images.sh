#!/bin/bash
# Build the FROM-scratch container images of sitesec (make images; the
# Makefile builds bin/ first): sitesec/{cfgd,kmd,pkid,fwdd,cli}, the NATS
# server (sitesec/nats, nats-server built statically from the module that
# services already requires) and the test host (sitesec/host: nettool).
# No registry is contacted: docker build --pull=false of FROM scratch.
#
#   scripts/images.sh            tag :dev (or $SITESEC_TAG)
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${SITESEC_TAG:-dev}
export CGO_ENABLED=0

for b in cfgd kmd pkid fwdd cli; do
	[ -x "bin/$b" ] || { echo "images: bin/$b missing: run make build" >&2; exit 1; }
done
(cd services && go build -trimpath -o ../bin/nats-server github.com/nats-io/nats-server/v2)
(cd tests && go build -trimpath -o ../bin/nettool ./cmd/nettool)

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
# image name -> binary
for pair in cfgd:cfgd kmd:kmd pkid:pkid fwdd:fwdd cli:cli nats:nats-server host:nettool; do
	name=${pair%%:*} bin=${pair#*:}
	rm -f "$ctx"/*
	cp "bin/$bin" "$ctx/$bin"
	# The legacy builder warns on every build that it is deprecated: keep
	# standard error for failures only.
	if ! out=$(docker build --pull=false -q -f deploy/Dockerfile --build-arg "BIN=$bin" \
		--label org.sitesec.binary="$bin" -t "sitesec/$name:$tag" "$ctx" 2>&1); then
		echo "$out" >&2
		exit 1
	fi
	echo "sitesec/$name:$tag"
done
