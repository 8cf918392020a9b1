#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine with only Rust installed.
#
#   bash scripts/test-all.sh
#
# It installs what the tests need when it is missing (as root, or through sudo), then runs every
# test of the workspace with every feature. Tests that need servers (Redis, Memcached) start
# their own processes on free loopback ports and stop them.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the suite needs, as "command:package" pairs: the Redis tests start their own
# redis-server processes (build a cluster with redis-cli, and run a sentinel as
# `redis-server <conf> --sentinel`, so the separate redis-sentinel package is not needed); the
# Memcached tests start their own memcached processes.
needs=("redis-server:redis-server" "redis-cli:redis-tools" "memcached:memcached")

missing=()
for pair in "${needs[@]+"${needs[@]}"}"; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

cargo test --workspace --all-features
