#!/usr/bin/env bash
# Builds and starts the chat demo: a River server with a fake model that answers token by token
# (in-memory provider), and its web page. Open the URL it prints, send a message, and reload the
# page while the answer streams: it goes on from where it was. Ctrl-C stops it.
#   ./scripts/demo.sh [--host H] [--port P] [--delay-ms N] [--redis URL] ...   (chat_server --help)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j "${RIVER_JOBS:-2}" --target chat_server
echo "river: starting the chat demo; open the address below in a browser"
exec ./build/release/examples/chat_demo/chat_server "$@"
