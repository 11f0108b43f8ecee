#!/usr/bin/env bash
# Installs what River needs from Debian 12's packages, when it is missing: the build tools, the
# libraries, redis-server for the tests and the demo, and Chromium, Node.js (18 or newer: Debian
# 12's nodejs is 18) and npm for the browser test. Safe to run again: it installs nothing that is
# already there.
set -euo pipefail

packages=(
  g++ clang cmake ninja-build pkg-config
  libboost1.81-all-dev libhiredis-dev nlohmann-json3-dev catch2 libssl-dev
  redis-server redis-tools
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
# A Node.js older than 18 is kept (it is not Debian's), but playwright-core refuses to run on it.
if command -v node >/dev/null; then
  node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if ((node_major < 18)); then
    echo "river: warning: the browser test needs Node.js 18 or newer, $(command -v node) is $(node --version)" >&2
  fi
fi
if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "river: installing ${missing[*]}"
sudo=()
if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
