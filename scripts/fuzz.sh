#!/bin/sh
# Run every fuzz target of the tree for $1 (default 10s) each.
set -eu
cd "$(dirname "$0")/.."
t=${1:-10s}
for dir in $(grep -rl --include='*_test.go' '^func Fuzz' proto services cfgd kmd pkid fwdd | xargs -n1 dirname | sort -u); do
	for f in $(grep -h '^func Fuzz' "$dir"/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do
		echo "== $dir $f"
		go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" "./$dir"
	done
done
