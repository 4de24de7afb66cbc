//! The HTTP front of the KMS API.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arca_iam::{Audit, Context, Iam, Identity};
use arca_kms::{Kms, KmsContext};
use arca_meta::MetaStore;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::actions::{ApiError, Params, dispatch};
use crate::sign;
use crate::{authz, ram};

const MAX_SKEW_SECS: i64 = 15 * 60;
const MAX_BODY: usize = 64 * 1024;

/// Where and for which regions the KMS API answers.
#[derive(Debug, Clone)]
pub struct KmsApiConfig {
    /// Region served when the host name names none.
    pub default_region: String,
    /// Every served region.
    pub regions: Vec<String>,
    /// Domain of `kms.<region>.<domain>` host names.
    pub domain: String,
}

/// The KMS API server.
#[derive(Clone)]
pub struct KmsApiServer {
    kms: Arc<Kms>,
    meta: Arc<dyn MetaStore>,
    iam: Arc<Iam>,
    audit: Arc<Audit>,
    cfg: Arc<KmsApiConfig>,
    nonces: Arc<Mutex<HashMap<String, i64>>>,
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// The request time (`yyyy-MM-ddTHH:mm:ssZ`) must be within 15 minutes of ours.
fn check_time(value: &str, name: &str) -> Result<(), ApiError> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    let t = time::PrimitiveDateTime::parse(value, fmt)
        .map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "IllegalTimestamp",
                format!("The input parameter \"{name}\" is not valid."),
            )
        })?
        .assume_utc()
        .unix_timestamp();
    if (now() - t).abs() > MAX_SKEW_SECS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidTimeStamp.Expired",
            "Specified time stamp or date value is expired.",
        ));
    }
    Ok(())
}

fn iso_now() -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::now_utc().format(fmt).unwrap_or_default()
}

fn parse_pairs(raw: &str) -> Vec<(String, String)> {
    arca_wire::parse_query(raw)
}

fn request_id() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex::encode_upper(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

impl KmsApiServer {
    /// A server over the KMS and the identity directory; access keys come
    /// from `meta`; denials go to `audit`.
    pub fn new(kms: Arc<Kms>, meta: Arc<dyn MetaStore>, iam: Arc<Iam>, audit: Arc<Audit>, cfg: KmsApiConfig) -> Self {
        KmsApiServer { kms, meta, iam, audit, cfg: Arc::new(cfg), nonces: Arc::default() }
    }

    /// Serves until `shutdown` resolves.
    pub async fn serve(self, listener: TcpListener, shutdown: impl std::future::Future<Output = ()>) {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, peer)) = accepted else { continue };
                    let _ = stream.set_nodelay(true);
                    let this = self.clone();
                    let service = service_fn(move |req| {
                        let this = this.clone();
                        async move { Ok::<_, Infallible>(this.handle(req, peer).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                }
                _ = &mut shutdown => break,
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), graceful.shutdown()).await;
    }

    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        let request_id = request_id();
        let started = std::time::Instant::now();
        let method = req.method().as_str().to_owned();
        let result = self.process(req, peer).await;
        let (status, mut body, action) = match result {
            Ok((action, v)) => (StatusCode::OK, v, action),
            Err((action, e)) => {
                if let Some(detail) = &e.internal {
                    tracing::error!(request_id = %request_id, detail = %detail, "KMS internal error");
                }
                let body = serde_json::json!({
                    "Code": e.code, "Message": e.message, "HostId": "kms.arca", "HttpStatus": e.status.as_u16(),
                });
                (e.status, body, action)
            }
        };
        body["RequestId"] = serde_json::Value::String(request_id.clone());
        tracing::info!(
            target: "arca::kms",
            request_id = %request_id, method = %method, action = %action, status = status.as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        );
        Response::builder()
            .status(status)
            .header("content-type", "application/json;charset=utf-8")
            .header("x-acs-request-id", &request_id)
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("valid response")
    }

    async fn process(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<(String, serde_json::Value), (String, ApiError)> {
        let (parts, body) = req.into_parts();
        let mut params = parse_pairs(parts.uri.query().unwrap_or(""));
        let body = Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map_err(|_| (String::new(), ApiError::invalid("request body")))?;
        let body = body.to_bytes();
        if !body.is_empty() {
            params.extend(parse_pairs(std::str::from_utf8(&body).unwrap_or("")));
        }
        let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let v3 = header("authorization").filter(|a| a.starts_with("ACS3-HMAC-SHA256 "));
        if v3.is_some() {
            // V3 carries the action and version in headers.
            for (name, param) in [("x-acs-action", "Action"), ("x-acs-version", "Version")] {
                if let Some(v) = header(name) {
                    params.retain(|(k, _)| k != param);
                    params.push((param.to_owned(), v));
                }
            }
        }
        let action = params.iter().find(|(k, _)| k == "Action").map(|(_, v)| v.clone()).unwrap_or_default();
        let fail = |e: ApiError| (action.clone(), e);
        if params
            .iter()
            .filter(|(k, _)| k != "Signature")
            .map(|(k, _)| k)
            .collect::<std::collections::HashSet<_>>()
            .len()
            != params.iter().filter(|(k, _)| k != "Signature").count()
        {
            return Err(fail(ApiError::invalid("a parameter given twice")));
        }
        let key = match &v3 {
            Some(authz) => {
                let query = parse_pairs(parts.uri.query().unwrap_or(""));
                self.authenticate_v3(parts.method.as_str(), authz, &query, &parts.headers, &body).await.map_err(fail)?
            }
            None => self.authenticate(parts.method.as_str(), &params).await.map_err(fail)?,
        };
        let identity = self.iam.identity(&key).await.map_err(|e| {
            fail(if e.status == 404 {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "InvalidAccessKeyId.NotFound",
                    "Specified access key is not found.",
                )
            } else {
                ApiError::internal(e.to_string())
            })
        })?;
        let context = Context::new()
            .with("acs:SourceIp", peer.ip().to_canonical().to_string())
            .with("acs:SecureTransport", "false")
            .with("acs:AccessId", key.id.as_str())
            .with("acs:CurrentTime", iso_now());
        let region = self.region_of(parts.headers.get("host").and_then(|h| h.to_str().ok()));
        let version = params.iter().find(|(k, _)| k == "Version").map(|(_, v)| v.clone()).unwrap_or_default();
        self.invoke(&identity, &context, &region, &version, &action, &params)
            .await
            .map(|v| (action.clone(), v))
            .map_err(fail)
    }

    /// Runs a KMS (`Version=2016-01-20`) or RAM (`2015-05-01`) action for an
    /// authenticated identity, with the same authorization, metering and
    /// audit as a signed API request. In-process clients (the console) use
    /// this so they can do exactly what the caller's policies allow.
    pub async fn invoke(
        &self,
        identity: &Identity,
        context: &Context,
        region: &str,
        version: &str,
        action: &str,
        params: &[(String, String)],
    ) -> Result<serde_json::Value, ApiError> {
        let account = identity.principal.account().unwrap_or_default().to_owned();
        let ctx = KmsContext::new(account, region).acting_as(identity.principal.arn());
        let p = Params(params);
        match version {
            "2016-01-20" => {
                authz::authorize(&self.kms, &ctx, identity, context, &self.audit, action, &p).await?;
                dispatch(&self.kms, &ctx, action, &p).await
            }
            "2015-05-01" => ram::dispatch(&self.iam, identity, context, &self.audit, action, &p).await,
            _ => Err(ApiError::invalid("Version")),
        }
    }

    fn region_of(&self, host: Option<&str>) -> String {
        let host = host.unwrap_or("").split(':').next().unwrap_or("");
        for r in &self.cfg.regions {
            for prefix in ["kms", "kms-vpc"] {
                if host.eq_ignore_ascii_case(&format!("{prefix}.{r}.{}", self.cfg.domain)) {
                    return r.clone();
                }
            }
        }
        self.cfg.default_region.clone()
    }

    async fn account_of(&self, id: &str) -> Result<arca_meta::AccessKey, ApiError> {
        let key = self.meta.get_access_key(id).await.map_err(|e| ApiError::internal(e.to_string()))?;
        let key = key.ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        })?;
        if !key.enabled {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "Forbidden.AccessKey", "This AccessKey is not enabled."));
        }
        Ok(key)
    }

    fn check_nonce(&self, id: &str, nonce: &str) -> Result<(), ApiError> {
        let mut seen = self.nonces.lock().expect("lock");
        if seen.len() > 100_000 {
            let horizon = now() - 2 * MAX_SKEW_SECS;
            seen.retain(|_, t| *t > horizon);
        }
        if seen.insert(format!("{id}/{nonce}"), now()).is_some() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "SignatureNonceUsed",
                "Specified signature nonce was used already.",
            ));
        }
        Ok(())
    }

    /// `ACS3-HMAC-SHA256` (the new SDKs' default).
    async fn authenticate_v3(
        &self,
        method: &str,
        authz: &str,
        query: &[(String, String)],
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<arca_meta::AccessKey, ApiError> {
        let rest = authz.trim_start_matches("ACS3-HMAC-SHA256 ");
        let field = |name: &str| {
            rest.split(',')
                .filter_map(|f| f.trim().split_once('='))
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.trim().to_owned())
        };
        let incomplete = || {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "IncompleteSignature",
                "The request signature does not conform to Alibaba Cloud standards.",
            )
        };
        let id = field("Credential").ok_or_else(incomplete)?;
        let signed = field("SignedHeaders").ok_or_else(incomplete)?;
        let provided = field("Signature").ok_or_else(incomplete)?;
        let key = self.account_of(&id).await?;
        let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let date = h("x-acs-date");
        check_time(&date, "x-acs-date")?;
        let body_hash = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body).as_ref());
        let claimed = h("x-acs-content-sha256");
        if !claimed.is_empty() && !claimed.eq_ignore_ascii_case(&body_hash) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "SignatureDoesNotMatch",
                "x-acs-content-sha256 does not match the body.",
            ));
        }
        let mut names: Vec<String> =
            signed.split(';').map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()).collect();
        names.sort();
        let signed_headers: Vec<(String, String)> = names
            .iter()
            .map(|n| {
                let mut values: Vec<&str> =
                    headers.get_all(n.as_str()).iter().filter_map(|v| v.to_str().ok()).map(str::trim).collect();
                values.sort_unstable();
                (n.clone(), values.join(","))
            })
            .collect();
        let sts = sign::v3_string_to_sign(method, query, &signed_headers, &body_hash);
        let expected = sign::v3_signature(&key.secret, &sts);
        if aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), provided.as_bytes()).is_err() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "SignatureDoesNotMatch",
                format!("Specified signature is not matched with our calculation. server string to sign is:{sts}"),
            ));
        }
        let nonce = h("x-acs-signature-nonce");
        if !nonce.is_empty() {
            self.check_nonce(&id, &nonce)?;
        }
        Ok(key)
    }

    async fn authenticate(&self, method: &str, params: &[(String, String)]) -> Result<arca_meta::AccessKey, ApiError> {
        let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let id = get("AccessKeyId").ok_or_else(|| ApiError::missing("AccessKeyId"))?;
        let provided = get("Signature").ok_or_else(|| ApiError::missing("Signature"))?;
        if get("SignatureMethod") != Some("HMAC-SHA1") {
            return Err(ApiError::invalid("SignatureMethod"));
        }
        if get("SignatureVersion") != Some("1.0") {
            return Err(ApiError::invalid("SignatureVersion"));
        }
        let key = self.account_of(id).await?;
        let ts = get("Timestamp").ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "IllegalTimestamp",
                "The input parameter \"Timestamp\" that is mandatory for processing this request is not supplied.",
            )
        })?;
        check_time(ts, "Timestamp")?;
        let sts = sign::string_to_sign(method, params);
        let expected = sign::signature(&key.secret, &sts);
        if aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), provided.as_bytes()).is_err() {
            // The SDK splits this message at ':' to compare string-to-sign; keep the form exact.
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "SignatureDoesNotMatch",
                format!("Specified signature is not matched with our calculation. server string to sign is:{sts}"),
            ));
        }
        if let Some(nonce) = get("SignatureNonce") {
            self.check_nonce(id, nonce)?;
        }
        Ok(key)
    }
}
