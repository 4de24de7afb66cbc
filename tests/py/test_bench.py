"""Smoke test of `arca bench`: one second per case against a test server, and
a well-formed report (no timing is asserted)."""

import json
import subprocess

from arca_testlib import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ARCA_BIN


def test_bench_produces_a_well_formed_report(server, tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            str(ARCA_BIN), "bench",
            "--endpoint", server.endpoint,
            "--kms-endpoint", server.kms_endpoint,
            "--access-key-id", ACCESS_KEY_ID,
            "--access-key-secret", ACCESS_KEY_SECRET,
            "--sizes", "4KiB,100KiB",
            "--concurrency", "1,2",
            "--workloads", "put,get,mixed",
            "--sse", "none,KMS",
            "--duration", "0.5",
            "--rounds", "2",
            "--server-pid", str(server.pid),
            "--json", str(out),
        ],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ops/s" in proc.stdout and "MiB/s" in proc.stdout
    results = json.loads(out.read_text())["results"]
    assert len(results) == 2 * 2 * 2 * 3
    for r in results:
        assert r["ops"] > 0 and r["errors"] == 0, r
        assert r["ops_per_sec"] > 0 and r["p99_ms"] >= r["p50_ms"] > 0
        assert r["mib_per_sec"] > 0 and r["peak_rss_mib"] > 0
        expected_kms = 0.0 if r["sse"] == "none" else 1.0
        # One GenerateDataKey per PUT, one Decrypt per GET under KMS; none without.
        assert abs(r["kms_calls_per_op"] - expected_kms) < 0.05, r
        assert r["server_cpu_ms_per_op"] >= 0, r
    # The server's CPU time is read from /proc (10 ms ticks): over all cases it
    # cannot be zero.
    assert sum(r["server_cpu_ms_per_op"] * r["ops"] for r in results) > 0
