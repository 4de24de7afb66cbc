#!/usr/bin/env bash
# Runs every test of Arca from a clean clone: installs what the tests need
# (a Python venv with the pinned OSS SDKs, Chromium, the Node packages), builds, then
# runs lint, the Rust unit/behaviour tests and the black-box suites that drive
# a real `arca serve` with the real SDKs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

step() { printf '\n==> %s\n' "$*"; }

step "Python venv with the OSS SDKs (tests/py/requirements.txt)"
if [ ! -x .venv-test/bin/python ]; then
  python3 -m venv .venv-test
fi
.venv-test/bin/pip install --quiet --disable-pip-version-check -r tests/py/requirements.txt

step "Chromium from Debian's packages (the console's browser tests)"
if ! command -v chromium >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
chromium --version

step "Node packages (tests/node)"
(cd tests/node && npm ci --no-audit --no-fund --loglevel=error)

step "cargo fmt --check and clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "Rust tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi

step "Build the server for the black-box suites"
cargo build --quiet -p arca
export ARCA_BIN="$root/target/debug/arca"

step "oss2 / alibabacloud-oss-v2 suite (pytest)"
.venv-test/bin/python -m pytest tests/py

step "ali-oss suite and the console in headless Chromium (node --test)"
(cd tests/node && npm test)
