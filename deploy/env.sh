#!/bin/bash
# Print fresh random bus passwords for docker compose, one per bus user:
#   deploy/env.sh > deploy/.env && chmod 600 deploy/.env
# (two-routers: deploy/env.sh > deploy/two-routers/.env). compose reads
# .env beside the compose file; the nats container gets every password,
# each daemon (and the bus-setup one-shot, as sitesecd) only its own.
set -euo pipefail
umask 077
for u in SITESECD CFGD KMD PKID FWDD CLI; do
	printf 'SITESEC_PW_%s=%s\n' "$u" "$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')"
done
