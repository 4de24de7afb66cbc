//! From method, host, path and query to an OSS operation.
//!
//! Addressing (spec 1.3): a host `<bucket>.oss-<region>.<domain>` is
//! virtual-hosted (bucket from the host, key = the whole path); any other host
//! (IP literal, `localhost`, `oss-<region>.<domain>`, a custom name) is path
//! style (bucket = first path segment). The region comes from the host name
//! when it names a served region, else from the listener.

use http::Method;
use percent_encoding::percent_decode;

use crate::error::OssError;

/// The service domain and the regions this deployment serves.
#[derive(Debug, Clone)]
pub struct Addressing {
    /// Domain of region host names, e.g. `aliyuncs.com` for `oss-cn-hangzhou.aliyuncs.com`.
    pub domain: String,
    /// Served region ids.
    pub regions: Vec<String>,
}

/// Where a request points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Region the request is served in.
    pub region: String,
    /// Bucket, if any.
    pub bucket: Option<String>,
    /// Decoded key, if any (never empty).
    pub key: Option<String>,
}

/// Splits a raw query into decoded (name, value) pairs; `+` means space.
pub fn parse_query(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(arca_wire::parse_query).unwrap_or_default()
}

impl Addressing {
    /// The region a host name (without port) names, and the bucket label before it.
    fn parse_host<'h>(&self, host: &'h str) -> Option<(String, Option<&'h str>)> {
        for region in &self.regions {
            for name in [format!("oss-{region}.{}", self.domain), format!("oss-{region}-internal.{}", self.domain)] {
                if host.eq_ignore_ascii_case(&name) {
                    return Some((region.clone(), None));
                }
                if let Some(label) = host.strip_suffix(name.as_str()).and_then(|h| h.strip_suffix('.'))
                    && !label.is_empty()
                    && !label.contains('.')
                {
                    return Some((region.clone(), Some(label)));
                }
            }
        }
        None
    }

    /// Resolves a request's target. `listener_region` serves hosts that name no region.
    pub fn target(&self, host: Option<&str>, raw_path: &str, listener_region: &str) -> Result<Target, OssError> {
        let host = host.map(strip_port).unwrap_or("");
        let path = raw_path.strip_prefix('/').unwrap_or(raw_path);
        let (region, bucket, raw_key) = match self.parse_host(host) {
            Some((region, Some(bucket))) => (region, Some(bucket.to_owned()), path),
            Some((region, None)) => split_path(region, path),
            None => split_path(listener_region.to_owned(), path),
        };
        let key = if raw_key.is_empty() {
            None
        } else {
            let bytes: Vec<u8> = percent_decode(raw_key.as_bytes()).collect();
            Some(String::from_utf8(bytes).map_err(|_| {
                OssError::new(http::StatusCode::BAD_REQUEST, "InvalidObjectName", "The specified object is not valid")
            })?)
        };
        let bucket = bucket.filter(|b| !b.is_empty());
        if bucket.is_none() && key.is_some() {
            return Err(OssError::new(
                http::StatusCode::BAD_REQUEST,
                "InvalidBucketName",
                "The specified bucket is not valid.",
            ));
        }
        Ok(Target { region, bucket, key })
    }
}

fn split_path(region: String, path: &str) -> (String, Option<String>, &str) {
    if path.is_empty() {
        return (region, None, "");
    }
    let (bucket, rest) = path.split_once('/').unwrap_or((path, ""));
    let bucket = percent_decode(bucket.as_bytes()).decode_utf8_lossy().into_owned();
    (region, Some(bucket), rest)
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split(']').next().map(|h| h.trim_start_matches('[')).unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// Every operation the dialect serves, named as in the OSS API reference.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    ListBuckets,
    PutBucket,
    DeleteBucket,
    ListObjects,
    ListObjectsV2,
    GetBucketInfo,
    GetBucketLocation,
    GetBucketStat,
    PutBucketAcl,
    GetBucketAcl,
    PutBucketEncryption,
    GetBucketEncryption,
    DeleteBucketEncryption,
    ListMultipartUploads,
    DeleteMultipleObjects,
    ListLiveChannel,
    PutObject,
    CopyObject,
    GetObject,
    HeadObject,
    GetObjectMeta,
    DeleteObject,
    AppendObject,
    InitiateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
    PutObjectAcl,
    GetObjectAcl,
    PutBucketPolicy,
    GetBucketPolicy,
    DeleteBucketPolicy,
}

/// Known sub-resources this server does not implement (yet): answered with
/// a clear `NotImplemented` instead of being mistaken for a plain GET/PUT.
const UNIMPLEMENTED: &[&str] = &[
    "policy",
    "versioning",
    "versions",
    "cors",
    "tagging",
    "lifecycle",
    "referer",
    "website",
    "logging",
    "symlink",
    "restore",
    "worm",
    "replication",
    "inventory",
    "qos",
    "requestPayment",
    "transferAcceleration",
    "objectInfo",
    "x-oss-process",
    "cname",
    "resourceGroup",
    "style",
    "comp",
];

impl Op {
    /// Chooses the operation. `has` tells whether a query parameter is present.
    pub fn of(method: &Method, target: &Target, has: impl Fn(&str) -> bool, copy_source: bool) -> Result<Op, OssError> {
        use Op::*;
        let not_impl = || {
            OssError::new(
                http::StatusCode::BAD_REQUEST,
                "NotImplemented",
                "A header or query you provided implies functionality that is not implemented.",
            )
        };
        let not_allowed = || {
            OssError::new(
                http::StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "The specified method is not allowed against this resource.",
            )
        };
        if target.bucket.is_none() {
            return if *method == Method::GET { Ok(ListBuckets) } else { Err(not_allowed()) };
        }
        if target.key.is_none() && has("policy") {
            return match *method {
                Method::PUT => Ok(PutBucketPolicy),
                Method::GET => Ok(GetBucketPolicy),
                Method::DELETE => Ok(DeleteBucketPolicy),
                _ => Err(not_allowed()),
            };
        }
        if UNIMPLEMENTED.iter().any(|s| has(s)) {
            return Err(not_impl());
        }
        let op = if target.key.is_none() {
            match *method {
                Method::PUT if has("acl") => PutBucketAcl,
                Method::PUT if has("encryption") => PutBucketEncryption,
                Method::PUT => PutBucket,
                Method::DELETE if has("encryption") => DeleteBucketEncryption,
                Method::DELETE => DeleteBucket,
                Method::GET if has("encryption") => GetBucketEncryption,
                Method::GET if has("acl") => GetBucketAcl,
                Method::GET if has("bucketInfo") => GetBucketInfo,
                Method::GET if has("location") => GetBucketLocation,
                Method::GET if has("stat") => GetBucketStat,
                Method::GET if has("uploads") => ListMultipartUploads,
                Method::GET if has("live") => ListLiveChannel,
                Method::GET if has("list-type") => ListObjectsV2,
                Method::GET => ListObjects,
                Method::POST if has("delete") => DeleteMultipleObjects,
                Method::POST => return Err(not_impl()),
                _ => return Err(not_allowed()),
            }
        } else {
            match *method {
                Method::PUT if has("acl") => PutObjectAcl,
                Method::PUT if has("partNumber") && has("uploadId") && copy_source => UploadPartCopy,
                Method::PUT if has("partNumber") && has("uploadId") => UploadPart,
                Method::PUT if copy_source => CopyObject,
                Method::PUT => PutObject,
                Method::GET if has("acl") => GetObjectAcl,
                Method::GET if has("uploadId") => ListParts,
                Method::GET => GetObject,
                Method::HEAD if has("objectMeta") => GetObjectMeta,
                Method::HEAD => HeadObject,
                Method::DELETE if has("uploadId") => AbortMultipartUpload,
                Method::DELETE => DeleteObject,
                Method::POST if has("append") => AppendObject,
                Method::POST if has("uploads") => InitiateMultipartUpload,
                Method::POST if has("uploadId") => CompleteMultipartUpload,
                _ => return Err(not_allowed()),
            }
        };
        Ok(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> Addressing {
        Addressing { domain: "aliyuncs.com".into(), regions: vec!["cn-hangzhou".into(), "cn-shanghai".into()] }
    }

    fn t(region: &str, bucket: Option<&str>, key: Option<&str>) -> Target {
        Target { region: region.into(), bucket: bucket.map(Into::into), key: key.map(Into::into) }
    }

    #[test]
    fn path_style_for_ip_and_localhost() {
        let a = addr();
        assert_eq!(a.target(Some("127.0.0.1:9000"), "/", "cn-hangzhou").unwrap(), t("cn-hangzhou", None, None));
        assert_eq!(a.target(Some("127.0.0.1:9000"), "/b/", "cn-hangzhou").unwrap(), t("cn-hangzhou", Some("b"), None));
        assert_eq!(a.target(Some("localhost"), "/b", "cn-shanghai").unwrap(), t("cn-shanghai", Some("b"), None));
        assert_eq!(
            a.target(Some("[::1]:9000"), "/b/a%2Fb%20c+d%25", "cn-hangzhou").unwrap(),
            t("cn-hangzhou", Some("b"), Some("a/b c+d%"))
        );
        assert_eq!(a.target(Some("127.0.0.1"), "/b//x/", "r").unwrap(), t("r", Some("b"), Some("/x/")));
    }

    #[test]
    fn virtual_host_and_region_hosts() {
        let a = addr();
        assert_eq!(
            a.target(Some("bkt.oss-cn-shanghai.aliyuncs.com"), "/k/%E4%B8%AD", "cn-hangzhou").unwrap(),
            t("cn-shanghai", Some("bkt"), Some("k/中"))
        );
        assert_eq!(
            a.target(Some("bkt.oss-cn-hangzhou.aliyuncs.com:9000"), "/", "x").unwrap(),
            t("cn-hangzhou", Some("bkt"), None)
        );
        assert_eq!(
            a.target(Some("oss-cn-shanghai.aliyuncs.com"), "/bkt/k", "x").unwrap(),
            t("cn-shanghai", Some("bkt"), Some("k"))
        );
        assert_eq!(
            a.target(Some("bkt.oss-cn-shanghai-internal.aliyuncs.com"), "/", "x").unwrap().bucket.as_deref(),
            Some("bkt")
        );
    }

    #[test]
    fn non_utf8_key_is_invalid() {
        assert_eq!(addr().target(Some("127.0.0.1"), "/b/%FF", "r").unwrap_err().code, "InvalidObjectName");
    }

    #[test]
    fn query_decoding() {
        let q = parse_query(Some("acl=&prefix=a+b%2Bc&uploads&x=%E4%B8%AD"));
        assert_eq!(
            q,
            vec![
                ("acl".into(), "".into()),
                ("prefix".into(), "a b+c".into()),
                ("uploads".into(), "".into()),
                ("x".into(), "中".into())
            ]
        );
    }

    #[test]
    fn dispatch_table() {
        let obj = t("r", Some("b"), Some("k"));
        let bkt = t("r", Some("b"), None);
        let q = |names: &'static [&'static str]| move |n: &str| names.contains(&n);
        assert_eq!(Op::of(&Method::GET, &t("r", None, None), q(&[]), false).unwrap(), Op::ListBuckets);
        assert_eq!(Op::of(&Method::GET, &bkt, q(&["list-type"]), false).unwrap(), Op::ListObjectsV2);
        assert_eq!(Op::of(&Method::GET, &bkt, q(&["bucketInfo"]), false).unwrap(), Op::GetBucketInfo);
        assert_eq!(Op::of(&Method::POST, &bkt, q(&["delete"]), false).unwrap(), Op::DeleteMultipleObjects);
        assert_eq!(Op::of(&Method::PUT, &obj, q(&["partNumber", "uploadId"]), true).unwrap(), Op::UploadPartCopy);
        assert_eq!(Op::of(&Method::PUT, &obj, q(&[]), true).unwrap(), Op::CopyObject);
        assert_eq!(Op::of(&Method::HEAD, &obj, q(&["objectMeta"]), false).unwrap(), Op::GetObjectMeta);
        assert_eq!(Op::of(&Method::POST, &obj, q(&["append", "position"]), false).unwrap(), Op::AppendObject);
        assert_eq!(Op::of(&Method::POST, &obj, q(&["uploadId"]), false).unwrap(), Op::CompleteMultipartUpload);
        assert_eq!(Op::of(&Method::GET, &bkt, q(&["encryption"]), false).unwrap(), Op::GetBucketEncryption);
        assert_eq!(Op::of(&Method::DELETE, &bkt, q(&["encryption"]), false).unwrap(), Op::DeleteBucketEncryption);
        assert_eq!(Op::of(&Method::GET, &bkt, q(&["policy"]), false).unwrap(), Op::GetBucketPolicy);
        assert_eq!(Op::of(&Method::PUT, &bkt, q(&["policy"]), false).unwrap(), Op::PutBucketPolicy);
        assert_eq!(Op::of(&Method::DELETE, &bkt, q(&["policy"]), false).unwrap(), Op::DeleteBucketPolicy);
        assert_eq!(Op::of(&Method::POST, &bkt, q(&["policy"]), false).unwrap_err().code, "MethodNotAllowed");
        assert_eq!(Op::of(&Method::PATCH, &obj, q(&[]), false).unwrap_err().code, "MethodNotAllowed");
    }
}
