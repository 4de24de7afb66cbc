//! `arca bench`: a load generator that speaks the OSS dialect with Arca's own
//! signer (or plain presigned URLs, to measure other servers fairly).
//!
//! For every combination of encryption (via bucket default rules), object
//! size, concurrency and workload it runs for a fixed time and reports ops/s,
//! MiB/s, p50/p99 latency, KMS calls per operation (from the KMS metering)
//! and, with `--server-pid`, the server's peak RSS and CPU time per
//! operation during the case (the CPU time shows what encryption costs the
//! server even when the machine, shared with the load generator, is saturated). Output: a
//! table on the terminal and JSON for scripts.
//!
//! Each case's time is split into `--rounds` slices, and every round runs all
//! encryption modes of a case back to back before the next round starts: the
//! cases compared in a ratio share the machine's drift (disk write-back,
//! other load) instead of one of them catching a slow spell alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use arca_oss::sign::{SignedParts, v1_signature, v1_string_to_sign};
use bytes::Bytes;
use clap::Args;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Options of `arca bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// OSS endpoint, e.g. http://127.0.0.1:9000.
    #[arg(long, default_value = "http://127.0.0.1:9000")]
    endpoint: String,
    /// KMS endpoint, for KMS calls per operation (Arca only).
    #[arg(long)]
    kms_endpoint: Option<String>,
    /// Access key id (default: ARCA_ROOT_ACCESS_KEY_ID).
    #[arg(long, env = "ARCA_ROOT_ACCESS_KEY_ID")]
    access_key_id: Option<String>,
    /// Access key secret (default: ARCA_ROOT_ACCESS_KEY_SECRET).
    #[arg(long, env = "ARCA_ROOT_ACCESS_KEY_SECRET", hide_env_values = true)]
    access_key_secret: Option<String>,
    /// Object sizes (B, KiB, MiB suffixes).
    #[arg(long, value_delimiter = ',', default_value = "4KiB,1MiB,64MiB")]
    sizes: Vec<String>,
    /// Concurrent clients.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    concurrency: Vec<usize>,
    /// Workloads: put, get, mixed.
    #[arg(long, value_delimiter = ',', default_value = "put,get")]
    workloads: Vec<String>,
    /// Encryption, set as the bucket default: none, AES256, SM4, KMS.
    #[arg(long, value_delimiter = ',', default_value = "none,AES256,SM4,KMS")]
    sse: Vec<String>,
    /// Seconds per case (split over the rounds).
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Rounds per case: the encryption modes of a case take turns this many times.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Server process id, to report its peak RSS per case.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Presigned PUT URL (measures any OSS/S3 server; no signing by the bench).
    #[arg(long, requires = "presigned_get")]
    presigned_put: Option<String>,
    /// Presigned GET URL of the same object.
    #[arg(long)]
    presigned_get: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
struct CaseResult {
    sse: String,
    workload: String,
    size: u64,
    concurrency: usize,
    ops: u64,
    errors: u64,
    seconds: f64,
    ops_per_sec: f64,
    mib_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    kms_calls_per_op: Option<f64>,
    peak_rss_mib: Option<f64>,
    /// Server CPU time (user + system, all threads) per operation.
    server_cpu_ms_per_op: Option<f64>,
    /// Server CPU time during the case.
    #[serde(skip)]
    server_cpu_ms: Option<f64>,
    /// Per-operation latencies (ms), sorted; kept to merge rounds.
    #[serde(skip)]
    latencies: Vec<f64>,
    /// KMS calls counted during the case.
    #[serde(skip)]
    kms_calls: Option<u64>,
}

impl CaseResult {
    /// One result for two rounds of the same case.
    fn merge(self, other: CaseResult) -> CaseResult {
        let mut latencies = [self.latencies, other.latencies].concat();
        latencies.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        let ops = self.ops + other.ops;
        let seconds = self.seconds + other.seconds;
        let kms_calls = self.kms_calls.zip(other.kms_calls).map(|(a, b)| a + b);
        let server_cpu_ms = self.server_cpu_ms.zip(other.server_cpu_ms).map(|(a, b)| a + b);
        CaseResult {
            ops,
            errors: self.errors + other.errors,
            seconds,
            ops_per_sec: ops as f64 / seconds,
            mib_per_sec: (ops * self.size) as f64 / seconds / (1 << 20) as f64,
            p50_ms: percentile(&latencies, 0.50),
            p99_ms: percentile(&latencies, 0.99),
            kms_calls_per_op: kms_calls.filter(|_| ops > 0).map(|k| k as f64 / ops as f64),
            peak_rss_mib: match (self.peak_rss_mib, other.peak_rss_mib) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            },
            server_cpu_ms_per_op: server_cpu_ms.filter(|_| ops > 0).map(|c| c / ops as f64),
            server_cpu_ms,
            latencies,
            kms_calls,
            ..self
        }
    }
}

fn parse_size(s: &str) -> anyhow::Result<u64> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("MiB") {
        (n, 1 << 20)
    } else if let Some(n) = s.strip_suffix("KiB") {
        (n, 1 << 10)
    } else if let Some(n) = s.strip_suffix("GiB") {
        (n, 1 << 30)
    } else {
        (s.strip_suffix('B').unwrap_or(s), 1)
    };
    Ok(num.trim().parse::<u64>().with_context(|| format!("size {s:?}"))? * mult)
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

struct Oss {
    client: HttpClient,
    endpoint: String,
    key_id: String,
    secret: String,
}

impl Oss {
    /// One V1-signed request; returns status, headers and the body length (drained).
    async fn send(
        &self,
        method: Method,
        bucket: &str,
        key: Option<&str>,
        query: &[(String, String)],
        headers: &[(&str, String)],
        body: Bytes,
    ) -> anyhow::Result<(StatusCode, HeaderMap, u64)> {
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        let mut signed_headers: Vec<(String, Vec<u8>)> =
            headers.iter().map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec())).collect();
        signed_headers.push(("date".into(), date.as_bytes().to_vec()));
        let parts = SignedParts { method: method.as_str(), bucket: Some(bucket), key, query, headers: &signed_headers };
        let signature = v1_signature(&self.secret, &v1_string_to_sign(&parts, date.as_bytes()));
        let path = match key {
            Some(k) => format!("/{bucket}/{}", arca_oss::sign::uri_encode(k, true)),
            None => format!("/{bucket}/"),
        };
        let q = query
            .iter()
            .map(
                |(k, v)| if v.is_empty() { k.clone() } else { format!("{k}={}", arca_oss::sign::uri_encode(v, false)) },
            )
            .collect::<Vec<_>>()
            .join("&");
        let uri =
            if q.is_empty() { format!("{}{path}", self.endpoint) } else { format!("{}{path}?{q}", self.endpoint) };
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("date", &date)
            .header("authorization", format!("OSS {}:{signature}", self.key_id));
        for (n, v) in headers {
            req = req.header(*n, v);
        }
        self.exchange(req.body(Full::new(body))?).await
    }

    async fn exchange(&self, req: Request<Full<Bytes>>) -> anyhow::Result<(StatusCode, HeaderMap, u64)> {
        let resp = self.client.request(req).await?;
        let (parts, mut body) = resp.into_parts();
        let mut n = 0u64;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                n += data.len() as u64;
            }
        }
        Ok((parts.status, parts.headers, n))
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time (user + system, all threads) a process has used, in ms.
fn cpu_ms(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesized command name: state is the first, utime
    // and stime the 12th and 13th (proc(5)), in USER_HZ ticks (100 on Linux).
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 * 10.0)
}

/// Total KMS calls of the account, from the KMS metering (Arca extension action).
async fn kms_calls(client: &HttpClient, kms: &str, key_id: &str, secret: &str) -> Option<u64> {
    let ts = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"))
        .ok()?;
    let mut params: Vec<(String, String)> = [
        ("Action", "DescribeKmsUsage"),
        ("Version", "2016-01-20"),
        ("Format", "JSON"),
        ("AccessKeyId", key_id),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("Timestamp", ts.as_str()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    params.push(("SignatureNonce".into(), hex::encode(rand::random::<[u8; 16]>())));
    let sig = arca_kms_api::sign::signature(secret, &arca_kms_api::sign::string_to_sign("GET", &params));
    params.push(("Signature".into(), sig));
    let q = params.iter().map(|(k, v)| format!("{k}={}", arca_kms_api::sign::enc(v))).collect::<Vec<_>>().join("&");
    let resp = client.get(format!("{kms}/?{q}").parse().ok()?).await.ok()?;
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
    v["TotalCalls"].as_u64()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn setup_bucket(oss: &Oss, bucket: &str, sse: &str) -> anyhow::Result<()> {
    let (s, _, _) = oss.send(Method::PUT, bucket, None, &[], &[], Bytes::new()).await?;
    if !s.is_success() && s != StatusCode::CONFLICT {
        bail!("creating bucket {bucket}: {s}");
    }
    let q = [("encryption".to_string(), String::new())];
    if sse == "none" {
        oss.send(Method::DELETE, bucket, None, &q, &[], Bytes::new()).await?;
    } else {
        let xml = format!(
            "<ServerSideEncryptionRule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>{sse}</SSEAlgorithm></ApplyServerSideEncryptionByDefault></ServerSideEncryptionRule>"
        );
        let (s, _, _) = oss.send(Method::PUT, bucket, None, &q, &[], Bytes::from(xml)).await?;
        if !s.is_success() {
            bail!("setting {sse} on {bucket}: {s}");
        }
    }
    Ok(())
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: HttpClient = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(64).build(connector);
    let oss = Arc::new(Oss {
        client: client.clone(),
        endpoint: args.endpoint.trim_end_matches('/').to_owned(),
        key_id: args.access_key_id.clone().unwrap_or_default(),
        secret: args.access_key_secret.clone().unwrap_or_default(),
    });
    if args.presigned_put.is_none() && oss.key_id.is_empty() {
        bail!("give --access-key-id/--access-key-secret (or ARCA_ROOT_ACCESS_KEY_ID/_SECRET), or presigned URLs");
    }
    let sizes: Vec<u64> = args.sizes.iter().map(|s| parse_size(s)).collect::<Result<_, _>>()?;
    let sse_list = if args.presigned_put.is_some() { vec!["n/a".to_string()] } else { args.sse.clone() };
    let mut results = Vec::new();
    let total = sse_list.len() * sizes.len() * args.concurrency.len() * args.workloads.len();
    let mut done = 0;
    let bucket_of = |sse: &str| format!("arca-bench-{}", sse.to_ascii_lowercase().replace('/', ""));
    if args.presigned_put.is_none() {
        for sse in &sse_list {
            setup_bucket(&oss, &bucket_of(sse), sse).await?;
        }
    }
    let slice = args.duration / f64::from(args.rounds);
    for &size in &sizes {
        let payload = Bytes::from((0..size).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect::<Vec<u8>>());
        for &conc in &args.concurrency {
            for workload in &args.workloads {
                let mut merged: Vec<Option<CaseResult>> = vec![None; sse_list.len()];
                for round in 1..=args.rounds {
                    for (m, sse) in sse_list.iter().enumerate() {
                        eprint!(
                            "\r[{}/{total}] {workload} {size} B x{conc}, round {round}/{}: {sse} ...                ",
                            done + 1,
                            args.rounds
                        );
                        let bucket = bucket_of(sse);
                        let r = run_case(
                            &args,
                            &oss,
                            &client,
                            &bucket,
                            sse,
                            workload,
                            payload.clone(),
                            conc,
                            slice,
                            round == 1,
                        )
                        .await?;
                        merged[m] = Some(match merged[m].take() {
                            Some(prev) => prev.merge(r),
                            None => r,
                        });
                    }
                }
                done += sse_list.len();
                results.extend(merged.into_iter().flatten());
            }
        }
    }
    eprintln!();
    print_table(&results);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&serde_json::json!({ "results": results }))?)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn run_case(
    args: &BenchArgs,
    oss: &Arc<Oss>,
    client: &HttpClient,
    bucket: &str,
    sse: &str,
    workload: &str,
    payload: Bytes,
    conc: usize,
    duration: f64,
    first_round: bool,
) -> anyhow::Result<CaseResult> {
    let size = payload.len() as u64;
    // GETs read objects written first, outside the measured window.
    if first_round && workload != "put" && args.presigned_put.is_none() {
        for w in 0..conc {
            oss.send(Method::PUT, bucket, Some(&format!("get/{size}/{w}")), &[], &[], payload.clone()).await?;
        }
    }
    if let (true, Some(url)) = (first_round, &args.presigned_put) {
        let req = Request::builder().method(Method::PUT).uri(url).body(Full::new(payload.clone()))?;
        oss.exchange(req).await?;
    }
    let kms_before = match &args.kms_endpoint {
        Some(k) => kms_calls(client, k, &oss.key_id, &oss.secret).await,
        None => None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = args.server_pid.map(|pid| {
        let (stop, peak) = (stop.clone(), peak.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Some(r) = rss_kib(pid) {
                    peak.fetch_max(r, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    });
    let cpu_before = args.server_pid.and_then(cpu_ms);
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..conc {
        let (oss, stop, errors, payload) = (oss.clone(), stop.clone(), errors.clone(), payload.clone());
        let (bucket, workload) = (bucket.to_owned(), workload.to_owned());
        let (put_url, get_url) = (args.presigned_put.clone(), args.presigned_get.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let is_put = workload == "put" || (workload == "mixed" && i.is_multiple_of(2));
                let t = Instant::now();
                let result = match (&put_url, &get_url, is_put) {
                    (Some(u), _, true) => {
                        oss.exchange(
                            Request::builder()
                                .method(Method::PUT)
                                .uri(u)
                                .body(Full::new(payload.clone()))
                                .expect("request"),
                        )
                        .await
                    }
                    (_, Some(u), false) => {
                        oss.exchange(Request::builder().uri(u).body(Full::new(Bytes::new())).expect("request")).await
                    }
                    (_, _, true) => {
                        let key = format!("put/{}/{w}/{}", payload.len(), i % 8);
                        oss.send(Method::PUT, &bucket, Some(&key), &[], &[], payload.clone()).await
                    }
                    (_, _, false) => {
                        let key = format!("get/{}/{w}", payload.len());
                        oss.send(Method::GET, &bucket, Some(&key), &[], &[], Bytes::new()).await
                    }
                };
                match result {
                    Ok((s, _, n)) if s.is_success() && (is_put || n == payload.len() as u64) => {
                        latencies.push(t.elapsed().as_secs_f64() * 1000.0)
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                i += 1;
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(duration)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await?);
    }
    let seconds = started.elapsed().as_secs_f64();
    let server_cpu_ms = cpu_before.zip(args.server_pid.and_then(cpu_ms)).map(|(a, b)| b - a);
    if let Some(s) = sampler {
        let _ = s.await;
    }
    let kms_after = match &args.kms_endpoint {
        Some(k) => kms_calls(client, k, &oss.key_id, &oss.secret).await,
        None => None,
    };
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let ops = latencies.len() as u64;
    let kms_calls = kms_before.zip(kms_after).map(|(a, b)| b.saturating_sub(a));
    Ok(CaseResult {
        sse: sse.to_owned(),
        workload: workload.to_owned(),
        size,
        concurrency: conc,
        ops,
        errors: errors.load(Ordering::Relaxed),
        seconds,
        ops_per_sec: ops as f64 / seconds,
        mib_per_sec: (ops * size) as f64 / seconds / (1 << 20) as f64,
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
        kms_calls_per_op: kms_calls.filter(|_| ops > 0).map(|k| k as f64 / ops as f64),
        peak_rss_mib: args.server_pid.map(|_| peak.load(Ordering::Relaxed) as f64 / 1024.0),
        server_cpu_ms_per_op: server_cpu_ms.filter(|_| ops > 0).map(|c| c / ops as f64),
        server_cpu_ms,
        latencies,
        kms_calls,
    })
}

/// Throughput of `r` relative to the unencrypted case with the same size,
/// concurrency and workload, when the run measured one.
fn vs_plain(results: &[CaseResult], r: &CaseResult) -> Option<f64> {
    let plain = results
        .iter()
        .find(|p| p.sse == "none" && p.size == r.size && p.concurrency == r.concurrency && p.workload == r.workload)?;
    (plain.ops_per_sec > 0.0).then(|| r.ops_per_sec / plain.ops_per_sec)
}

fn print_table(results: &[CaseResult]) {
    println!(
        "{:<7} {:<6} {:>9} {:>4} {:>8} {:>10} {:>10} {:>7} {:>9} {:>9} {:>8} {:>9} {:>10} {:>6}",
        "sse",
        "load",
        "size",
        "conc",
        "ops",
        "ops/s",
        "MiB/s",
        "x none",
        "p50 ms",
        "p99 ms",
        "kms/op",
        "rss MiB",
        "cpu ms/op",
        "errors"
    );
    for r in results {
        println!(
            "{:<7} {:<6} {:>9} {:>4} {:>8} {:>10.1} {:>10.1} {:>7} {:>9.2} {:>9.2} {:>8} {:>9} {:>10} {:>6}",
            r.sse,
            r.workload,
            r.size,
            r.concurrency,
            r.ops,
            r.ops_per_sec,
            r.mib_per_sec,
            vs_plain(results, r).map_or("-".into(), |x| format!("{x:.2}")),
            r.p50_ms,
            r.p99_ms,
            r.kms_calls_per_op.map_or("-".into(), |k| format!("{k:.2}")),
            r.peak_rss_mib.map_or("-".into(), |m| format!("{m:.1}")),
            r.server_cpu_ms_per_op.map_or("-".into(), |c| format!("{c:.2}")),
            r.errors,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_percentiles() {
        assert_eq!(parse_size("4KiB").unwrap(), 4096);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert!(parse_size("x").is_err());
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn rounds_merge_into_one_case() {
        let round = |ops: u64, seconds: f64, kms: u64, rss: f64| CaseResult {
            sse: "KMS".into(),
            workload: "put".into(),
            size: 1 << 20,
            concurrency: 1,
            ops,
            errors: 1,
            seconds,
            ops_per_sec: ops as f64 / seconds,
            mib_per_sec: ops as f64 / seconds,
            p50_ms: 0.0,
            p99_ms: 0.0,
            kms_calls_per_op: Some(kms as f64 / ops as f64),
            peak_rss_mib: Some(rss),
            server_cpu_ms_per_op: Some(100.0 / ops as f64),
            server_cpu_ms: Some(100.0),
            latencies: (1..=ops).map(|i| i as f64).collect(),
            kms_calls: Some(kms),
        };
        let m = round(10, 1.0, 10, 30.0).merge(round(30, 2.0, 31, 20.0));
        assert_eq!((m.ops, m.errors, m.seconds), (40, 2, 3.0));
        assert!((m.ops_per_sec - 40.0 / 3.0).abs() < 1e-9);
        assert!((m.mib_per_sec - 40.0 / 3.0).abs() < 1e-9);
        assert_eq!(m.kms_calls_per_op, Some(41.0 / 40.0));
        assert_eq!(m.peak_rss_mib, Some(30.0));
        assert_eq!(m.server_cpu_ms_per_op, Some(200.0 / 40.0));
        assert_eq!(m.latencies.len(), 40);
        assert_eq!(m.p50_ms, percentile(&m.latencies, 0.5));
        assert!(m.latencies.windows(2).all(|w| w[0] <= w[1]));
    }
}
