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
  python3                       # tests/gateway/mockgw.py, tests/kannel/*.py
  kannel kannel-extras          # a real SMS gateway (bearerbox, smsbox, fakesmsc) for tests/kannel
  nginx-light                   # an HTTP front for gateway tests
  chromium fonts-wqy-microhei   # the report test: the HTML report printed to PDF headless,
  poppler-utils                 #   with a CJK font, and read back (pdfinfo, pdftotext)
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

# kannel and nginx start system services when installed (kannel's init script,
# nginx on port 80). Tests start their own loopback-only instances, so block
# service starts with a temporary policy-rc.d; an existing one is left alone.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  trap '$sudo rm -f "$policy"' EXIT
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
fi

$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
