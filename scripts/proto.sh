#!/bin/sh
# Generate the Go code of proto/sitesec/v1/*.proto into OUT/pb.
# Usage: scripts/proto.sh OUTDIR   (OUTDIR=proto regenerates in place)
set -eu
out=${1:-proto}
cd "$(dirname "$0")/.."
gen=.cache/bin/protoc-gen-go
if [ ! -x "$gen" ]; then
	GOBIN="$PWD/.cache/bin" go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
fi
want="libprotoc 3.21.12"
have=$(protoc --version)
if [ "$have" != "$want" ]; then
	echo "proto.sh: need $want (Debian 12 protobuf-compiler), have $have" >&2
	exit 1
fi
mkdir -p "$out"
protoc -I proto -I /usr/include --plugin=protoc-gen-go="$gen" \
	--go_out="$out" --go_opt=module=github.com/sitesec/sitesec/proto \
	proto/sitesec/v1/*.proto
