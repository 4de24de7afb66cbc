#!/usr/bin/env bash
# Reproduces docs/performance.md: builds the release binary, starts a fresh
# `arca serve` on loopback, runs `arca bench` over every encryption mode, size,
# concurrency and workload, and writes bench-results/<date>.{json,txt}.
# Usage: scripts/bench.sh [extra `arca bench` flags, e.g. --duration 10]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p arca
out=bench-results
mkdir -p "$out"
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
export ARCA_ROOT_ACCESS_KEY_ID=LTAIbenchkey000001
export ARCA_ROOT_ACCESS_KEY_SECRET=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
target/release/arca serve --data-dir "$work/data" --listen 127.0.0.1:19500 --kms-listen 127.0.0.1:19501 --console-listen 127.0.0.1:0 \
  >"$work/stdout" 2>"$work/stderr" &
pid=$!
for _ in $(seq 100); do
  if (exec 3<>/dev/tcp/127.0.0.1/19500) 2>/dev/null; then break; fi
  sleep 0.1
done
stamp=$(date -u +%Y%m%dT%H%M%SZ)
target/release/arca bench --endpoint http://127.0.0.1:19500 --kms-endpoint http://127.0.0.1:19501 \
  --server-pid "$pid" --json "$out/$stamp.json" "$@" | tee "$out/$stamp.txt"
echo "results: $out/$stamp.json"
