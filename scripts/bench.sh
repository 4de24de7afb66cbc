#!/usr/bin/env bash
# Reproduces docs/performance.md: builds the release binary, measures the
# machine's physical limits (MD5, AES-256-GCM and SM4 in OpenSSL, the disk),
# starts a fresh `arca serve` on loopback, runs `arca bench` over every
# encryption mode, size, concurrency and workload, and writes
# bench-results/<date>.{json,txt}.
#
# Usage: scripts/bench.sh [extra `arca bench` flags, e.g. --duration 10]
#   ARCA_BENCH_TMPDIR=/dev/shm scripts/bench.sh   # data in memory: the CPU path without the disk
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p arca
out=bench-results
mkdir -p "$out"
work=$(mktemp -d ${ARCA_BENCH_TMPDIR:+-p "$ARCA_BENCH_TMPDIR"})
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
stamp=$(date -u +%Y%m%dT%H%M%SZ)
report="$out/$stamp.txt"

{
  echo "# physical limits, $(date -u +%FT%TZ), data in $work"
  for alg in md5 "-evp aes-256-gcm" "-evp sm4-ecb"; do
    # shellcheck disable=SC2086
    openssl speed -seconds 2 -bytes 16384 $alg 2>/dev/null | tail -1 | sed "s/^/openssl 16 KiB: /" || true
  done
  for mib in 64 512; do
    dd if=/dev/zero of="$work/dd" bs=1M count=$mib conv=fsync 2>&1 | tail -1 | sed "s/^/disk write ${mib} MiB + fsync: /"
    rm -f "$work/dd"
  done
  echo
} | tee "$report"

# Overwritten objects are collected at once (the default keeps them 5 minutes
# for reads in flight): a run's footprint stays at its live objects instead of
# growing by the write rate, which on tmpfs would fill memory and on disk
# would make later cases pay for earlier ones' write-back.
cat >"$work/bench.toml" <<'TOML'
gc_interval_secs = 1
garbage_delay_secs = 0
TOML
export ARCA_ROOT_ACCESS_KEY_ID=LTAIbenchkey000001
export ARCA_ROOT_ACCESS_KEY_SECRET=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
target/release/arca serve --config "$work/bench.toml" --data-dir "$work/data" \
  --listen 127.0.0.1:19500 --kms-listen 127.0.0.1:19501 --console-listen 127.0.0.1:0 \
  >"$work/stdout" 2>"$work/stderr" &
pid=$!
for _ in $(seq 100); do
  if (exec 3<>/dev/tcp/127.0.0.1/19500) 2>/dev/null; then break; fi
  sleep 0.1
done
target/release/arca bench --endpoint http://127.0.0.1:19500 --kms-endpoint http://127.0.0.1:19501 \
  --server-pid "$pid" --json "$out/$stamp.json" "$@" | tee -a "$report"
echo "results: $out/$stamp.json, $report"
