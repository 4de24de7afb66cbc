//! The HTTP front: accepts connections, routes, authenticates, dispatches to
//! the handlers, renders errors, and logs one line per request.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arca_core::{AccessKey, Caller, ObjectService};
use arca_iam::{Context, Iam, Identity};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyStream;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::auth::authenticate;
use crate::error::OssError;
use crate::request::{Req, RespBody, full};
use crate::route::{Addressing, Op, parse_query};
use crate::sign::SignedParts;
use crate::xml::XmlWriter;
use crate::{bucket, multipart, object};

/// Bytes of an unread upload body the server reads and drops before sending
/// an error, so the client sees the error instead of a broken pipe.
const DRAIN_LIMIT: u64 = 16 * 1024 * 1024;

/// The dialect's configuration.
#[derive(Debug, Clone)]
pub struct OssConfig {
    /// Host-name based addressing and the served regions.
    pub addressing: Addressing,
    /// Public endpoint (`host[:port]`) of each region, as listings report it.
    pub endpoints: HashMap<String, String>,
}

impl OssConfig {
    /// The public endpoint of a region.
    pub fn endpoint(&self, region: &str) -> String {
        self.endpoints.get(region).cloned().unwrap_or_else(|| format!("oss-{region}.{}", self.addressing.domain))
    }

    /// The internal endpoint of a region.
    pub fn internal_endpoint(&self, region: &str) -> String {
        format!("oss-{region}-internal.{}", self.addressing.domain)
    }
}

/// The OSS API server.
#[derive(Clone)]
pub struct OssServer {
    svc: ObjectService,
    iam: Arc<Iam>,
    cfg: Arc<OssConfig>,
}

impl OssServer {
    /// A server over the object service.
    pub fn new(svc: ObjectService, iam: Arc<Iam>, cfg: OssConfig) -> Self {
        OssServer { svc, iam, cfg: Arc::new(cfg) }
    }

    /// The caller of a request signed by `key` (or anonymous), with the
    /// request's condition values.
    async fn caller(
        &self,
        key: Option<AccessKey>,
        headers: &http::HeaderMap,
        peer: SocketAddr,
    ) -> Result<Caller, OssError> {
        let mut context = Context::new()
            .with("acs:SourceIp", peer.ip().to_canonical().to_string())
            // Arca serves plain HTTP; TLS, when used, ends in front of it.
            .with("acs:SecureTransport", "false")
            .with("acs:CurrentTime", crate::fmt::iso8601(arca_core::now()));
        if let Some(ua) = headers.get("user-agent").and_then(|v| v.to_str().ok()) {
            context.set("acs:UserAgent", ua);
        }
        let Some(key) = key else { return Ok(Caller::new(Identity::anonymous(), context)) };
        context.set("acs:AccessId", key.id.as_str());
        let identity = self.iam.identity(&key).await.map_err(|e| {
            if e.status == 404 {
                // The key's user was deleted: the key is as good as gone.
                OssError::new(
                    StatusCode::FORBIDDEN,
                    "InvalidAccessKeyId",
                    "The OSS Access Key Id you provided does not exist in our records.",
                )
                .with("OSSAccessKeyId", &key.id)
            } else {
                OssError::internal(e.to_string())
            }
        })?;
        Ok(Caller::new(identity, context))
    }

    /// Serves `listener` for `region` until `shutdown` resolves, then lets
    /// requests in flight finish (for up to 30 s).
    pub async fn serve(self, listener: TcpListener, region: String, shutdown: impl std::future::Future<Output = ()>) {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let region: Arc<str> = region.into();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    // Without NODELAY small responses stall ~40 ms on keep-alive connections.
                    let _ = stream.set_nodelay(true);
                    let this = self.clone();
                    let region = region.clone();
                    let service = service_fn(move |req| {
                        let this = this.clone();
                        let region = region.clone();
                        async move { Ok::<_, Infallible>(this.handle(req, &region, peer).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service);
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                    });
                }
                _ = &mut shutdown => break,
            }
        }
        drop(listener);
        if tokio::time::timeout(Duration::from_secs(30), graceful.shutdown()).await.is_err() {
            tracing::warn!("requests still in flight after 30 s; closing");
        }
    }

    async fn handle(&self, req: Request<Incoming>, listener_region: &str, peer: SocketAddr) -> Response<RespBody> {
        let started = Instant::now();
        let request_id = new_request_id();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let (parts, body) = req.into_parts();
        let has_body = matches!(method, Method::PUT | Method::POST);
        let mut body = Some(body);
        let result = self.dispatch(parts, &mut body, listener_region, peer).await;
        let mut resp = match result {
            Ok(r) => r,
            Err(e) => {
                if let Some(detail) = &e.internal {
                    tracing::error!(request_id = %request_id, detail = %detail, "internal error");
                }
                if has_body && let Some(b) = body.take() {
                    drain(b).await;
                }
                error_response(&e, &request_id, method == Method::HEAD)
            }
        };
        let h = resp.headers_mut();
        h.insert("x-oss-request-id", HeaderValue::from_str(&request_id).expect("hex id"));
        h.insert("date", HeaderValue::from_str(&crate::fmt::http_date(arca_core::now())).expect("date"));
        h.insert("server", HeaderValue::from_static("AliyunOSS"));
        let bytes_out = h.get("content-length").and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
        tracing::info!(
            target: "arca::access",
            request_id = %request_id,
            peer = %peer,
            method = %method,
            path = %path,
            status = resp.status().as_u16(),
            bytes_out = %bytes_out,
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        );
        resp
    }

    async fn dispatch(
        &self,
        parts: http::request::Parts,
        body: &mut Option<Incoming>,
        listener_region: &str,
        peer: SocketAddr,
    ) -> Result<Response<RespBody>, OssError> {
        let host = parts.headers.get("host").and_then(|v| v.to_str().ok()).or(parts.uri.host());
        let target = self.cfg.addressing.target(host, parts.uri.path(), listener_region)?;
        let query = parse_query(parts.uri.query());
        let headers: Vec<(String, Vec<u8>)> =
            parts.headers.iter().map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec())).collect();
        let signed = SignedParts {
            method: parts.method.as_str(),
            bucket: target.bucket.as_deref(),
            key: target.key.as_deref(),
            query: &query,
            headers: &headers,
        };
        let key = authenticate(&self.svc, &signed, &target.region, arca_core::now()).await?;
        let caller = self.caller(key, &parts.headers, peer).await?;
        let has = |n: &str| query.iter().any(|(k, _)| k == n);
        let op = Op::of(&parts.method, &target, has, parts.headers.contains_key("x-oss-copy-source"))?;
        let mut req = Req { target, query, headers: parts.headers, body: body.take(), caller, cfg: &self.cfg };
        let result = self.run(op, &mut req).await;
        *body = req.body.take();
        result
    }

    async fn run(&self, op: Op, req: &mut Req<'_>) -> Result<Response<RespBody>, OssError> {
        let svc = &self.svc;
        match op {
            Op::ListBuckets => bucket::list_buckets(svc, req).await,
            Op::PutBucket => bucket::put_bucket(svc, req).await,
            Op::DeleteBucket => bucket::delete_bucket(svc, req).await,
            Op::ListObjects => bucket::list_objects(svc, req, false).await,
            Op::ListObjectsV2 => bucket::list_objects(svc, req, true).await,
            Op::GetBucketInfo => bucket::get_bucket_info(svc, req).await,
            Op::GetBucketLocation => bucket::get_bucket_location(svc, req).await,
            Op::GetBucketStat => bucket::get_bucket_stat(svc, req).await,
            Op::PutBucketAcl => bucket::put_bucket_acl(svc, req).await,
            Op::GetBucketAcl => bucket::get_bucket_acl(svc, req).await,
            Op::PutBucketEncryption => bucket::put_bucket_encryption(svc, req).await,
            Op::GetBucketEncryption => bucket::get_bucket_encryption(svc, req).await,
            Op::DeleteBucketEncryption => bucket::delete_bucket_encryption(svc, req).await,
            Op::PutBucketPolicy => bucket::put_bucket_policy(svc, req).await,
            Op::GetBucketPolicy => bucket::get_bucket_policy(svc, req).await,
            Op::DeleteBucketPolicy => bucket::delete_bucket_policy(svc, req).await,
            Op::ListLiveChannel => bucket::list_live_channels(svc, req).await,
            Op::DeleteMultipleObjects => object::delete_multiple(svc, req).await,
            Op::PutObject => object::put_object(svc, req).await,
            Op::CopyObject => object::copy_object(svc, req).await,
            Op::GetObject => object::get_object(svc, req, false).await,
            Op::HeadObject => object::get_object(svc, req, true).await,
            Op::GetObjectMeta => object::get_object_meta(svc, req).await,
            Op::DeleteObject => object::delete_object(svc, req).await,
            Op::AppendObject => object::append_object(svc, req).await,
            Op::PutObjectAcl => object::put_object_acl(svc, req).await,
            Op::GetObjectAcl => object::get_object_acl(svc, req).await,
            Op::InitiateMultipartUpload => multipart::initiate(svc, req).await,
            Op::UploadPart => multipart::upload_part(svc, req).await,
            Op::UploadPartCopy => multipart::upload_part_copy(svc, req).await,
            Op::CompleteMultipartUpload => multipart::complete(svc, req).await,
            Op::AbortMultipartUpload => multipart::abort(svc, req).await,
            Op::ListParts => multipart::list_parts(svc, req).await,
            Op::ListMultipartUploads => multipart::list_uploads(svc, req).await,
        }
    }
}

fn new_request_id() -> String {
    hex::encode_upper(rand::random::<[u8; 12]>())
}

/// Reads and drops what is left of an upload body, up to a limit.
async fn drain(body: Incoming) {
    if hyper::body::Body::size_hint(&body).lower() > DRAIN_LIMIT {
        return;
    }
    let mut stream = BodyStream::new(body);
    let mut seen = 0u64;
    while let Some(Ok(frame)) = stream.next().await {
        seen += frame.data_ref().map_or(0, |d| d.len() as u64);
        if seen > DRAIN_LIMIT {
            break;
        }
    }
}

fn error_response(e: &OssError, request_id: &str, head: bool) -> Response<RespBody> {
    let mut builder = Response::builder().status(e.status);
    for (name, value) in &e.headers {
        builder = builder.header(*name, value);
    }
    if e.status == StatusCode::NOT_MODIFIED {
        return builder.body(full(Bytes::new())).expect("valid response");
    }
    let mut w = XmlWriter::default();
    w.open("Error")
        .elem("Code", e.code)
        .elem("Message", &e.message)
        .elem("RequestId", request_id)
        .elem("HostId", "arca");
    for (name, value) in &e.extra {
        w.elem(name, value);
    }
    w.close("Error");
    let xml = w.finish();
    builder = builder.header("content-type", "application/xml");
    if head {
        builder.header("x-oss-err", B64.encode(xml.as_bytes())).header("content-length", 0).body(full(Bytes::new()))
    } else {
        builder.header("content-length", xml.len()).body(full(Bytes::from(xml)))
    }
    .expect("valid response")
}
