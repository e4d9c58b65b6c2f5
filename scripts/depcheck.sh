#!/bin/bash
# depcheck: every external program and data file the build and the tests use
# must come from a Debian package that a fresh machine has
# (scripts/fresh-packages.txt, the package list of a new machine of CI's
# kind) or that scripts/deps.sh installs (or pulls in as a dependency).
# Otherwise `make test` would pass here and stop on a fresh machine.
#
# What is "used" is found, not listed by hand:
#  - every word in the Go sources' string literals and in the scripts,
#    Makefile and test templates that names a program on PATH
#    (exec.Command("ip", "netns", "exec", ns, "ping", ...) names both);
#  - absolute paths in string literals (/usr/lib/ipsec/charon);
#  - protoc's includes (import "google/protobuf/...") and the charon
#    plugins of every `load =` line in a strongswan.conf.
# Run it after scripts/deps.sh: a file that is not installed cannot be
# traced to its package, and is reported as missing.
set -euo pipefail
cd "$(dirname "$0")/.."

fresh=scripts/fresh-packages.txt
listed=$(sed -n '/^pkgs=(/,/)/p' scripts/deps.sh | tr -d '()' | sed 's/pkgs=//' | tr ' \t' '\n\n' | grep -E '^[a-z0-9][a-z0-9+.-]+$' | sort -u)
pulled=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
	--no-replaces --no-enhances $listed 2>/dev/null | grep -oE '^[a-z0-9][a-z0-9+.-]+' | sort -u)
allowed=$(printf '%s\n%s\n%s\n' "$listed" "$pulled" "$(cat "$fresh")" | sort -u)

srcs=$(git ls-files '*.go' '*.sh' '*.tmpl' '*.conf' 'Makefile' '*/Makefile' '*.yaml' | grep -v '^proto/pb/' | grep -v '^scripts/fresh-packages.txt$')

# Files to trace to a package, one per line: "path<TAB>why".
files=$(mktemp)
trap 'rm -f "$files"' EXIT

# Words naming programs on PATH.
words=$( { grep -hoE '"[A-Za-z][A-Za-z0-9_.+-]{1,40}"' $(echo "$srcs" | grep '\.go$') | tr -d '"'
	grep -hoE '\b[a-z][a-z0-9_.+-]{1,40}\b' $(echo "$srcs" | grep -v '\.go$'); } | sort -u)
for w in $words; do
	p=$(type -P "$w" 2>/dev/null) || continue
	printf '%s\t%s\n' "$p" "program $w" >> "$files"
done
# Absolute paths in Go string literals that exist here (others are not
# files the code needs: a test's forbidden path such as /etc/cron.d/x; one
# the code does need fails its test on a machine without it).
for p in $(grep -hoE '"/(usr|etc|lib|bin|sbin)/[A-Za-z0-9_./+-]+"' $(echo "$srcs" | grep '\.go$') | tr -d '"' | sort -u); do
	[ -e "$p" ] || continue
	printf '%s\t%s\n' "$p" "file $p" >> "$files"
done
# protoc's includes.
for i in $(grep -rhoE '^import "google/[^"]+"' proto --include='*.proto' | sed 's/import "//; s/"//' | sort -u); do
	printf '%s\t%s\n' "/usr/include/$i" "protoc include $i" >> "$files"
done
# charon plugins.
for pl in $(grep -rhoE '^\s*load = .*' $(echo "$srcs" | grep -E '\.(conf|tmpl|sh)$') | sed 's/.*load = //' | tr ' ' '\n' | sort -u); do
	printf '%s\t%s\n' "/usr/lib/ipsec/plugins/libstrongswan-$pl.so" "charon plugin $pl" >> "$files"
done

# Every spelling of each path (usrmerge: /bin is /usr/bin), then one dpkg -S
# for all of them: "pkg[, pkg]: path" lines.
owners=$(sort -u "$files" | cut -f1 | while read -r p; do
	[ -e "$p" ] || continue
	printf '%s\n' "$p" "$(readlink -f "$p")" "${p/#\/usr\//\/}" "/usr$p"
done | sort -u | xargs -r dpkg -S 2>/dev/null | grep -v '^diversion' || true)

fail=0
while IFS=$'\t' read -r path why; do
	if [ ! -e "$path" ]; then
		echo "depcheck: $why: $path is not installed (scripts/deps.sh should install its package)" >&2
		fail=1
		continue
	fi
	pkg=""
	for cand in "$path" "$(readlink -f "$path")" "${path/#\/usr\//\/}" "/usr$path"; do
		pkg=$(awk -v f="$cand" -F': ' '$2 == f { print $1; exit }' <<<"$owners" | cut -d, -f1 | cut -d: -f1)
		[ -n "$pkg" ] && break
	done
	[ -n "$pkg" ] || continue # not from a Debian package: the Go toolchain, .cache/bin
	if ! grep -qxF "$pkg" <<<"$allowed"; then
		echo "depcheck: $why ($path) comes from Debian package $pkg, which a fresh machine lacks and scripts/deps.sh does not install" >&2
		fail=1
	fi
done < <(sort -u "$files")
if [ $fail = 0 ]; then
	echo "depcheck: $(sort -u "$files" | wc -l) programs and files used by the build and tests, each from a fresh machine's package or scripts/deps.sh"
fi
exit $fail
