//! Object operations.

use arca_core::{AppendObject, Conditions, CopyObject, CopySource, ObjectKind, ObjectRecord, ObjectService, PutObject};
use futures_util::StreamExt;
use http::response::Builder;
use http::{HeaderValue, Response, StatusCode};
use percent_encoding::percent_decode;

use crate::bucket::{acl_policy, kind_name};
use crate::error::OssError;
use crate::fmt::{http_date, iso8601, parse_http_date};
use crate::request::{Req, RespBody, empty, full, sse_headers, streamed, url_encode_name, xml_body, xml_response};
use crate::xml::{self, XmlWriter};

type Result<T> = std::result::Result<T, OssError>;

fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

/// Headers every object response carries (PUT results and GET/HEAD alike):
/// ETag, CRC-64 and SSE of the plaintext object.
pub(crate) fn result_headers(mut b: Builder, rec: &ObjectRecord) -> Builder {
    b = b.header("etag", quoted(&rec.etag)).header("x-oss-hash-crc64ecma", rec.crc64.to_string());
    b = sse_headers(b, rec.encryption.as_ref());
    if rec.kind == ObjectKind::Appendable {
        b = b.header("x-oss-next-append-position", rec.size.to_string());
    }
    b
}

/// The stored metadata as GET/HEAD headers, with `response-*` overrides.
fn object_headers(mut b: Builder, rec: &ObjectRecord, req: &Req<'_>) -> Builder {
    let a = &rec.attrs;
    let pick =
        |param: &str, stored: Option<&str>| req.q_nonempty(param).map(str::to_owned).or(stored.map(str::to_owned));
    let standard = [
        ("content-type", pick("response-content-type", Some(&a.content_type))),
        ("content-language", pick("response-content-language", a.content_language.as_deref())),
        ("expires", pick("response-expires", a.expires.as_deref())),
        ("cache-control", pick("response-cache-control", a.cache_control.as_deref())),
        ("content-disposition", pick("response-content-disposition", a.content_disposition.as_deref())),
        ("content-encoding", pick("response-content-encoding", a.content_encoding.as_deref())),
    ];
    for (name, value) in standard {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            b = b.header(name, v);
        }
    }
    for m in &a.user_meta {
        if let Ok(v) = HeaderValue::from_bytes(&m.value) {
            b = b.header(format!("x-oss-meta-{}", m.name), v);
        }
    }
    b = result_headers(b, rec)
        .header("last-modified", http_date(rec.last_modified))
        .header("accept-ranges", "bytes")
        .header("x-oss-object-type", kind_name(rec.kind))
        .header("x-oss-storage-class", &a.storage_class);
    b
}

fn conditions(req: &Req<'_>, prefix: &str) -> Conditions {
    let h = |n: &str| req.header(&format!("{prefix}{n}")).map(str::to_owned);
    Conditions {
        if_match: h("if-match"),
        if_none_match: h("if-none-match"),
        if_modified_since: h("if-modified-since").and_then(|v| parse_http_date(&v)),
        if_unmodified_since: h("if-unmodified-since").and_then(|v| parse_http_date(&v)),
    }
}

/// How a `Range` header applies to an object of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
enum RangePlan {
    Whole,
    Part(u64, u64),
    Unsatisfiable,
}

/// OSS semantics: an invalid or unsatisfiable range is ignored (whole object,
/// 200) unless `x-oss-range-behavior: standard` asks for RFC behaviour.
fn plan_range(header: Option<&str>, size: u64, standard: bool) -> RangePlan {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangePlan::Whole;
    };
    let first = spec.split(',').next().unwrap_or("").trim();
    let Some((a, b)) = first.split_once('-') else {
        return RangePlan::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let bad = || {
        if standard { RangePlan::Unsatisfiable } else { RangePlan::Whole }
    };
    match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
        (None, Some(n)) if a.is_empty() => {
            if n == 0 || size == 0 {
                bad()
            } else if n > size {
                if standard { RangePlan::Part(0, size - 1) } else { RangePlan::Whole }
            } else {
                RangePlan::Part(size - n, size - 1)
            }
        }
        (Some(s), None) if b.is_empty() => {
            if s < size {
                RangePlan::Part(s, size - 1)
            } else {
                bad()
            }
        }
        (Some(s), Some(e)) if s <= e => {
            if s >= size {
                bad()
            } else if e >= size {
                if standard { RangePlan::Part(s, size - 1) } else { RangePlan::Whole }
            } else {
                RangePlan::Part(s, e)
            }
        }
        _ => RangePlan::Whole,
    }
}

pub async fn get_object(svc: &ObjectService, req: &mut Req<'_>, head: bool) -> Result<Response<RespBody>> {
    let (bucket, rec) =
        svc.locate_object(&req.caller, req.region(), req.bucket(), req.key()).await.map_err(|e| req.core_err(e))?;
    conditions(req, "").check(&rec, ["If-Match", "If-Unmodified-Since"]).map_err(|e| req.core_err(e))?;
    let standard = req.header("x-oss-range-behavior").is_some_and(|v| v.eq_ignore_ascii_case("standard"));
    let plan = plan_range(req.header("range"), rec.size, standard);
    let (status, start, end) = match plan {
        RangePlan::Whole => (StatusCode::OK, 0, rec.size),
        RangePlan::Part(s, e) => (StatusCode::PARTIAL_CONTENT, s, e + 1),
        RangePlan::Unsatisfiable => {
            let mut e = OssError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "InvalidRange",
                "The requested range cannot be satisfied",
            );
            e.headers.push(("content-range", format!("bytes */{}", rec.size)));
            return Err(e);
        }
    };
    let mut b = object_headers(Response::builder().status(status), &rec, req).header("content-length", end - start);
    if status == StatusCode::PARTIAL_CONTENT {
        b = b.header("content-range", format!("bytes {}-{}/{}", start, end - 1, rec.size));
    }
    if head || start == end {
        return Ok(b.body(full(bytes::Bytes::new())).expect("valid response"));
    }
    let mut stream = svc.read_object(&req.caller, &bucket, &rec, start, end).await.map_err(|e| req.core_err(e))?;
    // Read the first chunk before sending headers: a failure there (a
    // tampered first segment, a missing blob) becomes a clean 500 with no
    // plaintext; a later failure aborts the body (and is logged).
    let first = match stream.next().await {
        Some(Ok(chunk)) => chunk,
        Some(Err(e)) => return Err(OssError::internal(format!("reading {}/{}: {e}", rec.bucket, rec.key))),
        None => bytes::Bytes::new(),
    };
    let body = futures_util::stream::once(async move { Ok(first) }).chain(stream);
    Ok(b.body(streamed(Box::pin(body))).expect("valid response"))
}

pub async fn get_object_meta(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    let rec = svc.head_object(&req.caller, req.region(), req.bucket(), req.key()).await.map_err(|e| req.core_err(e))?;
    let b = result_headers(Response::builder(), &rec)
        .header("content-length", rec.size)
        .header("last-modified", http_date(rec.last_modified));
    Ok(b.body(full(bytes::Bytes::new())).expect("valid response"))
}

pub async fn put_object(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    let content_md5 = req.content_md5()?;
    let content_length = req.content_length()?;
    let put = PutObject {
        bucket: req.bucket().to_owned(),
        key: req.key().to_owned(),
        attrs: req.object_attrs(),
        content_md5,
        content_length,
        forbid_overwrite: req.forbid_overwrite(),
        sse: req.sse_request()?,
        body: req.body_stream(),
    };
    let rec = svc.put_object(&req.caller, req.region(), put).await.map_err(|e| req.core_err(e))?;
    let b = result_headers(Response::builder(), &rec).header("content-md5", base64_md5(&rec.etag));
    Ok(b.header("content-length", 0).body(full(bytes::Bytes::new())).expect("valid response"))
}

fn base64_md5(etag_hex: &str) -> String {
    use base64::Engine as _;
    hex::decode(etag_hex).map(|b| base64::engine::general_purpose::STANDARD.encode(b)).unwrap_or_default()
}

/// Parses `x-oss-copy-source: /bucket/url-encoded-key[?versionId=…]`.
pub(crate) fn copy_source(req: &Req<'_>) -> Result<CopySource> {
    let raw = req.header("x-oss-copy-source").unwrap_or("");
    let path = raw.split('?').next().unwrap_or("");
    let path = path.strip_prefix('/').unwrap_or(path);
    let invalid = || {
        OssError::invalid_argument(
            "Copy Source must mention the source bucket and key: /sourcebucket/sourcekey.",
            "x-oss-copy-source",
            raw,
        )
    };
    let (bucket, key) = path.split_once('/').ok_or_else(invalid)?;
    let key = percent_decode(key.as_bytes()).decode_utf8().map_err(|_| invalid())?.into_owned();
    if bucket.is_empty() || key.is_empty() {
        return Err(invalid());
    }
    Ok(CopySource { bucket: bucket.to_owned(), key, conditions: conditions(req, "x-oss-copy-source-") })
}

pub async fn copy_object(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    let source = copy_source(req)?;
    let replace = match req.header("x-oss-metadata-directive").map(str::to_ascii_uppercase).as_deref() {
        None | Some("COPY") => None,
        Some("REPLACE") => Some(req.object_attrs()),
        Some(other) => {
            return Err(OssError::invalid_argument(
                "x-oss-metadata-directive is invalid.",
                "x-oss-metadata-directive",
                other,
            ));
        }
    };
    let copy = CopyObject {
        source,
        bucket: req.bucket().to_owned(),
        key: req.key().to_owned(),
        replace_attrs: replace,
        acl: req.header("x-oss-object-acl").map(str::to_owned),
        forbid_overwrite: req.forbid_overwrite(),
        sse: req.sse_request()?,
    };
    let rec = svc.copy_object(&req.caller, req.region(), copy).await.map_err(|e| req.core_err(e))?;
    let mut w = XmlWriter::default();
    w.open("CopyObjectResult")
        .elem("ETag", quoted(&rec.etag))
        .elem("LastModified", iso8601(rec.last_modified))
        .close("CopyObjectResult");
    Ok(xml_body(result_headers(Response::builder(), &rec), w))
}

pub async fn delete_object(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    svc.delete_object(&req.caller, req.region(), req.bucket(), req.key()).await.map_err(|e| req.core_err(e))?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn delete_multiple(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    let body = req.body_bytes().await?;
    let root = xml::parse(&body).filter(|r| r.name == "Delete").ok_or_else(OssError::malformed_xml)?;
    let quiet = root.child_text("Quiet").is_some_and(|q| q.eq_ignore_ascii_case("true"));
    let keys: Vec<String> =
        root.children_named("Object").filter_map(|o| o.child("Key").map(|k| k.text.clone())).collect();
    if keys.is_empty() || keys.len() > 1000 {
        return Err(OssError::malformed_xml());
    }
    let results =
        svc.delete_objects(&req.caller, req.region(), req.bucket(), &keys).await.map_err(|e| req.core_err(e))?;
    let url = req.url_encoding();
    let mut w = XmlWriter::default();
    w.open("DeleteResult");
    if url {
        w.elem("EncodingType", "url");
    }
    for (key, result) in keys.iter().zip(results) {
        if let Err(e) = result {
            let e = req.core_err(e);
            w.open("Error")
                .elem("Key", if url { url_encode_name(key) } else { key.clone() })
                .elem("Code", e.code)
                .elem("Message", e.message)
                .close("Error");
        } else if !quiet {
            w.open("Deleted").elem("Key", if url { url_encode_name(key) } else { key.clone() }).close("Deleted");
        }
    }
    w.close("DeleteResult");
    Ok(xml_response(StatusCode::OK, w))
}

pub async fn append_object(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    let raw = req.q("position").ok_or_else(|| {
        OssError::new(StatusCode::BAD_REQUEST, "MissingArgument", "Missing Some Required Arguments.")
            .with("ArgumentName", "position")
    })?;
    let position: u64 = raw.parse().map_err(|_| OssError::invalid_argument("position is invalid.", "position", raw))?;
    let append = AppendObject {
        bucket: req.bucket().to_owned(),
        key: req.key().to_owned(),
        position,
        attrs: req.object_attrs(),
        content_md5: req.content_md5()?,
        content_length: req.content_length()?,
        sse: req.sse_request()?,
        body: req.body_stream(),
    };
    let rec = svc.append_object(&req.caller, req.region(), append).await.map_err(|e| req.core_err(e))?;
    Ok(result_headers(Response::builder(), &rec)
        .header("content-length", 0)
        .body(full(bytes::Bytes::new()))
        .expect("valid response"))
}

pub async fn put_object_acl(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    let acl = req.header("x-oss-object-acl").unwrap_or("").to_owned();
    svc.put_object_acl(&req.caller, req.region(), req.bucket(), req.key(), &acl).await.map_err(|e| req.core_err(e))?;
    Ok(empty(StatusCode::OK))
}

pub async fn get_object_acl(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    let (b, rec) =
        svc.get_object_acl(&req.caller, req.region(), req.bucket(), req.key()).await.map_err(|e| req.core_err(e))?;
    Ok(xml_response(StatusCode::OK, acl_policy(&b.owner, &rec.attrs.acl)))
}

#[cfg(test)]
mod tests {
    use super::{RangePlan::*, plan_range};

    #[test]
    fn oss_range_table() {
        let p = |h: &str| plan_range(Some(h), 1000, false);
        assert_eq!(p("bytes=0-499"), Part(0, 499));
        assert_eq!(p("bytes=500-"), Part(500, 999));
        assert_eq!(p("bytes=-199"), Part(801, 999));
        assert_eq!(p("bytes=3-3"), Part(3, 3));
        for invalid in
            ["bytes=0-1000", "bytes=1000-2000", "bytes=1000-", "bytes=-2000", "byte=0-499", "bytes=5-2", "bytes=x"]
        {
            assert_eq!(p(invalid), Whole, "{invalid}");
        }
        assert_eq!(p("bytes=0-1,5-9"), Part(0, 1));
        assert_eq!(plan_range(None, 1000, false), Whole);
    }

    #[test]
    fn standard_range_behavior() {
        let s = |h: &str| plan_range(Some(h), 1000, true);
        assert_eq!(s("bytes=0-1000"), Part(0, 999));
        assert_eq!(s("bytes=1000-"), Unsatisfiable);
        assert_eq!(s("bytes=1000-2000"), Unsatisfiable);
        assert_eq!(s("bytes=-2000"), Part(0, 999));
        assert_eq!(plan_range(Some("bytes=0-0"), 0, true), Unsatisfiable);
        assert_eq!(plan_range(Some("bytes=0-0"), 0, false), Whole);
    }
}
