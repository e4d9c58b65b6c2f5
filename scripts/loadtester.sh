#!/bin/sh
# Builds strongSwan's load-tester plugin (not packaged by Debian) for the
# installed charon, from Debian's own source package, into
# .cache/loadtester/libstrongswan-load-tester.so (issue 15 goal 2: the IKE
# setup-rate benchmark, tests/bench TestSetupRate). Prints the path of the
# plugin. Idempotent: a plugin already built is reused.
#
# What it does: adds deb-src lines for the archive this machine already
# uses (if none), installs the source package's Build-Depends (less the
# packaging tools) and `apt-get source` of the strongswan
# version whose source the archive serves (the security suite's newest
# source may be missing on the mirror: then the newest one that downloads),
# configures it with debian/rules' CONFIGUREARGS plus --enable-load-tester
# (so config.h and the headers match Debian's charon: mediation, IKEv1,
# paths), and builds only src/libcharon/plugins/load_tester. charon loads it
# from the directory the benchmark names in strongswan.conf
# (charon.plugins.load-tester, with `load` listing load-tester). The
# packages it installed for the build are purged again before it exits.
set -eu
cd "$(dirname "$0")/.."
out=.cache/loadtester
so=$out/libstrongswan-load-tester.so
if [ -s "$so" ]; then
	echo "$PWD/$so"
	exit 0
fi
mkdir -p "$out"
export DEBIAN_FRONTEND=noninteractive
log=$out/build.log
: >"$log"

if ! grep -rqs '^Types:.*deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
	src=/etc/apt/sources.list.d/sitesec-deb-src.sources
	# The same archive and suites as the binary lines, as deb-src.
	sed -n 's/^Types: deb$/Types: deb-src/p; /^URIs:/p; /^Suites:/p; /^Components:/p; /^Signed-By:/p; /^$/p' \
		/etc/apt/sources.list.d/debian.sources >"$src"
	apt-get update -q >>"$log" 2>&1
fi

# Versions of the source package the archive lists, newest first; the
# installed charon's version first of all.
have=$(dpkg-query -W -f='${Version}' strongswan-charon 2>/dev/null || true)
versions=$( (echo "$have"; apt-cache showsrc strongswan | sed -n 's/^Version: //p' | sort -r -V) | awk 'NF && !seen[$0]++')
work=$out/src
rm -rf "$work"
mkdir -p "$work"
got=
for v in $versions; do
	if (cd "$work" && apt-get source -q --download-only "strongswan=$v") >>"$log" 2>&1; then
		got=$v
		break
	fi
	echo "strongswan $v: source not served, trying the next" >>"$log"
done
if [ -z "$got" ]; then
	echo "loadtester.sh: no strongswan source package could be downloaded (see $log)" >&2
	exit 1
fi
# The Build-Depends the configure step needs: the first of each
# alternative, without versions and architecture lists, and without the
# packaging tools (debhelper, dh-apparmor, po-debconf: not `apt-get
# build-dep`, which would also leave programs on the machine that the
# project's depcheck does not expect).
deps=$(sed -n '/^Build-Depends:/{s/^Build-Depends://;p}' "$work"/strongswan_*.dsc | tr ',' '\n' |
	sed 's/|.*//; s/([^)]*)//g; s/\[[^]]*\]//g; s/[[:space:]]//g' |
	grep -v -e '^$' -e '^debhelper' -e '^dh-' -e '^po-debconf$' -e '^dpkg-dev$' -e '^systemd$' -e '^tzdata$')
echo "installing $deps" >>"$log"
# What is installed now: whatever the build brings in beyond it is purged
# when the script ends, built or not (headers and tools would otherwise
# stay on the machine, with programs such as /usr/bin/crc32 on PATH that
# depcheck rightly reports).
before=$out/packages-before
dpkg-query -W -f='${Package}\n' | sort >"$before"
purge() {
	added=$(dpkg-query -W -f='${Package}\n' | sort | comm -13 "$before" -)
	if [ -n "$added" ]; then
		echo "purging $added" >>"$log"
		# shellcheck disable=SC2086 # one word per package
		apt-get -y -q purge $added >>"$log" 2>&1 || echo "loadtester.sh: purge failed (see $log)" >&2
	fi
	rm -f "$before"
}
trap purge EXIT
# shellcheck disable=SC2086 # one word per package
apt-get -y -q --no-install-recommends install $deps >>"$log" 2>&1
(cd "$work" && dpkg-source -x strongswan_*.dsc tree) >>"$log" 2>&1
tree=$work/tree

# debian/rules' CONFIGUREARGS: the common list and the amd64/linux
# additions, each line's flags up to a comment.
args=$(awk '
	/^[ \t]*CONFIGUREARGS[ \t]*[:+]?=/ { on = 1; sub(/^[^=]*=/, "") }
	on { line = $0; sub(/#.*/, "", line); cont = (line ~ /\\[ \t]*$/); gsub(/\\/, "", line); printf "%s ", line; if (!cont) on = 0 }
' "$tree/debian/rules" | tr -s ' \t' '  ')
# Keep only flags, and nothing of another architecture's branch.
args=$(for a in $args; do case $a in --disable-kernel-netlink | --enable-kernel-pfkey | --enable-kernel-pfroute | --with-group=wheel | --enable-padlock) ;; --*) printf '%s ' "$a" ;; esac; done)
echo "configure $args --enable-load-tester" >>"$log"
(cd "$tree" && ./configure --prefix=/usr --sysconfdir=/etc $args --enable-load-tester) >>"$log" 2>&1
# Only the plugin: it compiles against the tree's headers and resolves
# libstrongswan's and libcharon's symbols in the running charon.
(cd "$tree/src/libcharon/plugins/load_tester" && make -j2) >>"$log" 2>&1
cp "$tree/src/libcharon/plugins/load_tester/.libs/libstrongswan-load-tester.so" "$so"
echo "strongswan $got" >"$out/version"
echo "$PWD/$so"
