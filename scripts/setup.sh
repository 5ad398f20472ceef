#!/usr/bin/env bash
# Installs the Debian packages yizhan needs to build and test, when missing.
# Idempotent: prints nothing and changes nothing when everything is present.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  liblua5.4-dev lua5.4          # the plugin language (and a reference interpreter)
  libsqlite3-dev sqlite3        # the one database file
  libcurl4-openssl-dev          # HTTP to SMS gateways
  libcjson-dev                  # JSON for host.json, kv values and the CLI
  libssl-dev                    # HMAC/SHA for provider signatures
  libcmocka-dev                 # C unit tests
  lua-check                     # lint for the shipped plugins
  tzdata                        # the IANA zones the config is checked against
  systemd                       # systemd-analyze: the cron cross-check in tests
  valgrind                      # memory checks in scripts/test.sh
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
