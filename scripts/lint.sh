#!/bin/sh
# gofmt, go vet, generated protobuf code up to date, no daemon module
# importing another daemon module (DESIGN.md: daemons share only proto/
# and services/), and scripts/depcheck.sh (run after scripts/deps.sh).
set -eu
cd "$(dirname "$0")/.."
fail=0

bad=$(gofmt -l proto services cfgd kmd pkid fwdd tests)
if [ -n "$bad" ]; then
	echo "lint: gofmt needed:" $bad >&2
	fail=1
fi

go vet ./proto/... ./services/... ./cfgd/... ./kmd/... ./pkid/... ./fwdd/... ./tests/... || fail=1
# The charon-driven tests of kmd/ikesa build only with -tags strongswan.
go vet -tags strongswan ./kmd/ikesa || fail=1
# The whole-system benchmarks build only with -tags bench (make bench-net).
go vet -tags bench ./tests/bench || fail=1

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
scripts/proto.sh "$tmp" >/dev/null
if ! diff -r "$tmp/pb" proto/pb >/dev/null; then
	echo "lint: proto/pb is stale: run make proto and commit" >&2
	fail=1
fi

for d in cfgd kmd pkid fwdd; do
	for other in cfgd kmd pkid fwdd; do
		[ "$d" = "$other" ] && continue
		hits=$(go list -deps -test "./$d/..." 2>/dev/null | grep "^github.com/sitesec/sitesec/$other\(/\|$\)" || true)
		if [ -n "$hits" ]; then
			echo "lint: $d imports $other:" $hits >&2
			fail=1
		fi
	done
	hits=$(go list -deps -test "./services/..." "./proto/..." 2>/dev/null | grep "^github.com/sitesec/sitesec/$d\(/\|$\)" || true)
	if [ -n "$hits" ]; then
		echo "lint: shared code imports $d:" $hits >&2
		fail=1
	fi
done
# Every program and data file the build and tests use comes from a package
# that a fresh machine has or scripts/deps.sh installs.
scripts/depcheck.sh || fail=1
exit $fail
