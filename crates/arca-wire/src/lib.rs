//! Wire helpers shared by the API dialects (OSS, the KMS RPC API, later S3):
//! small and exact, because every signature depends on them.

#![warn(missing_docs)]

use percent_encoding::percent_decode;

/// Splits a raw query (or form body) into decoded `(name, value)` pairs in
/// wire order. Form decoding: `+` is a space, then `%XX`; `k=` and bare `k`
/// both give an empty value.
pub fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

fn form_decode(s: &str) -> String {
    percent_decode(s.replace('+', " ").as_bytes()).decode_utf8_lossy().into_owned()
}

/// RFC 3986 percent-encoding as the Alibaba Cloud signatures use it: keep
/// `A-Z a-z 0-9 - _ . ~` (and `/` when `keep_slash`), `%XX` upper-case
/// for every other byte of the UTF-8 text.
pub fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = parse_query("acl=&prefix=a+b%2Bc&uploads&x=%E4%B8%AD&&");
        let want = [("acl", ""), ("prefix", "a b+c"), ("uploads", ""), ("x", "中")];
        assert_eq!(q, want.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>());
    }

    #[test]
    fn rfc3986() {
        assert_eq!(encode("/bucket/a b/c+d?e", true), "/bucket/a%20b/c%2Bd%3Fe");
        assert_eq!(encode("a*b~c/中", false), "a%2Ab~c%2F%E4%B8%AD");
    }
}
