#!/usr/bin/env bash
# Installs what River needs from Debian 12's packages, when it is missing: the build tools, the
# libraries, redis-server for the tests and the demo, and Node.js with Chromium for the browser test. Safe to run again: it installs nothing
# that is already there.
set -euo pipefail

packages=(
  g++ clang cmake ninja-build pkg-config
  libboost1.81-all-dev libhiredis-dev nlohmann-json3-dev catch2 libssl-dev
  redis-server
  chromium
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm by command: a Node.js from another source brings its own npm, which Debian's
# npm package would conflict with.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "river: installing ${missing[*]}"
sudo=()
if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
