#!/usr/bin/env bash
# Dependency checks with cargo-deny (deny.toml): licenses, bans (no OpenSSL; duplicate
# versions are warnings), sources, and the RustSec advisories when their database can
# be fetched. Installs cargo-deny when missing.
# Usage: tests/deny.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deny --version >/dev/null 2>&1; then
  echo "installing cargo-deny"
  cargo install cargo-deny --locked
fi

# The advisory database is a git repository on GitHub; without it (no network, or
# only a package registry reachable) check what needs no network.
if timeout 180 cargo deny fetch db >/dev/null 2>&1; then
  exec cargo deny check
fi
echo "cargo-deny: advisory database unavailable; checking licenses, bans and sources only"
# Offline, cargo-deny reads `cargo metadata` for every platform: fetch the crates only
# other platforms use (the build never downloads them) from the registry first.
cargo fetch --locked >/dev/null
exec cargo deny --offline check licenses bans sources
