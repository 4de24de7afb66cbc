//! The RPC signature of Alibaba Cloud APIs (spec `kms-ram.md` A4.3): V1,
//! HMAC-SHA1 over the sorted, RFC 3986-encoded parameters.

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// RFC 3986 percent-encoding (spec A4.3 step 2).
pub fn enc(s: &str) -> String {
    arca_wire::encode(s, false)
}

/// The V1 string to sign over every parameter except `Signature`.
pub fn string_to_sign(method: &str, params: &[(String, String)]) -> String {
    let mut p: Vec<(&str, &str)> =
        params.iter().filter(|(k, _)| k != "Signature").map(|(k, v)| (k.as_str(), v.as_str())).collect();
    p.sort();
    let canonical = p.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&");
    format!("{method}&{}&{}", enc("/"), enc(&canonical))
}

/// base64(HMAC-SHA1(secret + "&", string_to_sign)).
pub fn signature(secret: &str, string_to_sign: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, format!("{secret}&").as_bytes());
    B64.encode(hmac::sign(&key, string_to_sign.as_bytes()).as_ref())
}

/// The V3 (`ACS3-HMAC-SHA256`) string to sign (spec A4.4). `headers` are the
/// signed headers as (lower-case name, value), already in `SignedHeaders` order.
pub fn v3_string_to_sign(
    method: &str,
    query: &[(String, String)],
    headers: &[(String, String)],
    body_sha256: &str,
) -> String {
    let mut q: Vec<(String, String)> = query.iter().map(|(k, v)| (enc(k), enc(v))).collect();
    q.sort();
    let canonical_query = q.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{}\n", v.trim())).collect();
    let signed = headers.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(";");
    let request = format!("{method}\n/\n{canonical_query}\n{canonical_headers}\n{signed}\n{body_sha256}");
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, request.as_bytes());
    format!("ACS3-HMAC-SHA256\n{}", hex::encode(digest.as_ref()))
}

/// hex(HMAC-SHA256(secret, string_to_sign)).
pub fn v3_signature(secret: &str, string_to_sign: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hex::encode(hmac::sign(&key, string_to_sign.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn official_vector() {
        let params = p(&[
            ("AccessKeyId", "testid"),
            ("Action", "CreateKey"),
            ("Format", "json"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2016-03-28T03:13:08Z"),
            ("Version", "2016-01-20"),
        ]);
        let sts = string_to_sign("GET", &params);
        assert_eq!(
            sts,
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DCreateKey%26Format%3Djson%26SignatureMethod%3DHMAC-SHA1%26SignatureVersion%3D1.0%26Timestamp%3D2016-03-28T03%253A13%253A08Z%26Version%3D2016-01-20"
        );
        // The doc prints `s/OdVWMTmNGagvWlljdAJ7Itsew=` next to this string, but
        // no key (`testsecret&` or `testsecret`) gives that over it; HMAC-SHA1
        // with `testsecret&` (checked with Python's hmac) gives this. The second
        // vector was produced by the SDK's own signer and matches exactly.
        assert_eq!(signature("testsecret", &sts), "41wk2SSX1GJh7fwnc5eqOfiJPFg=");
    }

    #[test]
    fn vector_with_empty_value_json_slash_star_tilde() {
        let params = p(&[
            ("AccessKeyId", "testid"),
            ("Action", "GenerateDataKey"),
            ("EncryptionContext", r#"{"a b":"x*y~z"}"#),
            ("Format", "JSON"),
            ("KeyId", "alias/acs/oss"),
            ("RegionId", "cn-hangzhou"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "abc"),
            ("SignatureType", ""),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2016-03-28T03:13:08Z"),
            ("Version", "2016-01-20"),
            ("Signature", "ignored"),
        ]);
        let sts = string_to_sign("POST", &params);
        assert!(sts.contains("%26SignatureType%3D%26"));
        assert_eq!(signature("testsecret", &sts), "NKqXOWCx8UTwleAVz8F1hwhH9RU=");
    }
}
