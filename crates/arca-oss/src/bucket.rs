//! Service and bucket operations.

use arca_core::{CreateBucket, EncryptionRule, ListParams, ObjectKind, ObjectRecord, ObjectService, Op};
use http::{Response, StatusCode};

use crate::error::OssError;
use crate::fmt::iso8601;
use crate::request::{Req, RespBody, empty, full, url_encode_name, xml_response};
use crate::xml::{self, XmlWriter};

type Result<T> = std::result::Result<T, OssError>;

pub(crate) fn kind_name(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Normal => "Normal",
        ObjectKind::Multipart => "Multipart",
        ObjectKind::Appendable => "Appendable",
    }
}

/// Loads the request's bucket, authorizing `action` on it.
async fn bucket_for(svc: &ObjectService, req: &Req<'_>, action: &'static str) -> Result<arca_core::BucketInfo> {
    svc.bucket(&req.caller, req.region(), req.bucket(), Op::bucket(action)).await.map_err(|e| req.core_err(e))
}

pub async fn put_bucket_policy(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    let body = req.body_bytes().await?;
    let text = std::str::from_utf8(&body).map_err(|_| {
        OssError::new(StatusCode::BAD_REQUEST, "MalformedPolicy", "The policy is not valid: it is not UTF-8 text.")
    })?;
    svc.put_bucket_policy(&req.caller, req.region(), req.bucket(), text).await.map_err(|e| req.core_err(e))?;
    Ok(empty(StatusCode::OK))
}

pub async fn get_bucket_policy(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    let text = svc.get_bucket_policy(&req.caller, req.region(), req.bucket()).await.map_err(|e| req.core_err(e))?;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("content-length", text.len())
        .body(full(bytes::Bytes::from(text)))
        .expect("valid response"))
}

pub async fn delete_bucket_policy(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    svc.delete_bucket_policy(&req.caller, req.region(), req.bucket()).await.map_err(|e| req.core_err(e))?;
    Ok(empty(StatusCode::NO_CONTENT))
}

fn owner(w: &mut XmlWriter, id: &str) {
    w.open("Owner").elem("ID", id).elem("DisplayName", id).close("Owner");
}

pub async fn list_buckets(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    let prefix = req.q("prefix").unwrap_or("").to_owned();
    let marker = req.q("marker").unwrap_or("").to_owned();
    let max = req.q_int("max-keys", 100, 1..=1000)?;
    // Refuses (and audits) anonymous callers.
    let (buckets, truncated) =
        svc.list_buckets(&req.caller, &prefix, &marker, max).await.map_err(|e| req.core_err(e))?;
    let account = req.caller.account_id().unwrap_or_default().to_owned();
    let mut w = XmlWriter::default();
    w.open("ListAllMyBucketsResult").elem("Prefix", &prefix).elem("Marker", &marker).elem("MaxKeys", max.to_string());
    w.elem("IsTruncated", truncated.to_string());
    if truncated {
        w.elem("NextMarker", buckets.last().map(|b| b.name.as_str()).unwrap_or(""));
    }
    owner(&mut w, &account);
    w.open("Buckets");
    for b in &buckets {
        w.open("Bucket")
            .elem("CreationDate", iso8601(b.created))
            .elem("ExtranetEndpoint", req.cfg.endpoint(&b.region))
            .elem("IntranetEndpoint", req.cfg.internal_endpoint(&b.region))
            .elem("Location", format!("oss-{}", b.region))
            .elem("Name", &b.name)
            .elem("Region", &b.region)
            .elem("StorageClass", &b.storage_class)
            .close("Bucket");
    }
    w.close("Buckets").close("ListAllMyBucketsResult");
    Ok(xml_response(StatusCode::OK, w))
}

pub async fn put_bucket(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    let body = req.body_bytes().await?;
    let (mut storage_class, mut redundancy) = ("Standard".to_owned(), "LRS".to_owned());
    if !body.iter().all(u8::is_ascii_whitespace) {
        let root =
            xml::parse(&body).filter(|r| r.name == "CreateBucketConfiguration").ok_or_else(OssError::malformed_xml)?;
        if let Some(sc) = root.child_text("StorageClass").filter(|s| !s.is_empty()) {
            storage_class = sc.to_owned();
        }
        if let Some(r) = root.child_text("DataRedundancyType").filter(|s| !s.is_empty()) {
            redundancy = r.to_owned();
        }
    }
    let spec = CreateBucket {
        name: req.bucket().to_owned(),
        region: req.region().to_owned(),
        acl: req.header("x-oss-acl").unwrap_or("private").to_owned(),
        storage_class,
        redundancy,
        encryption: rule_from_headers(req)?,
    };
    svc.create_bucket(&req.caller, spec).await.map_err(|e| req.core_err(e))?;
    let mut resp = empty(StatusCode::OK);
    resp.headers_mut().insert("location", format!("/{}", req.bucket()).parse().expect("bucket names are header-safe"));
    Ok(resp)
}

pub async fn delete_bucket(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    svc.delete_bucket(&req.caller, req.region(), req.bucket()).await.map_err(|e| req.core_err(e))?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn get_bucket_info(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    let b = bucket_for(svc, req, "oss:GetBucketInfo").await?;
    let mut w = XmlWriter::default();
    w.open("BucketInfo").open("Bucket");
    w.elem("AccessMonitor", "Disabled")
        .elem("CreationDate", iso8601(b.created))
        .elem("ExtranetEndpoint", req.cfg.endpoint(&b.region))
        .elem("IntranetEndpoint", req.cfg.internal_endpoint(&b.region))
        .elem("Location", format!("oss-{}", b.region))
        .elem("StorageClass", &b.storage_class)
        .elem("TransferAcceleration", "Disabled")
        .elem("CrossRegionReplication", "Disabled")
        .elem("Name", &b.name);
    owner(&mut w, &b.owner);
    w.open("AccessControlList").elem("Grant", &b.acl).close("AccessControlList");
    w.elem("Comment", "").elem("DataRedundancyType", &b.redundancy);
    w.open("BucketPolicy").elem("LogBucket", "").elem("LogPrefix", "").close("BucketPolicy");
    // oss2 needs the element, with the literal text `None` when no rule is set.
    w.open("ServerSideEncryptionRule");
    match &b.encryption {
        None => {
            w.elem("SSEAlgorithm", "None");
        }
        Some(rule) => {
            w.elem("SSEAlgorithm", &rule.algorithm)
                .elem_opt("KMSMasterKeyID", rule.kms_key_id.as_deref())
                .elem_opt("KMSDataEncryption", rule.kms_data_encryption.as_deref());
        }
    }
    w.close("ServerSideEncryptionRule");
    w.close("Bucket").close("BucketInfo");
    Ok(xml_response(StatusCode::OK, w))
}

pub async fn get_bucket_location(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    let b = bucket_for(svc, req, "oss:GetBucketLocation").await?;
    let mut w = XmlWriter::default();
    w.elem("LocationConstraint", format!("oss-{}", b.region));
    Ok(xml_response(StatusCode::OK, w))
}

pub async fn get_bucket_stat(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    let s = svc.bucket_stat(&req.caller, req.region(), req.bucket()).await.map_err(|e| req.core_err(e))?;
    let mut w = XmlWriter::default();
    w.open("BucketStat")
        .elem("Storage", s.storage.to_string())
        .elem("ObjectCount", s.objects.to_string())
        .elem("MultipartUploadCount", s.uploads.to_string())
        .elem("LiveChannelCount", "0")
        .elem("LastModifiedTime", s.last_modified.to_string())
        .elem("StandardStorage", s.storage.to_string())
        .elem("StandardObjectCount", s.objects.to_string());
    for class in ["InfrequentAccess", "Archive", "ColdArchive", "DeepColdArchive"] {
        w.elem(&format!("{class}Storage"), "0")
            .elem(&format!("{class}RealStorage"), "0")
            .elem(&format!("{class}ObjectCount"), "0");
    }
    w.elem("MultipartPartCount", "0").elem("DeleteMarkerCount", "0").close("BucketStat");
    Ok(xml_response(StatusCode::OK, w))
}

/// PutBucket's SSE headers become the bucket's default rule.
fn rule_from_headers(req: &Req<'_>) -> Result<Option<EncryptionRule>> {
    let sse = req.sse_request()?;
    Ok(sse.algorithm.map(|algorithm| EncryptionRule {
        algorithm,
        kms_key_id: sse.key_id,
        kms_data_encryption: sse.data_encryption,
    }))
}

pub async fn put_bucket_encryption(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    let body = req.body_bytes().await?;
    let root =
        xml::parse(&body).filter(|r| r.name == "ServerSideEncryptionRule").ok_or_else(OssError::malformed_xml)?;
    let by_default = root.child("ApplyServerSideEncryptionByDefault").ok_or_else(OssError::malformed_xml)?;
    let text = |name: &str| by_default.child_text(name).filter(|t| !t.is_empty()).map(str::to_owned);
    let rule = EncryptionRule {
        algorithm: text("SSEAlgorithm").ok_or_else(OssError::malformed_xml)?,
        kms_key_id: text("KMSMasterKeyID"),
        kms_data_encryption: text("KMSDataEncryption"),
    };
    svc.put_bucket_encryption(&req.caller, req.region(), req.bucket(), rule).await.map_err(|e| req.core_err(e))?;
    Ok(empty(StatusCode::OK))
}

pub async fn get_bucket_encryption(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    let b = bucket_for(svc, req, "oss:GetBucketEncryption").await?;
    let rule = b.encryption.ok_or_else(|| {
        OssError::new(
            StatusCode::NOT_FOUND,
            "NoSuchServerSideEncryptionRule",
            "The server side encryption configuration was not found.",
        )
        .with("BucketName", req.bucket())
    })?;
    let mut w = XmlWriter::default();
    w.open("ServerSideEncryptionRule")
        .open("ApplyServerSideEncryptionByDefault")
        .elem("SSEAlgorithm", &rule.algorithm)
        .elem_opt("KMSMasterKeyID", rule.kms_key_id.as_deref())
        .elem_opt("KMSDataEncryption", rule.kms_data_encryption.as_deref())
        .close("ApplyServerSideEncryptionByDefault")
        .close("ServerSideEncryptionRule");
    Ok(xml_response(StatusCode::OK, w))
}

pub async fn delete_bucket_encryption(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    svc.delete_bucket_encryption(&req.caller, req.region(), req.bucket()).await.map_err(|e| req.core_err(e))?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn put_bucket_acl(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    let acl = req.header("x-oss-acl").unwrap_or("").to_owned();
    svc.put_bucket_acl(&req.caller, req.region(), req.bucket(), &acl).await.map_err(|e| req.core_err(e))?;
    Ok(empty(StatusCode::OK))
}

pub(crate) fn acl_policy(owner_id: &str, grant: &str) -> XmlWriter {
    let mut w = XmlWriter::default();
    w.open("AccessControlPolicy");
    owner(&mut w, owner_id);
    w.open("AccessControlList").elem("Grant", grant).close("AccessControlList").close("AccessControlPolicy");
    w
}

pub async fn get_bucket_acl(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    let b = bucket_for(svc, req, "oss:GetBucketAcl").await?;
    Ok(xml_response(StatusCode::OK, acl_policy(&b.owner, &b.acl)))
}

pub async fn list_live_channels(svc: &ObjectService, req: &mut Req<'_>) -> Result<Response<RespBody>> {
    bucket_for(svc, req, "oss:ListLiveChannel").await?;
    let mut w = XmlWriter::default();
    w.open("ListLiveChannelResult")
        .elem("Prefix", "")
        .elem("Marker", "")
        .elem("MaxKeys", "100")
        .elem("IsTruncated", "false")
        .elem("NextMarker", "")
        .close("ListLiveChannelResult");
    Ok(xml_response(StatusCode::OK, w))
}

/// ListObjectsV2 continuation tokens: lower-case hex of the last returned
/// key or prefix (URL-safe, self-validating).
fn decode_token(token: &str) -> Option<String> {
    String::from_utf8(hex::decode(token).ok()?).ok()
}

fn object_entry(w: &mut XmlWriter, rec: &ObjectRecord, enc: &dyn Fn(&str) -> String, with_owner: Option<&str>) {
    w.open("Contents")
        .elem("Key", enc(&rec.key))
        .elem("LastModified", iso8601(rec.last_modified))
        .elem("ETag", format!("\"{}\"", rec.etag))
        .elem("Type", kind_name(rec.kind))
        .elem("Size", rec.size.to_string())
        .elem("StorageClass", &rec.attrs.storage_class);
    if let Some(o) = with_owner {
        owner(w, o);
    }
    w.close("Contents");
}

pub async fn list_objects(svc: &ObjectService, req: &mut Req<'_>, v2: bool) -> Result<Response<RespBody>> {
    let prefix = req.q("prefix").unwrap_or("").to_owned();
    let delimiter = req.q("delimiter").unwrap_or("").to_owned();
    let max_keys = req.q_int("max-keys", 100, 1..=1000)?;
    let token = req.q_nonempty("continuation-token").map(str::to_owned);
    let start_after = req.q("start-after").unwrap_or("").to_owned();
    let marker = req.q("marker").unwrap_or("").to_owned();
    let after = if v2 {
        match &token {
            Some(t) => Some(decode_token(t).ok_or_else(|| {
                OssError::invalid_argument("The continuation token provided is incorrect.", "continuation-token", t)
            })?),
            None => Some(start_after.clone()).filter(|s| !s.is_empty()),
        }
    } else {
        Some(marker.clone()).filter(|s| !s.is_empty())
    };
    let params = ListParams { prefix: prefix.clone(), delimiter: delimiter.clone(), after, max_keys };
    let listing =
        svc.list_objects(&req.caller, req.region(), req.bucket(), &params).await.map_err(|e| req.core_err(e))?;
    let url = req.url_encoding();
    let enc = |s: &str| {
        if url { url_encode_name(s) } else { s.to_owned() }
    };
    let bucket_owner = if v2 && req.q("fetch-owner") != Some("true") { None } else { Some(listing.owner.clone()) };

    let mut w = XmlWriter::default();
    w.open("ListBucketResult").elem("Name", req.bucket()).elem("Prefix", enc(&prefix));
    if v2 {
        if !start_after.is_empty() {
            w.elem("StartAfter", enc(&start_after));
        }
        w.elem_opt("ContinuationToken", token.as_deref());
    } else {
        w.elem("Marker", enc(&marker));
    }
    w.elem("MaxKeys", max_keys.to_string()).elem("Delimiter", enc(&delimiter));
    if url {
        w.elem("EncodingType", "url");
    }
    w.elem("IsTruncated", listing.truncated.to_string());
    if listing.truncated
        && let Some(next) = &listing.next_marker
    {
        if v2 {
            w.elem("NextContinuationToken", hex::encode(next.as_bytes()));
        } else {
            w.elem("NextMarker", enc(next));
        }
    }
    if v2 {
        w.elem("KeyCount", (listing.objects.len() + listing.prefixes.len()).to_string());
    }
    for rec in &listing.objects {
        object_entry(&mut w, rec, &enc, bucket_owner.as_deref());
    }
    for p in &listing.prefixes {
        w.open("CommonPrefixes").elem("Prefix", enc(p)).close("CommonPrefixes");
    }
    w.close("ListBucketResult");
    Ok(xml_response(StatusCode::OK, w))
}
