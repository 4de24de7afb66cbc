//! Multipart upload operations.

use arca_core::{CompletePart, ObjectService, UploadListParams};
use http::{Response, StatusCode};

use crate::error::OssError;
use crate::fmt::iso8601;
use crate::object::{copy_source, result_headers};
use crate::request::{Req, RespBody, empty, full, sse_headers, url_encode_name, xml_body, xml_response};
use crate::xml::{self, XmlWriter};

type Result<T> = std::result::Result<T, OssError>;

fn upload_id(req: &Req<'_>) -> String {
    req.q("uploadId").unwrap_or("").to_owned()
}

fn part_number(req: &Req<'_>) -> Result<u32> {
    let raw = req.q("partNumber").unwrap_or("");
    raw.parse().ok().filter(|n| (1..=10000).contains(n)).ok_or_else(|| {
        OssError::invalid_argument("Part number must be an integer between 1 and 10000, inclusive.", "partNumber", raw)
    })
}

fn enc(req: &Req<'_>, s: &str) -> String {
    if req.url_encoding() { url_encode_name(s) } else { s.to_owned() }
}

pub async fn initiate(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    let attrs = req.object_attrs();
    let sse = req.sse_request()?;
    let up = svc
        .initiate_upload(&req.caller, req.region(), req.bucket(), req.key(), attrs, &sse, req.forbid_overwrite())
        .await
        .map_err(|e| req.core_err(e))?;
    let mut w = XmlWriter::default();
    w.open("InitiateMultipartUploadResult");
    if req.url_encoding() {
        w.elem("EncodingType", "url");
    }
    w.elem("Bucket", &up.bucket)
        .elem("Key", enc(req, &up.key))
        .elem("UploadId", &up.upload_id)
        .close("InitiateMultipartUploadResult");
    Ok(xml_body(sse_headers(Response::builder(), up.encryption.as_ref()), w))
}

pub async fn upload_part(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    let number = part_number(req)?;
    req.refuse_sse_headers()?;
    let md5 = req.content_md5()?;
    let len = req.content_length()?;
    let body = req.body_stream();
    let (part, encryption) = svc
        .upload_part(&req.caller, req.region(), req.bucket(), req.key(), &upload_id(req), number, md5, len, body)
        .await
        .map_err(|e| req.core_err(e))?;
    Ok(sse_headers(Response::builder(), encryption.as_ref())
        .header("etag", format!("\"{}\"", part.etag))
        .header("x-oss-hash-crc64ecma", part.crc64.to_string())
        .header("content-length", 0)
        .body(full(bytes::Bytes::new()))
        .expect("valid response"))
}

/// `bytes=<start>-[<end>]`.
fn copy_range(req: &Req<'_>) -> Result<Option<(u64, Option<u64>)>> {
    let Some(raw) = req.header("x-oss-copy-source-range") else {
        return Ok(None);
    };
    let bad = || OssError::invalid_argument("The x-oss-copy-source-range is invalid.", "x-oss-copy-source-range", raw);
    let spec = raw.trim().strip_prefix("bytes=").ok_or_else(bad)?;
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let start: u64 = a.trim().parse().map_err(|_| bad())?;
    let end = if b.trim().is_empty() { None } else { Some(b.trim().parse::<u64>().map_err(|_| bad())?) };
    if end.is_some_and(|e| e < start) {
        return Err(bad());
    }
    Ok(Some((start, end)))
}

pub async fn upload_part_copy(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    let number = part_number(req)?;
    req.refuse_sse_headers()?;
    let source = copy_source(req)?;
    let range = copy_range(req)?;
    let (part, encryption) = svc
        .upload_part_copy(&req.caller, req.region(), req.bucket(), req.key(), &upload_id(req), number, &source, range)
        .await
        .map_err(|e| req.core_err(e))?;
    let etag = format!("\"{}\"", part.etag);
    let mut w = XmlWriter::default();
    w.open("CopyPartResult")
        .elem("LastModified", iso8601(part.last_modified))
        .elem("ETag", &etag)
        .close("CopyPartResult");
    let b = sse_headers(Response::builder(), encryption.as_ref())
        .header("etag", &etag)
        .header("x-oss-hash-crc64ecma", part.crc64.to_string());
    Ok(xml_body(b, w))
}

pub async fn complete(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    req.refuse_sse_headers()?;
    let body = req.body_bytes().await?;
    let all = req.header("x-oss-complete-all").is_some_and(|v| v.eq_ignore_ascii_case("yes"));
    let listed = if all {
        if !body.is_empty() {
            return Err(OssError::invalid_argument(
                "With x-oss-complete-all the body must be empty.",
                "x-oss-complete-all",
                "yes",
            ));
        }
        None
    } else {
        let root =
            xml::parse(&body).filter(|r| r.name == "CompleteMultipartUpload").ok_or_else(OssError::malformed_xml)?;
        let mut parts = Vec::new();
        for p in root.children_named("Part") {
            let number = p.child_text("PartNumber").and_then(|n| n.parse().ok()).ok_or_else(OssError::malformed_xml)?;
            let etag = p.child_text("ETag").ok_or_else(OssError::malformed_xml)?.to_owned();
            parts.push(CompletePart { number, etag });
        }
        Some(parts)
    };
    let acl = req.header("x-oss-object-acl").map(str::to_owned);
    let rec = svc
        .complete_upload(
            &req.caller,
            req.region(),
            req.bucket(),
            req.key(),
            &upload_id(req),
            listed,
            acl,
            req.forbid_overwrite(),
        )
        .await
        .map_err(|e| req.core_err(e))?;
    let mut w = XmlWriter::default();
    w.open("CompleteMultipartUploadResult");
    if req.url_encoding() {
        w.elem("EncodingType", "url");
    }
    let location =
        format!("http://{}/{}/{}", req.cfg.endpoint(req.region()), rec.bucket, crate::sign::uri_encode(&rec.key, true));
    w.elem("Location", location)
        .elem("Bucket", &rec.bucket)
        .elem("Key", enc(req, &rec.key))
        .elem("ETag", format!("\"{}\"", rec.etag))
        .close("CompleteMultipartUploadResult");
    Ok(xml_body(result_headers(Response::builder(), &rec), w))
}

pub async fn abort(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    svc.abort_upload(&req.caller, req.region(), req.bucket(), req.key(), &upload_id(req))
        .await
        .map_err(|e| req.core_err(e))?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn list_parts(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    let marker = req.q_int("part-number-marker", 0, 0..=10000)? as u32;
    let max = req.q_int("max-parts", 1000, 1..=1000)?;
    let page = svc
        .list_parts(&req.caller, req.region(), req.bucket(), req.key(), &upload_id(req), marker, max)
        .await
        .map_err(|e| req.core_err(e))?;
    let next = page.parts.last().map_or(marker, |p| p.number);
    let mut w = XmlWriter::default();
    w.open("ListPartsResult");
    if req.url_encoding() {
        w.elem("EncodingType", "url");
    }
    w.elem("Bucket", &page.upload.bucket)
        .elem("Key", enc(req, &page.upload.key))
        .elem("UploadId", &page.upload.upload_id)
        .elem("PartNumberMarker", marker.to_string())
        .elem("NextPartNumberMarker", next.to_string())
        .elem("MaxParts", max.to_string())
        .elem("IsTruncated", page.truncated.to_string());
    for p in &page.parts {
        w.open("Part")
            .elem("PartNumber", p.number.to_string())
            .elem("LastModified", iso8601(p.last_modified))
            .elem("ETag", format!("\"{}\"", p.etag))
            .elem("HashCrc64ecma", p.crc64.to_string())
            .elem("Size", p.size.to_string())
            .close("Part");
    }
    w.close("ListPartsResult");
    Ok(xml_response(StatusCode::OK, w))
}

pub async fn list_uploads(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    let p = UploadListParams {
        prefix: req.q("prefix").unwrap_or("").to_owned(),
        delimiter: req.q("delimiter").unwrap_or("").to_owned(),
        key_marker: req.q("key-marker").unwrap_or("").to_owned(),
        upload_id_marker: req.q("upload-id-marker").unwrap_or("").to_owned(),
        max_uploads: req.q_int("max-uploads", 1000, 1..=1000)?,
    };
    let l = svc.list_uploads(&req.caller, req.region(), req.bucket(), &p).await.map_err(|e| req.core_err(e))?;
    let mut w = XmlWriter::default();
    w.open("ListMultipartUploadsResult");
    if req.url_encoding() {
        w.elem("EncodingType", "url");
    }
    w.elem("Bucket", req.bucket())
        .elem("KeyMarker", enc(req, &p.key_marker))
        .elem("UploadIdMarker", &p.upload_id_marker)
        .elem("NextKeyMarker", if l.truncated { enc(req, &l.next_key_marker) } else { String::new() })
        .elem("NextUploadIdMarker", if l.truncated { l.next_upload_id_marker.clone() } else { String::new() })
        .elem("Delimiter", enc(req, &p.delimiter))
        .elem("Prefix", enc(req, &p.prefix))
        .elem("MaxUploads", p.max_uploads.to_string())
        .elem("IsTruncated", l.truncated.to_string());
    for u in &l.uploads {
        w.open("Upload")
            .elem("Key", enc(req, &u.key))
            .elem("UploadId", &u.upload_id)
            .elem("StorageClass", &u.attrs.storage_class)
            .elem("Initiated", iso8601(u.initiated))
            .close("Upload");
    }
    for cp in &l.prefixes {
        w.open("CommonPrefixes").elem("Prefix", enc(req, cp)).close("CommonPrefixes");
    }
    w.close("ListMultipartUploadsResult");
    Ok(xml_response(StatusCode::OK, w))
}
