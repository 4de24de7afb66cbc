//! OSS request signatures: V1 (`OSS`, HMAC-SHA1), V2 (`OSS2`, HMAC-SHA256)
//! and V4 (`OSS4-HMAC-SHA256`), for headers and presigned URLs. Everything
//! here is pure: it builds the string a client signed from the request's
//! parts and computes the signature; `auth` decides what to compare.

use aws_lc_rs::{digest, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// Query parameters that V1 signs (the "sub-resources"); every SDK signs
/// only names from this set.
const SUBRESOURCES: &[&str] = &[
    "acl",
    "append",
    "asyncFetch",
    "bucketArchiveDirectRead",
    "bucketInfo",
    "callback",
    "callback-var",
    "cloudboxes",
    "cname",
    "comp",
    "continuation-token",
    "cors",
    "delete",
    "encryption",
    "endTime",
    "group",
    "httpsConfig",
    "img",
    "inventory",
    "inventoryId",
    "lifecycle",
    "link",
    "live",
    "location",
    "logging",
    "metaQuery",
    "objectInfo",
    "objectMeta",
    "partNumber",
    "policy",
    "position",
    "qos",
    "qosInfo",
    "redundancyTransition",
    "referer",
    "regionList",
    "replication",
    "replicationLocation",
    "replicationProgress",
    "requestPayment",
    "resourceGroup",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "rtc",
    "security-token",
    "sequential",
    "startTime",
    "stat",
    "status",
    "style",
    "styleName",
    "symlink",
    "tagging",
    "transferAcceleration",
    "udf",
    "udfApplication",
    "udfApplicationLog",
    "udfId",
    "udfImage",
    "udfImageDesc",
    "udfName",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "vod",
    "website",
    "withHashContext",
    "worm",
    "wormExtend",
    "wormId",
    "accessPoint",
    "accessPointPolicy",
    "publicAccessBlock",
    "requesterQosInfo",
    "qosRequester",
    "resourcePool",
    "resourcePoolInfo",
    "resourcePoolBuckets",
    "responseHeader",
    "x-oss-ac-forward-allow",
    "x-oss-ac-source-ip",
    "x-oss-ac-subnet-mask",
    "x-oss-ac-vpc-id",
    "x-oss-access-point-name",
    "x-oss-async-process",
    "x-oss-enable-md5",
    "x-oss-enable-sha1",
    "x-oss-enable-sha256",
    "x-oss-hash-ctx",
    "x-oss-md5-ctx",
    "x-oss-process",
    "x-oss-redundancy-transition-taskid",
    "x-oss-request-payer",
    "x-oss-target-redundancy-type",
    "x-oss-traffic-limit",
    "x-oss-write-get-object-response",
];

/// The parts of a request that signatures cover, already decoded.
#[derive(Debug, Clone, Default)]
pub struct SignedParts<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Bucket, if any.
    pub bucket: Option<&'a str>,
    /// Decoded key, if any.
    pub key: Option<&'a str>,
    /// Decoded query parameters in wire order (empty value = bare name).
    pub query: &'a [(String, String)],
    /// Request headers as (lower-case name, raw value bytes).
    pub headers: &'a [(String, Vec<u8>)],
}

impl SignedParts<'_> {
    fn header(&self, name: &str) -> &[u8] {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice()).unwrap_or(b"")
    }

    /// `x-oss-*` headers, lower-cased names, trimmed values, sorted, each `name:value\n`.
    fn oss_headers_canonical(&self, also: &[String]) -> Vec<u8> {
        let mut hs: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .filter(|(n, _)| n.starts_with("x-oss-") || also.contains(n))
            .map(|(n, v)| (n.as_str(), trim(v)))
            .collect();
        hs.sort_by(|a, b| a.0.cmp(b.0));
        let mut out = Vec::new();
        for (n, v) in hs {
            out.extend_from_slice(n.as_bytes());
            out.push(b':');
            out.extend_from_slice(v);
            out.push(b'\n');
        }
        out
    }

    fn v1_resource(&self) -> Vec<u8> {
        let mut r = match (self.bucket, self.key) {
            (None, _) => "/".to_owned(),
            (Some(b), None) => format!("/{b}/"),
            (Some(b), Some(k)) => format!("/{b}/{k}"),
        }
        .into_bytes();
        let mut subs: Vec<&(String, String)> =
            self.query.iter().filter(|(k, _)| SUBRESOURCES.contains(&k.as_str())).collect();
        subs.sort_by(|a, b| a.0.cmp(&b.0));
        for (i, (k, v)) in subs.iter().enumerate() {
            r.push(if i == 0 { b'?' } else { b'&' });
            r.extend_from_slice(k.as_bytes());
            if !v.is_empty() {
                r.push(b'=');
                r.extend_from_slice(v.as_bytes());
            }
        }
        r
    }
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &v[start..end]
}

/// The V1 string to sign; `date_line` is the `x-oss-date`/`Date` header
/// value, or `Expires` for presigned URLs.
pub fn v1_string_to_sign(p: &SignedParts<'_>, date_line: &[u8]) -> Vec<u8> {
    let mut s = Vec::new();
    for part in [p.method.as_bytes(), p.header("content-md5"), p.header("content-type"), date_line] {
        s.extend_from_slice(part);
        s.push(b'\n');
    }
    s.extend_from_slice(&p.oss_headers_canonical(&[]));
    s.extend_from_slice(&p.v1_resource());
    s
}

/// base64(HMAC-SHA1(secret, string_to_sign)).
pub fn v1_signature(secret: &str, string_to_sign: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    B64.encode(hmac::sign(&key, string_to_sign).as_ref())
}

pub use arca_wire::encode as uri_encode;

fn canonical_query(query: &[(String, String)], skip: &[&str]) -> String {
    let mut q: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    q.sort();
    q.iter().map(|(k, v)| if v.is_empty() { k.clone() } else { format!("{k}={v}") }).collect::<Vec<_>>().join("&")
}

/// Sorted, deduplicated, lower-case additional header names, without the
/// ones V4 signs anyway (`x-oss-*`, `content-type`, `content-md5`).
pub fn v4_additional(list: &str) -> Vec<String> {
    let mut names: Vec<String> = list
        .split(';')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty() && !n.starts_with("x-oss-") && n != "content-type" && n != "content-md5")
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The V4 canonical request.
pub fn v4_canonical_request(
    p: &SignedParts<'_>,
    additional: &[String],
    hashed_payload: &str,
    skip_query: &[&str],
) -> Vec<u8> {
    let uri = match (p.bucket, p.key) {
        (None, _) => "/".to_owned(),
        (Some(b), None) => format!("/{}/", uri_encode(b, true)),
        (Some(b), Some(k)) => format!("/{}/{}", uri_encode(b, true), uri_encode(k, true)),
    };
    let mut hs: Vec<(&str, &[u8])> = p
        .headers
        .iter()
        .filter(|(n, _)| n.starts_with("x-oss-") || n == "content-type" || n == "content-md5" || additional.contains(n))
        .map(|(n, v)| (n.as_str(), trim(v)))
        .collect();
    hs.sort_by(|a, b| a.0.cmp(b.0));
    let mut s = Vec::new();
    s.extend_from_slice(format!("{}\n{}\n{}\n", p.method, uri, canonical_query(p.query, skip_query)).as_bytes());
    for (n, v) in hs {
        s.extend_from_slice(n.as_bytes());
        s.push(b':');
        s.extend_from_slice(v);
        s.push(b'\n');
    }
    s.push(b'\n');
    s.extend_from_slice(additional.join(";").as_bytes());
    s.push(b'\n');
    s.extend_from_slice(hashed_payload.as_bytes());
    s
}

/// The V4 string to sign.
pub fn v4_string_to_sign(datetime: &str, scope: &str, canonical_request: &[u8]) -> String {
    let hash = hex::encode(digest::digest(&digest::SHA256, canonical_request).as_ref());
    format!("OSS4-HMAC-SHA256\n{datetime}\n{scope}\n{hash}")
}

/// hex(HMAC-SHA256(signing key(secret, date, region), string_to_sign)).
pub fn v4_signature(secret: &str, date: &str, region: &str, string_to_sign: &str) -> String {
    let mut key = format!("aliyun_v4{secret}").into_bytes();
    for part in [date, region, "oss", "aliyun_v4_request"] {
        let k = hmac::Key::new(hmac::HMAC_SHA256, &key);
        key = hmac::sign(&k, part.as_bytes()).as_ref().to_vec();
    }
    let k = hmac::Key::new(hmac::HMAC_SHA256, &key);
    hex::encode(hmac::sign(&k, string_to_sign.as_bytes()).as_ref())
}

/// The V2 string to sign. `additional` are sorted lower-case names;
/// `url_query` is true for presigned URLs (every parameter but the signature).
pub fn v2_string_to_sign(p: &SignedParts<'_>, date_line: &[u8], additional: &[String]) -> Vec<u8> {
    let mut s = Vec::new();
    for part in [p.method.as_bytes(), p.header("content-md5"), p.header("content-type"), date_line] {
        s.extend_from_slice(part);
        s.push(b'\n');
    }
    s.extend_from_slice(&p.oss_headers_canonical(additional));
    s.extend_from_slice(additional.join(";").as_bytes());
    s.push(b'\n');
    let path = match (p.bucket, p.key) {
        (None, _) => "/".to_owned(),
        (Some(b), None) => format!("/{b}/"),
        (Some(b), Some(k)) => format!("/{b}/{k}"),
    };
    s.extend_from_slice(uri_encode(&path, false).as_bytes());
    let q = canonical_query(p.query, &["x-oss-signature"]);
    if !q.is_empty() {
        s.push(b'?');
        s.extend_from_slice(q.as_bytes());
    }
    s
}

/// base64(HMAC-SHA256(secret, string_to_sign)).
pub fn v2_signature(secret: &str, string_to_sign: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    B64.encode(hmac::sign(&key, string_to_sign).as_ref())
}

/// Constant-time equality of a provided and a computed signature.
pub fn signatures_equal(provided: &str, computed: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(provided.as_bytes(), computed.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    //! Known-answer vectors from the Python SDK v2 signer tests and oss2 (spec 2.8).
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        pairs.iter().map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec())).collect()
    }

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn v1_header_vectors() {
        let headers = h(&[
            ("Content-MD5", "eB5eJF1ptWaXm4bijSPyxw=="),
            ("Content-Type", "text/html"),
            ("x-oss-date", "Wed, 28 Dec 2022 10:27:41 GMT"),
            ("x-oss-meta-author", "alice"),
            ("x-oss-meta-magic", "abracadabra"),
        ]);
        let none = q(&[]);
        let p = SignedParts {
            method: "PUT",
            bucket: Some("examplebucket"),
            key: Some("nelson"),
            query: &none,
            headers: &headers,
        };
        let sts = v1_string_to_sign(&p, b"Wed, 28 Dec 2022 10:27:41 GMT");
        assert_eq!(v1_signature("sk", &sts), "kSHKmLxlyEAKtZPkJhG9bZb5k7M=");

        let acl = q(&[("acl", "")]);
        let p = SignedParts { query: &acl, ..p };
        assert_eq!(
            v1_signature("sk", &v1_string_to_sign(&p, b"Wed, 28 Dec 2022 10:27:41 GMT")),
            "/afkugFbmWDQ967j1vr6zygBLQk="
        );

        let rg = q(&[("resourceGroup", ""), ("non-resousce", "null")]);
        let hdrs = h(&[("x-oss-date", "Wed, 28 Dec 2022 10:27:41 GMT")]);
        let p = SignedParts { method: "GET", bucket: Some("examplebucket"), key: None, query: &rg, headers: &hdrs };
        let sts = v1_string_to_sign(&p, b"Wed, 28 Dec 2022 10:27:41 GMT");
        assert!(sts.ends_with(b"/examplebucket/?resourceGroup"));
        assert_eq!(v1_signature("sk", &sts), "vkQmfuUDyi1uDi3bKt67oemssIs=");
    }

    #[test]
    fn v1_query_vector() {
        let query = q(&[("versionId", "versionId")]);
        let p = SignedParts { method: "GET", bucket: Some("bucket"), key: Some("key"), query: &query, headers: &[] };
        let sts = v1_string_to_sign(&p, b"1699807420");
        assert_eq!(sts, b"GET\n\n\n1699807420\n/bucket/key?versionId=versionId");
        assert_eq!(v1_signature("sk", &sts), "dcLTea+Yh9ApirQ8o8dOPqtvJXQ=");
    }

    type Headers = Vec<(String, Vec<u8>)>;
    type Query = Vec<(String, String)>;

    fn v4_request_parts() -> (Headers, Query) {
        let headers = h(&[
            ("x-oss-head1", "value"),
            ("abc", "value"),
            ("ZAbc", "value"),
            ("XYZ", "value"),
            ("content-type", "text/plain"),
            ("x-oss-content-sha256", "UNSIGNED-PAYLOAD"),
        ]);
        let query = q(&[
            ("param1", "value1"),
            ("+param1", "value3"),
            ("|param1", "value4"),
            ("+param2", ""),
            ("|param2", ""),
            ("param2", ""),
        ]);
        (headers, query)
    }

    #[test]
    fn v4_header_vector() {
        let (mut headers, query) = v4_request_parts();
        headers.push(("x-oss-date".into(), b"20231216T162057Z".to_vec()));
        let p = SignedParts {
            method: "PUT",
            bucket: Some("bucket"),
            key: Some("1234+-/123/1.txt"),
            query: &query,
            headers: &headers,
        };
        let cr = v4_canonical_request(&p, &[], "UNSIGNED-PAYLOAD", &[]);
        let expected = "PUT\n/bucket/1234%2B-/123/1.txt\n%2Bparam1=value3&%2Bparam2&%7Cparam1=value4&%7Cparam2&param1=value1&param2\ncontent-type:text/plain\nx-oss-content-sha256:UNSIGNED-PAYLOAD\nx-oss-date:20231216T162057Z\nx-oss-head1:value\n\n\nUNSIGNED-PAYLOAD";
        assert_eq!(String::from_utf8(cr.clone()).unwrap(), expected);
        let sts = v4_string_to_sign("20231216T162057Z", "20231216/cn-hangzhou/oss/aliyun_v4_request", &cr);
        assert!(sts.ends_with("f4613657f1b108998e8dbd10a1aa5da621dc2c6e02c9ddec0f163664848704c4"));
        assert_eq!(
            v4_signature("sk", "20231216", "cn-hangzhou", &sts),
            "e21d18daa82167720f9b1047ae7e7f1ce7cb77a31e8203a7d5f4624fa0284afe"
        );
    }

    #[test]
    fn v4_additional_headers_vector() {
        let (mut headers, query) = v4_request_parts();
        // 1702747512 = 20231216T172512Z
        headers.push(("x-oss-date".into(), b"20231216T172512Z".to_vec()));
        let add = v4_additional("ZAbc;x-oss-no-exist;abc;x-oss-head1");
        assert_eq!(add, vec!["abc".to_string(), "zabc".to_string()]);
        let p = SignedParts {
            method: "PUT",
            bucket: Some("bucket"),
            key: Some("1234+-/123/1.txt"),
            query: &query,
            headers: &headers,
        };
        let cr = v4_canonical_request(&p, &add, "UNSIGNED-PAYLOAD", &[]);
        let sts = v4_string_to_sign("20231216T172512Z", "20231216/cn-hangzhou/oss/aliyun_v4_request", &cr);
        assert_eq!(
            v4_signature("sk", "20231216", "cn-hangzhou", &sts),
            "4a4183c187c07c8947db7620deb0a6b38d9fbdd34187b6dbaccb316fa251212f"
        );
    }

    #[test]
    fn v4_query_vector() {
        let headers = h(&[("x-oss-head1", "value"), ("abc", "value"), ("content-type", "application/octet-stream")]);
        let (_, mut query) = v4_request_parts();
        query.extend(q(&[
            ("x-oss-signature-version", "OSS4-HMAC-SHA256"),
            ("x-oss-date", "20231217T025437Z"),
            ("x-oss-expires", "599"),
            ("x-oss-credential", "ak/20231217/cn-hangzhou/oss/aliyun_v4_request"),
            ("x-oss-signature", "ignored"),
        ]));
        let p = SignedParts {
            method: "PUT",
            bucket: Some("bucket"),
            key: Some("1234+-/123/1.txt"),
            query: &query,
            headers: &headers,
        };
        let cr = v4_canonical_request(&p, &[], "UNSIGNED-PAYLOAD", &["x-oss-signature"]);
        let sts = v4_string_to_sign("20231217T025437Z", "20231217/cn-hangzhou/oss/aliyun_v4_request", &cr);
        assert_eq!(
            v4_signature("sk", "20231217", "cn-hangzhou", &sts),
            "a39966c61718be0d5b14e668088b3fa07601033f6518ac7b523100014269c0fe"
        );
    }

    #[test]
    fn v2_vector() {
        let headers = h(&[("date", "Wed, 28 Dec 2022 10:27:41 GMT"), ("range", "bytes=0-1"), ("x-oss-meta-a", "1")]);
        let query = q(&[("prefix", ""), ("max-keys", "10"), ("acl", "")]);
        let p = SignedParts {
            method: "GET",
            bucket: Some("bucket"),
            key: Some("dir/key"),
            query: &query,
            headers: &headers,
        };
        let sts = v2_string_to_sign(&p, b"Wed, 28 Dec 2022 10:27:41 GMT", &["range".to_string()]);
        assert_eq!(
            String::from_utf8(sts.clone()).unwrap(),
            "GET\n\n\nWed, 28 Dec 2022 10:27:41 GMT\nrange:bytes=0-1\nx-oss-meta-a:1\nrange\n%2Fbucket%2Fdir%2Fkey?acl&max-keys=10&prefix"
        );
        assert_eq!(v2_signature("sk", &sts), "KuHAG4FipyFJhcY8NnbqSiKMroGYrWk96z7yhzxFijM=");
    }

    #[test]
    fn v4_uri_encoding() {
        assert_eq!(uri_encode("/bucket/a b/c+d?e", true), "/bucket/a%20b/c%2Bd%3Fe");
    }

    #[test]
    fn constant_time_compare() {
        assert!(signatures_equal("abc", "abc"));
        assert!(!signatures_equal("abc", "abd"));
        assert!(!signatures_equal("abc", "ab"));
    }
}
