#!/bin/bash
# Install what the tests need on Debian 12 (idempotent: only what is
# missing). Needs root for apt-get; without root it says what is missing and
# the tests that need it skip.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

pkgs=(protobuf-compiler libprotobuf-dev iproute2 iputils-ping iperf3 tcpdump procps
      strongswan-charon strongswan-swanctl strongswan-pki
      libcharon-extra-plugins libstrongswan-standard-plugins libstrongswan-extra-plugins
      slapd ldap-utils openssl)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "deps: not root; missing Debian packages: ${missing[*]} (tests that need them skip)" >&2
	else
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
fi

# Go tools, pinned, into .cache/bin.
mkdir -p .cache/bin
[ -x .cache/bin/protoc-gen-go ] || GOBIN="$PWD/.cache/bin" go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
# A real SCEP CA with an HTTP CRL for pkid's tests, and its CLI.
[ -x .cache/bin/step-ca ] || GOBIN="$PWD/.cache/bin" CGO_ENABLED=0 go install github.com/smallstep/certificates/cmd/step-ca@v0.30.2
[ -x .cache/bin/step ] || GOBIN="$PWD/.cache/bin" CGO_ENABLED=0 go install github.com/smallstep/cli/cmd/step@v0.21.0
