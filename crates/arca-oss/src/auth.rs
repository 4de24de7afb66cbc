//! Who sent a request: verifies V1, V2 and V4 signatures (header or
//! presigned URL), the time checks with OSS's exact messages, and resolves
//! the access key to a [`Caller`]. Signatures are compared in constant time.

use arca_core::{AccessKey, ObjectService};
use http::StatusCode;

use crate::error::OssError;
use crate::fmt::{parse_http_date, parse_v4_datetime};
use crate::sign::{self, SignedParts};

/// Largest accepted difference between the request time and ours.
const MAX_SKEW_SECS: i64 = 15 * 60;
/// Longest lifetime of a V4 presigned URL.
const MAX_V4_EXPIRES: i64 = 7 * 24 * 3600;

fn skewed() -> OssError {
    OssError::new(
        StatusCode::FORBIDDEN,
        "RequestTimeTooSkewed",
        "The difference between the request time and the current time is too large.",
    )
}

fn expired() -> OssError {
    OssError::access_denied("Request has expired.")
}

fn bad_credential() -> OssError {
    OssError::new(StatusCode::FORBIDDEN, "SignatureDoesNotMatch", "Invalid credential in Authorization header.")
}

fn bad_region() -> OssError {
    OssError::new(StatusCode::FORBIDDEN, "SignatureDoesNotMatch", "The signing region in credential is invalid.")
}

fn mismatch(access_key: &str, provided: &str, string_to_sign: &[u8], canonical: Option<&[u8]>) -> OssError {
    let mut e = OssError::new(
        StatusCode::FORBIDDEN,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    )
    .with("StringToSign", String::from_utf8_lossy(string_to_sign))
    .with("SignatureProvided", provided)
    .with("OSSAccessKeyId", access_key);
    if let Some(c) = canonical {
        e = e.with("CanonicalRequest", String::from_utf8_lossy(c));
    }
    e
}

fn query<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn header<'a>(p: &'a SignedParts<'_>, name: &str) -> Option<&'a str> {
    p.headers.iter().find(|(n, _)| n == name).and_then(|(_, v)| std::str::from_utf8(v).ok())
}

/// Authenticates a request served in `region` at time `now` (unix seconds):
/// the access key that signed it, or `None` for an unsigned request.
pub async fn authenticate(
    svc: &ObjectService,
    p: &SignedParts<'_>,
    region: &str,
    now: i64,
) -> Result<Option<AccessKey>, OssError> {
    if let Some(authz) = header(p, "authorization") {
        if let Some(rest) = authz.strip_prefix("OSS4-HMAC-SHA256 ") {
            return v4_header(svc, p, rest, region, now).await;
        }
        if let Some(rest) = authz.strip_prefix("OSS2 ") {
            return v2_header(svc, p, rest, now).await;
        }
        if let Some(rest) = authz.strip_prefix("OSS ") {
            return v1_header(svc, p, rest, now).await;
        }
        return Err(OssError::invalid_argument("Authorization header is invalid.", "Authorization", authz));
    }
    match query(p.query, "x-oss-signature-version") {
        Some("OSS4-HMAC-SHA256") => return v4_url(svc, p, region, now).await,
        Some("OSS2") => return v2_url(svc, p, now).await,
        Some(other) => {
            return Err(OssError::invalid_argument("Unsupported signature version.", "x-oss-signature-version", other));
        }
        None => {}
    }
    if query(p.query, "OSSAccessKeyId").is_some() {
        return v1_url(svc, p, now).await;
    }
    Ok(None)
}

async fn secret_of(svc: &ObjectService, id: &str) -> Result<AccessKey, OssError> {
    let key = svc.access_key(id).await.map_err(|e| OssError::internal(e.to_string()))?;
    match key {
        Some(k) if k.enabled => Ok(k),
        _ => Err(OssError::new(
            StatusCode::FORBIDDEN,
            "InvalidAccessKeyId",
            "The OSS Access Key Id you provided does not exist in our records.",
        )
        .with("OSSAccessKeyId", id)),
    }
}

/// Checks the time of a header-signed V1/V2 request (`x-oss-date` if
/// present, else `Date`) and returns the date line it signed: that same value
/// for V1, always the `Date` header for V2.
fn check_http_time(p: &SignedParts<'_>, v1: bool, now: i64) -> Result<Vec<u8>, OssError> {
    let date = header(p, "date");
    let decisive = header(p, "x-oss-date").or(date).ok_or_else(|| OssError::access_denied("Missing Date Header."))?;
    let t = parse_http_date(decisive).ok_or_else(|| OssError::access_denied("Invalid Date Header."))?;
    if (now - t).abs() > MAX_SKEW_SECS {
        return Err(skewed());
    }
    let signed = if v1 { decisive } else { date.unwrap_or("") };
    Ok(signed.as_bytes().to_vec())
}

async fn v1_header(
    svc: &ObjectService,
    p: &SignedParts<'_>,
    rest: &str,
    now: i64,
) -> Result<Option<AccessKey>, OssError> {
    let (id, provided) = rest
        .trim()
        .rsplit_once(':')
        .ok_or_else(|| OssError::invalid_argument("Authorization header is invalid.", "Authorization", rest))?;
    let key = secret_of(svc, id).await?;
    let secret = key.secret.clone();
    let date_line = check_http_time(p, true, now)?;
    let sts = sign::v1_string_to_sign(p, &date_line);
    if !sign::signatures_equal(provided, &sign::v1_signature(&secret, &sts)) {
        return Err(mismatch(id, provided, &sts, None));
    }
    Ok(Some(key))
}

async fn v1_url(svc: &ObjectService, p: &SignedParts<'_>, now: i64) -> Result<Option<AccessKey>, OssError> {
    let id = query(p.query, "OSSAccessKeyId").unwrap_or_default();
    let expires = query(p.query, "Expires").unwrap_or_default();
    let provided = query(p.query, "Signature").unwrap_or_default();
    let key = secret_of(svc, id).await?;
    let secret = key.secret.clone();
    let exp: i64 =
        expires.parse().map_err(|_| OssError::invalid_argument("Expires is invalid.", "Expires", expires))?;
    if now > exp {
        return Err(expired());
    }
    let sts = sign::v1_string_to_sign(p, expires.as_bytes());
    if sign::signatures_equal(provided, &sign::v1_signature(&secret, &sts)) {
        return Ok(Some(key));
    }
    // oss2 puts x-oss-date on the date line when it was among the signed
    // headers. That string is the one a header-signed request signs, and
    // `Expires` is not covered by it: the date itself must then be fresh.
    if let Some(d) = header(p, "x-oss-date") {
        let t = parse_http_date(d).ok_or_else(|| OssError::access_denied("Invalid Date Header."))?;
        if (now - t).abs() > MAX_SKEW_SECS {
            return Err(skewed());
        }
        let alt = sign::v1_string_to_sign(p, d.as_bytes());
        if sign::signatures_equal(provided, &sign::v1_signature(&secret, &alt)) {
            return Ok(Some(key));
        }
    }
    Err(mismatch(id, provided, &sts, None))
}

fn fields(rest: &str, sep: char) -> Vec<(&str, &str)> {
    rest.split(',').filter_map(|f| f.trim().split_once(sep)).map(|(k, v)| (k.trim(), v.trim())).collect()
}

async fn v2_header(
    svc: &ObjectService,
    p: &SignedParts<'_>,
    rest: &str,
    now: i64,
) -> Result<Option<AccessKey>, OssError> {
    let f = fields(rest, ':');
    let get = |n: &str| f.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
    let id = get("AccessKeyId").ok_or_else(bad_credential)?;
    let provided = get("Signature").unwrap_or_default();
    let additional = sorted_names(get("AdditionalHeaders").unwrap_or(""));
    let key = secret_of(svc, id).await?;
    let secret = key.secret.clone();
    let date_line = check_http_time(p, false, now)?;
    let sts = sign::v2_string_to_sign(p, &date_line, &additional);
    if !sign::signatures_equal(provided, &sign::v2_signature(&secret, &sts)) {
        return Err(mismatch(id, provided, &sts, None));
    }
    Ok(Some(key))
}

async fn v2_url(svc: &ObjectService, p: &SignedParts<'_>, now: i64) -> Result<Option<AccessKey>, OssError> {
    let id = query(p.query, "x-oss-access-key-id").unwrap_or_default();
    let expires = query(p.query, "x-oss-expires").unwrap_or_default();
    let provided = query(p.query, "x-oss-signature").unwrap_or_default();
    let additional = sorted_names(query(p.query, "x-oss-additional-headers").unwrap_or(""));
    let key = secret_of(svc, id).await?;
    let secret = key.secret.clone();
    let exp: i64 = expires
        .parse()
        .map_err(|_| OssError::invalid_argument("x-oss-expires is invalid.", "x-oss-expires", expires))?;
    if now > exp {
        return Err(expired());
    }
    let sts = sign::v2_string_to_sign(p, expires.as_bytes(), &additional);
    if !sign::signatures_equal(provided, &sign::v2_signature(&secret, &sts)) {
        return Err(mismatch(id, provided, &sts, None));
    }
    Ok(Some(key))
}

fn sorted_names(list: &str) -> Vec<String> {
    let mut v: Vec<String> = list.split(';').map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()).collect();
    v.sort();
    v.dedup();
    v
}

/// Checks a V4 credential scope `<ak>/<yyyymmdd>/<region>/oss/aliyun_v4_request`.
fn parse_credential<'a>(cred: &'a str, region: &str, datetime: &str) -> Result<(&'a str, &'a str), OssError> {
    let parts: Vec<&str> = cred.split('/').collect();
    let [id, date, cred_region, service, term] = parts.as_slice() else {
        return Err(bad_credential());
    };
    if *service != "oss" || *term != "aliyun_v4_request" || date.len() != 8 || id.is_empty() {
        return Err(bad_credential());
    }
    if cred_region.is_empty() || *cred_region != region {
        return Err(bad_region());
    }
    if !datetime.starts_with(date) {
        return Err(bad_credential());
    }
    Ok((id, date))
}

async fn v4_header(
    svc: &ObjectService,
    p: &SignedParts<'_>,
    rest: &str,
    region: &str,
    now: i64,
) -> Result<Option<AccessKey>, OssError> {
    let f = fields(rest, '=');
    let get = |n: &str| f.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
    let cred = get("Credential").ok_or_else(bad_credential)?;
    let provided = get("Signature").unwrap_or_default();
    let additional = sign::v4_additional(get("AdditionalHeaders").unwrap_or(""));
    let datetime = header(p, "x-oss-date").ok_or_else(|| OssError::access_denied("Missing x-oss-date header."))?;
    let t = parse_v4_datetime(datetime).ok_or_else(|| OssError::access_denied("Invalid x-oss-date header."))?;
    let (id, date) = parse_credential(cred, region, datetime)?;
    let key = secret_of(svc, id).await?;
    let secret = key.secret.clone();
    if (now - t).abs() > MAX_SKEW_SECS {
        return Err(skewed());
    }
    let payload = header(p, "x-oss-content-sha256").unwrap_or("UNSIGNED-PAYLOAD");
    if payload != "UNSIGNED-PAYLOAD" {
        return Err(OssError::invalid_argument(
            "Only UNSIGNED-PAYLOAD is supported for x-oss-content-sha256.",
            "x-oss-content-sha256",
            payload,
        ));
    }
    let cr = sign::v4_canonical_request(p, &additional, payload, &[]);
    let sts = sign::v4_string_to_sign(datetime, &format!("{date}/{region}/oss/aliyun_v4_request"), &cr);
    if !sign::signatures_equal(provided, &sign::v4_signature(&secret, date, region, &sts)) {
        return Err(mismatch(id, provided, sts.as_bytes(), Some(&cr)));
    }
    Ok(Some(key))
}

async fn v4_url(
    svc: &ObjectService,
    p: &SignedParts<'_>,
    region: &str,
    now: i64,
) -> Result<Option<AccessKey>, OssError> {
    let cred = query(p.query, "x-oss-credential").ok_or_else(bad_credential)?;
    let datetime = query(p.query, "x-oss-date").unwrap_or_default();
    let expires = query(p.query, "x-oss-expires").unwrap_or_default();
    let provided = query(p.query, "x-oss-signature").unwrap_or_default();
    let additional = sign::v4_additional(query(p.query, "x-oss-additional-headers").unwrap_or(""));
    let t = parse_v4_datetime(datetime)
        .ok_or_else(|| OssError::invalid_argument("x-oss-date is invalid.", "x-oss-date", datetime))?;
    let exp: i64 = expires
        .parse()
        .map_err(|_| OssError::invalid_argument("x-oss-expires is invalid.", "x-oss-expires", expires))?;
    if !(1..=MAX_V4_EXPIRES).contains(&exp) {
        return Err(OssError::invalid_argument(
            "x-oss-expires must be between 1 and 604800 seconds.",
            "x-oss-expires",
            expires,
        ));
    }
    let (id, date) = parse_credential(cred, region, datetime)?;
    let key = secret_of(svc, id).await?;
    let secret = key.secret.clone();
    if t - now > MAX_SKEW_SECS {
        return Err(skewed());
    }
    if now > t + exp {
        return Err(expired());
    }
    let cr = sign::v4_canonical_request(p, &additional, "UNSIGNED-PAYLOAD", &["x-oss-signature"]);
    let sts = sign::v4_string_to_sign(datetime, &format!("{date}/{region}/oss/aliyun_v4_request"), &cr);
    if !sign::signatures_equal(provided, &sign::v4_signature(&secret, date, region, &sts)) {
        return Err(mismatch(id, provided, sts.as_bytes(), Some(&cr)));
    }
    Ok(Some(key))
}
