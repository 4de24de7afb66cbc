//! The RAM policy language and its evaluator (spec B1, B2), as pure functions:
//! parsing with positioned errors, explicit/implicit deny, Not* elements,
//! wildcards, every condition operator, bucket-policy principals, and the
//! account boundary of [`Identity::decide`].

use std::sync::Arc;

use arca_iam::{
    Context, Decision, Identity, Matched, NamedPolicy, Policy, PolicyError, PolicyKind, Principal, Request, evaluate,
};

const ACCOUNT: &str = "1416614965936597";
const OTHER_ACCOUNT: &str = "1999999999999999";
/// An object of `bucket`, owned by [`ACCOUNT`].
const OBJ: &str = "acs:oss:cn-hangzhou:1416614965936597:bucket/photos/cat.jpg";
/// The bucket itself.
const BUCKET: &str = "acs:oss:cn-hangzhou:1416614965936597:bucket";

/// A policy document with the given statements.
fn doc(statements: &str) -> String {
    format!(r#"{{"Version":"1","Statement":[{statements}]}}"#)
}

/// An identity policy.
fn p(name: &str, json: &str) -> NamedPolicy {
    let policy = Policy::parse(json, PolicyKind::Identity).unwrap_or_else(|e| panic!("{name}: {e}\n{json}"));
    NamedPolicy { name: name.into(), policy: Arc::new(policy) }
}

/// A bucket (resource) policy.
fn bucket_policy(json: &str) -> NamedPolicy {
    let policy = Policy::parse(json, PolicyKind::Resource).unwrap_or_else(|e| panic!("{e}\n{json}"));
    NamedPolicy { name: "bucket-policy".into(), policy: Arc::new(policy) }
}

fn eval(policies: &[NamedPolicy], action: &str, resource: &str) -> Decision {
    eval_in(policies, action, resource, &Context::new())
}

fn eval_in(policies: &[NamedPolicy], action: &str, resource: &str, context: &Context) -> Decision {
    evaluate(policies, &Request { action, resource, context, principal_ids: None })
}

fn eval_as(policies: &[NamedPolicy], action: &str, resource: &str, ids: &[String], context: &Context) -> Decision {
    evaluate(policies, &Request { action, resource, context, principal_ids: Some(ids) })
}

fn allow(policy: &str, statement: usize, sid: Option<&str>) -> Decision {
    Decision::Allow(Matched { policy: policy.into(), statement, sid: sid.map(str::to_owned) })
}

fn deny(policy: &str, statement: usize, sid: Option<&str>) -> Decision {
    Decision::Deny(Matched { policy: policy.into(), statement, sid: sid.map(str::to_owned) })
}

fn parse_err(json: &str, kind: PolicyKind) -> PolicyError {
    match Policy::parse(json, kind) {
        Ok(p) => panic!("accepted {json}: {p:?}"),
        Err(e) => e,
    }
}

// ---- deny, allow, implicit deny -------------------------------------------------

#[test]
fn explicit_deny_overrides_allow_in_any_order() {
    let allow_all = p("allow-all", &doc(r#"{"Sid":"All","Effect":"Allow","Action":"oss:*","Resource":"*"}"#));
    let no_delete = p(
        "no-delete",
        &doc(r#"{"Effect":"Allow","Action":"oss:ListObjects","Resource":"*"},
               {"Sid":"NoDelete","Effect":"Deny","Action":"oss:DeleteObject","Resource":"acs:oss:*:*:bucket/*"}"#),
    );
    let forward = [allow_all.clone(), no_delete.clone()];
    let backward = [no_delete.clone(), allow_all.clone()];

    // The deny is in a later policy, then in an earlier one: same outcome.
    assert_eq!(eval(&forward, "oss:DeleteObject", OBJ), deny("no-delete", 1, Some("NoDelete")));
    assert_eq!(eval(&backward, "oss:DeleteObject", OBJ), deny("no-delete", 1, Some("NoDelete")));

    // Other actions: the first allowing statement decides.
    assert_eq!(eval(&forward, "oss:GetObject", OBJ), allow("allow-all", 0, Some("All")));
    assert_eq!(eval(&forward, "oss:ListObjects", BUCKET), allow("allow-all", 0, Some("All")));
    assert_eq!(eval(&backward, "oss:ListObjects", BUCKET), allow("no-delete", 0, None));

    // The deny names objects of `bucket` only.
    assert_eq!(eval(&forward, "oss:DeleteObject", "acs:oss:*:1:other/x"), allow("allow-all", 0, Some("All")));

    // Deny and allow in the same policy, the deny last and then first.
    let deny_last = p(
        "mixed",
        &doc(r#"{"Effect":"Allow","Action":"*","Resource":"*"},
               {"Sid":"Reads","Effect":"Allow","Action":"oss:Get*","Resource":"*"},
               {"Sid":"D","Effect":"Deny","Action":"oss:GetObject","Resource":"*"}"#),
    );
    assert_eq!(eval(std::slice::from_ref(&deny_last), "oss:GetObject", OBJ), deny("mixed", 2, Some("D")));
    assert_eq!(eval(&[deny_last], "oss:GetObjectAcl", OBJ), allow("mixed", 0, None));
    let deny_first = p(
        "mixed",
        &doc(r#"{"Sid":"D","Effect":"Deny","Action":"oss:GetObject","Resource":"*"},
               {"Effect":"Allow","Action":"*","Resource":"*"}"#),
    );
    assert_eq!(eval(std::slice::from_ref(&deny_first), "oss:GetObject", OBJ), deny("mixed", 0, Some("D")));
    assert_eq!(eval(&[deny_first], "oss:PutObject", OBJ), allow("mixed", 1, None));
}

#[test]
fn matched_names_the_deciding_statement() {
    let m = Matched { policy: "no-delete".into(), statement: 1, sid: Some("NoDelete".into()) };
    assert_eq!(m.to_string(), "no-delete statement 2 (Sid NoDelete)");
    let m = Matched { policy: "AliyunOSSFullAccess".into(), statement: 0, sid: None };
    assert_eq!(m.to_string(), "AliyunOSSFullAccess statement 1");
    assert!(Decision::Allow(m.clone()).allowed());
    assert!(!Decision::Deny(m).allowed());
    assert!(!Decision::ImplicitDeny.allowed());
}

#[test]
fn nothing_matching_is_an_implicit_deny() {
    let read = p(
        "read",
        &doc(r#"{"Effect":"Allow","Action":"oss:GetObject","Resource":"acs:oss:*:1416614965936597:bucket/*"}"#),
    );
    let policies = [read];
    assert_eq!(eval(&policies, "oss:GetObject", OBJ), allow("read", 0, None));
    assert_eq!(eval(&policies, "oss:PutObject", OBJ), Decision::ImplicitDeny);
    assert_eq!(
        eval(&policies, "oss:GetObject", "acs:oss:cn-hangzhou:1416614965936597:other/x"),
        Decision::ImplicitDeny
    );
    assert_eq!(
        eval(&policies, "oss:GetObject", "acs:oss:cn-hangzhou:1999999999999999:bucket/x"),
        Decision::ImplicitDeny
    );
    assert_eq!(eval(&[], "oss:GetObject", OBJ), Decision::ImplicitDeny);
    // A Deny alone grants nothing either.
    let only_deny = p("deny", &doc(r#"{"Effect":"Deny","Action":"oss:DeleteObject","Resource":"*"}"#));
    assert_eq!(eval(&[only_deny], "oss:GetObject", OBJ), Decision::ImplicitDeny);
}

#[test]
fn not_action_and_not_resource() {
    let all_but_delete = p("nd", &doc(r#"{"Effect":"Allow","NotAction":"oss:DeleteObject","Resource":"*"}"#));
    let policies = [all_but_delete];
    assert_eq!(eval(&policies, "oss:GetObject", OBJ), allow("nd", 0, None));
    assert_eq!(eval(&policies, "kms:Encrypt", OBJ), allow("nd", 0, None));
    assert_eq!(eval(&policies, "oss:DeleteObject", OBJ), Decision::ImplicitDeny);
    // NotAction matches case-insensitively too.
    assert_eq!(eval(&policies, "OSS:deleteobject", OBJ), Decision::ImplicitDeny);

    let several = p("nd2", &doc(r#"{"Effect":"Allow","NotAction":["oss:Delete*","oss:Put*"],"Resource":"*"}"#));
    assert!(eval(std::slice::from_ref(&several), "oss:GetObject", OBJ).allowed());
    assert!(!eval(std::slice::from_ref(&several), "oss:PutObject", OBJ).allowed());
    assert!(!eval(&[several], "oss:DeleteBucket", BUCKET).allowed());

    // Reads only under public/: deny every read elsewhere.
    let public_only = p(
        "public-only",
        &doc(r#"{"Effect":"Allow","Action":"oss:*","Resource":"*"},
               {"Sid":"OnlyPublic","Effect":"Deny","Action":"oss:GetObject",
                "NotResource":"acs:oss:*:*:bucket/public/*"}"#),
    );
    let policies = [public_only];
    let public = "acs:oss:cn-hangzhou:1416614965936597:bucket/public/a.txt";
    let private = "acs:oss:cn-hangzhou:1416614965936597:bucket/private/a.txt";
    assert_eq!(eval(&policies, "oss:GetObject", public), allow("public-only", 0, None));
    assert_eq!(eval(&policies, "oss:GetObject", private), deny("public-only", 1, Some("OnlyPublic")));
    assert_eq!(eval(&policies, "oss:PutObject", private), allow("public-only", 0, None));
    // NotResource is case-sensitive, like Resource.
    assert_eq!(
        eval(&policies, "oss:GetObject", "acs:oss:cn-hangzhou:1416614965936597:bucket/Public/a.txt"),
        deny("public-only", 1, Some("OnlyPublic"))
    );
}

// ---- wildcards and case -----------------------------------------------------------

#[test]
fn action_wildcards_and_case() {
    let cases: &[(&str, &str, bool)] = &[
        ("oss:Get*", "oss:GetObject", true),
        ("oss:Get*", "oss:GetBucketAcl", true),
        ("oss:Get*", "oss:Get", true),
        ("oss:Get*", "oss:PutObject", false),
        ("oss:Get*", "kms:GetParametersForImport", false),
        ("oss:*", "oss:PutObject", true),
        ("oss:*", "kms:Encrypt", false),
        ("*", "kms:Encrypt", true),
        ("*", "ram:CreateUser", true),
        ("*:List*", "kms:ListKeys", true),
        ("oss:?etObject", "oss:GetObject", true),
        ("oss:?etObject", "oss:etObject", false),
        ("oss:Get?bject", "oss:GetObject", true),
        ("oss:GetObjec?", "oss:GetObjectAcl", false),
        ("oss:GetObject", "oss:GetObjectAcl", false),
        ("oss:GetObject", "oss:GetObjec", false),
        // Actions match case-insensitively, both ways.
        ("oss:GetObject", "OSS:getobject", true),
        ("OSS:GETOBJECT", "oss:GetObject", true),
        ("oss:get*", "oss:GetObjectAcl", true),
        ("oss:Get*", "oss:getobject", true),
    ];
    for &(pattern, action, want) in cases {
        let policy = p("w", &doc(&format!(r#"{{"Effect":"Allow","Action":"{pattern}","Resource":"*"}}"#)));
        assert_eq!(eval(&[policy], action, OBJ).allowed(), want, "Action {pattern:?} vs {action:?}");
    }
}

#[test]
fn resource_wildcards_are_case_sensitive() {
    let obj = |key: &str| format!("acs:oss:cn-hangzhou:{ACCOUNT}:bucket/{key}");
    let cases: Vec<(&str, String, bool)> = vec![
        ("acs:oss:*:*:bucket/*", obj("photos/cat.jpg"), true),
        ("acs:oss:*:*:bucket/*", BUCKET.into(), false),
        ("acs:oss:*:*:bucket", BUCKET.into(), true),
        ("acs:oss:*:*:bucket", obj("photos/cat.jpg"), false),
        ("acs:oss:*:*:bucket*", BUCKET.into(), true),
        ("acs:oss:*:*:bucket/photos/*", obj("photos/cat.jpg"), true),
        ("acs:oss:*:*:bucket/photos/*", obj("Photos/cat.jpg"), false),
        ("acs:oss:*:*:Bucket/*", obj("photos/cat.jpg"), false),
        ("acs:oss:*:*:bucket/cat?.jpg", obj("cat1.jpg"), true),
        ("acs:oss:*:*:bucket/cat?.jpg", obj("cat10.jpg"), false),
        ("acs:oss:*:*:bucket/cat?.jpg", obj("cat.jpg"), false),
        // `*` spans `/`.
        ("acs:oss:*:*:bucket/*.jpg", obj("a/b/c.jpg"), true),
        ("acs:oss:*:*:bucket/*.jpg", obj("a/b/c.JPG"), false),
        ("acs:oss:*:1416614965936597:*", obj("x"), true),
        ("acs:oss:*:1999999999999999:*", obj("x"), false),
        ("*", obj("x"), true),
        ("*", BUCKET.into(), true),
    ];
    for (pattern, resource, want) in cases {
        let policy = p("r", &doc(&format!(r#"{{"Effect":"Allow","Action":"oss:*","Resource":"{pattern}"}}"#)));
        assert_eq!(eval(&[policy], "oss:GetObject", &resource).allowed(), want, "Resource {pattern:?} vs {resource:?}");
    }
}

// ---- conditions -------------------------------------------------------------------

/// Whether an Allow-everything statement with `condition` applies when the
/// request has `key` = `value`.
fn holds(condition: &str, key: &str, value: &str) -> bool {
    let json = doc(&format!(r#"{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{condition}}}"#));
    eval_in(&[p("c", &json)], "oss:GetObject", OBJ, &Context::new().with(key, value)).allowed()
}

#[test]
fn every_condition_operator() {
    const UA: &str = "acs:UserAgent";
    const PREFIX: &str = "oss:Prefix";
    const N: &str = "oss:max-keys";
    const T: &str = "acs:CurrentTime";
    const TLS: &str = "acs:SecureTransport";
    const IP: &str = "acs:SourceIp";
    // 2019-08-12T17:00:00+08:00 is 2019-08-12T09:00:00Z.
    let cases: &[(&str, &str, &str, bool)] = &[
        // Strings.
        (r#"{"StringEquals":{"acs:UserAgent":"curl/8.0"}}"#, UA, "curl/8.0", true),
        (r#"{"StringEquals":{"acs:UserAgent":"curl/8.0"}}"#, UA, "Curl/8.0", false),
        (r#"{"StringNotEquals":{"acs:UserAgent":"curl/8.0"}}"#, UA, "wget/1.0", true),
        (r#"{"StringNotEquals":{"acs:UserAgent":"curl/8.0"}}"#, UA, "curl/8.0", false),
        (r#"{"StringEqualsIgnoreCase":{"acs:UserAgent":"curl/8.0"}}"#, UA, "CURL/8.0", true),
        (r#"{"StringEqualsIgnoreCase":{"acs:UserAgent":"curl/8.0"}}"#, UA, "wget/1.0", false),
        (r#"{"StringNotEqualsIgnoreCase":{"acs:UserAgent":"curl/8.0"}}"#, UA, "wget/1.0", true),
        (r#"{"StringNotEqualsIgnoreCase":{"acs:UserAgent":"curl/8.0"}}"#, UA, "CURL/8.0", false),
        (r#"{"StringLike":{"oss:Prefix":"photos/*"}}"#, PREFIX, "photos/2024/a.jpg", true),
        (r#"{"StringLike":{"oss:Prefix":"photos/*"}}"#, PREFIX, "photos/", true),
        (r#"{"StringLike":{"oss:Prefix":"photos/*"}}"#, PREFIX, "docs/a.txt", false),
        (r#"{"StringLike":{"oss:Prefix":"photos/*"}}"#, PREFIX, "Photos/a.jpg", false),
        (r#"{"StringLike":{"oss:Prefix":"photo?/"}}"#, PREFIX, "photos/", true),
        (r#"{"StringLike":{"oss:Prefix":"photo?/"}}"#, PREFIX, "photo/", false),
        (r#"{"StringNotLike":{"oss:Prefix":"photos/*"}}"#, PREFIX, "docs/a.txt", true),
        (r#"{"StringNotLike":{"oss:Prefix":"photos/*"}}"#, PREFIX, "photos/a.jpg", false),
        // Numbers (values as strings or JSON numbers).
        (r#"{"NumericEquals":{"oss:max-keys":"100"}}"#, N, "100", true),
        (r#"{"NumericEquals":{"oss:max-keys":"100"}}"#, N, "100.0", true),
        (r#"{"NumericEquals":{"oss:max-keys":"100"}}"#, N, "99", false),
        (r#"{"NumericEquals":{"oss:max-keys":"100"}}"#, N, "a hundred", false),
        (r#"{"NumericNotEquals":{"oss:max-keys":"100"}}"#, N, "99", true),
        (r#"{"NumericNotEquals":{"oss:max-keys":"100"}}"#, N, "100", false),
        (r#"{"NumericLessThan":{"oss:max-keys":"100"}}"#, N, "99.5", true),
        (r#"{"NumericLessThan":{"oss:max-keys":"100"}}"#, N, "100", false),
        (r#"{"NumericLessThan":{"oss:max-keys":100}}"#, N, "-3", true),
        (r#"{"NumericLessThanEquals":{"oss:max-keys":"100"}}"#, N, "100", true),
        (r#"{"NumericLessThanEquals":{"oss:max-keys":"100"}}"#, N, "101", false),
        (r#"{"NumericGreaterThan":{"oss:max-keys":"100"}}"#, N, "101", true),
        (r#"{"NumericGreaterThan":{"oss:max-keys":"100"}}"#, N, "100", false),
        (r#"{"NumericGreaterThanEquals":{"oss:max-keys":100}}"#, N, "100", true),
        (r#"{"NumericGreaterThanEquals":{"oss:max-keys":"100"}}"#, N, "99", false),
        // Dates: compared as instants, whatever the offsets.
        (r#"{"DateEquals":{"acs:CurrentTime":"2019-08-12T17:00:00+08:00"}}"#, T, "2019-08-12T09:00:00Z", true),
        (r#"{"DateEquals":{"acs:CurrentTime":"2019-08-12T17:00:00+08:00"}}"#, T, "2019-08-12T17:00:00Z", false),
        (r#"{"DateNotEquals":{"acs:CurrentTime":"2019-08-12T17:00:00+08:00"}}"#, T, "2019-08-12T17:00:00Z", true),
        (r#"{"DateNotEquals":{"acs:CurrentTime":"2019-08-12T17:00:00+08:00"}}"#, T, "2019-08-12T09:00:00Z", false),
        (r#"{"DateLessThan":{"acs:CurrentTime":"2019-08-12T17:00:00+08:00"}}"#, T, "2019-08-12T08:59:59Z", true),
        (r#"{"DateLessThan":{"acs:CurrentTime":"2019-08-12T17:00:00+08:00"}}"#, T, "2019-08-12T16:59:59+08:00", true),
        (r#"{"DateLessThan":{"acs:CurrentTime":"2019-08-12T17:00:00+08:00"}}"#, T, "2019-08-12T09:00:00Z", false),
        (r#"{"DateLessThan":{"acs:CurrentTime":"2019-08-12T17:00:00+08:00"}}"#, T, "yesterday", false),
        (r#"{"DateLessThanEquals":{"acs:CurrentTime":"2019-08-12T17:00:00+08:00"}}"#, T, "2019-08-12T09:00:00Z", true),
        // Same wall-clock time, but Z is eight hours later.
        (r#"{"DateLessThanEquals":{"acs:CurrentTime":"2019-08-12T17:00:00+08:00"}}"#, T, "2019-08-12T17:00:00Z", false),
        (r#"{"DateGreaterThan":{"acs:CurrentTime":"2019-08-12T17:00:00+08:00"}}"#, T, "2019-08-12T09:00:01Z", true),
        (r#"{"DateGreaterThan":{"acs:CurrentTime":"2019-08-12T17:00:00+08:00"}}"#, T, "2019-08-12T09:00:00Z", false),
        (
            r#"{"DateGreaterThanEquals":{"acs:CurrentTime":"2019-08-12T17:00:00+08:00"}}"#,
            T,
            "2019-08-12T17:00:00+08:00",
            true,
        ),
        (
            r#"{"DateGreaterThanEquals":{"acs:CurrentTime":"2019-08-12T17:00:00+08:00"}}"#,
            T,
            "2019-08-12T10:00:00+02:00",
            false,
        ),
        (r#"{"DateLessThan":{"acs:CurrentTime":"2030-01-01T00:00:00Z"}}"#, T, "2030-01-01T07:59:59+08:00", true),
        (r#"{"DateLessThan":{"acs:CurrentTime":"2030-01-01T00:00:00Z"}}"#, T, "2030-01-01T08:00:00+08:00", false),
        // Booleans (as strings or JSON booleans).
        (r#"{"Bool":{"acs:SecureTransport":"true"}}"#, TLS, "true", true),
        (r#"{"Bool":{"acs:SecureTransport":"true"}}"#, TLS, "false", false),
        (r#"{"Bool":{"acs:SecureTransport":true}}"#, TLS, "true", true),
        (r#"{"Bool":{"acs:SecureTransport":false}}"#, TLS, "false", true),
        (r#"{"Bool":{"acs:SecureTransport":"false"}}"#, TLS, "true", false),
        // Addresses: CIDR blocks, single addresses, IPv6.
        (r#"{"IpAddress":{"acs:SourceIp":"192.168.0.0/16"}}"#, IP, "192.168.3.4", true),
        (r#"{"IpAddress":{"acs:SourceIp":"192.168.0.0/16"}}"#, IP, "192.169.0.1", false),
        (r#"{"IpAddress":{"acs:SourceIp":"10.1.2.3"}}"#, IP, "10.1.2.3", true),
        (r#"{"IpAddress":{"acs:SourceIp":"10.1.2.3"}}"#, IP, "10.1.2.4", false),
        (r#"{"IpAddress":{"acs:SourceIp":"2001:db8::/32"}}"#, IP, "2001:db8::1", true),
        (r#"{"IpAddress":{"acs:SourceIp":"2001:db8::/32"}}"#, IP, "2001:db9::1", false),
        (r#"{"IpAddress":{"acs:SourceIp":"2001:db8::/32"}}"#, IP, "10.1.2.3", false),
        (r#"{"IpAddress":{"acs:SourceIp":"2001:db8::1"}}"#, IP, "2001:db8:0:0::1", true),
        (r#"{"IpAddress":{"acs:SourceIp":"0.0.0.0/0"}}"#, IP, "203.0.113.9", true),
        (r#"{"IpAddress":{"acs:SourceIp":"10.0.0.0/8"}}"#, IP, "not-an-ip", false),
        (r#"{"NotIpAddress":{"acs:SourceIp":"10.0.0.0/8"}}"#, IP, "192.168.1.1", true),
        (r#"{"NotIpAddress":{"acs:SourceIp":"10.0.0.0/8"}}"#, IP, "10.2.3.4", false),
        (r#"{"NotIpAddress":{"acs:SourceIp":"2001:db8::/32"}}"#, IP, "2001:db8::7", false),
        (r#"{"NotIpAddress":{"acs:SourceIp":"2001:db8::/32"}}"#, IP, "2001:db9::7", true),
        // Several values for one key: any may match (OR); for Not* operators none may.
        (r#"{"StringEquals":{"acs:UserAgent":["a","b"]}}"#, UA, "b", true),
        (r#"{"StringEquals":{"acs:UserAgent":["a","b"]}}"#, UA, "c", false),
        (r#"{"IpAddress":{"acs:SourceIp":["10.0.0.0/8","192.168.0.0/16"]}}"#, IP, "192.168.1.1", true),
        (r#"{"IpAddress":{"acs:SourceIp":["10.0.0.0/8","192.168.0.0/16"]}}"#, IP, "172.16.0.1", false),
        (r#"{"NotIpAddress":{"acs:SourceIp":["10.0.0.0/8","192.168.0.0/16"]}}"#, IP, "192.168.1.1", false),
        (r#"{"NotIpAddress":{"acs:SourceIp":["10.0.0.0/8","192.168.0.0/16"]}}"#, IP, "172.16.0.1", true),
        (r#"{"StringNotEquals":{"acs:UserAgent":["a","b"]}}"#, UA, "b", false),
        (r#"{"StringNotEquals":{"acs:UserAgent":["a","b"]}}"#, UA, "c", true),
        (r#"{"NumericEquals":{"oss:max-keys":[10, "20", 30]}}"#, N, "20", true),
        (r#"{"NumericEquals":{"oss:max-keys":[10, "20", 30]}}"#, N, "25", false),
    ];
    for &(condition, key, value, want) in cases {
        assert_eq!(holds(condition, key, value), want, "{condition} with {key} = {value:?}");
    }
}

#[test]
fn several_keys_and_several_operators_must_all_hold() {
    let keys = p(
        "keys",
        &doc(r#"{"Effect":"Allow","Action":"*","Resource":"*",
                "Condition":{"StringEquals":{"acs:UserAgent":"curl","oss:Prefix":"photos/"}}}"#),
    );
    let both = Context::new().with("acs:UserAgent", "curl").with("oss:Prefix", "photos/");
    let one_wrong = Context::new().with("acs:UserAgent", "curl").with("oss:Prefix", "docs/");
    let one_missing = Context::new().with("acs:UserAgent", "curl");
    assert_eq!(eval_in(std::slice::from_ref(&keys), "oss:ListObjects", BUCKET, &both), allow("keys", 0, None));
    assert_eq!(eval_in(std::slice::from_ref(&keys), "oss:ListObjects", BUCKET, &one_wrong), Decision::ImplicitDeny);
    assert_eq!(eval_in(&[keys], "oss:ListObjects", BUCKET, &one_missing), Decision::ImplicitDeny);

    let operators = p(
        "ops",
        &doc(r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{
                "Bool":{"acs:SecureTransport":"true"},
                "IpAddress":{"acs:SourceIp":"10.0.0.0/8"},
                "DateLessThan":{"acs:CurrentTime":"2030-01-01T00:00:00+08:00"}}}"#),
    );
    let ctx = |tls: &str, ip: &str, time: &str| {
        Context::new().with("acs:SecureTransport", tls).with("acs:SourceIp", ip).with("acs:CurrentTime", time)
    };
    let policies = [operators];
    assert!(eval_in(&policies, "oss:GetObject", OBJ, &ctx("true", "10.1.1.1", "2025-01-01T00:00:00Z")).allowed());
    assert!(!eval_in(&policies, "oss:GetObject", OBJ, &ctx("false", "10.1.1.1", "2025-01-01T00:00:00Z")).allowed());
    assert!(!eval_in(&policies, "oss:GetObject", OBJ, &ctx("true", "11.1.1.1", "2025-01-01T00:00:00Z")).allowed());
    assert!(!eval_in(&policies, "oss:GetObject", OBJ, &ctx("true", "10.1.1.1", "2031-01-01T00:00:00Z")).allowed());
}

#[test]
fn an_absent_key_makes_the_condition_false() {
    let empty = Context::new();
    // Allow statements with a condition on an absent key do not apply, Not* operators included.
    for condition in [
        r#"{"StringEquals":{"acs:UserAgent":"curl"}}"#,
        r#"{"StringNotEquals":{"acs:UserAgent":"curl"}}"#,
        r#"{"StringNotLike":{"oss:Prefix":"secret/*"}}"#,
        r#"{"NumericNotEquals":{"oss:max-keys":"5"}}"#,
        r#"{"DateNotEquals":{"acs:CurrentTime":"2019-08-12T17:00:00+08:00"}}"#,
        r#"{"Bool":{"acs:SecureTransport":"false"}}"#,
        r#"{"NotIpAddress":{"acs:SourceIp":"10.0.0.0/8"}}"#,
    ] {
        let json = doc(&format!(r#"{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{condition}}}"#));
        assert_eq!(eval_in(&[p("c", &json)], "oss:GetObject", OBJ, &empty), Decision::ImplicitDeny, "{condition}");
    }

    // Deny statements with a condition on an absent key do not apply either.
    let allow_all = p("all", &doc(r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#));
    let deny_outside = p(
        "deny-outside",
        &doc(r#"{"Sid":"Intranet","Effect":"Deny","Action":"*","Resource":"*",
                "Condition":{"NotIpAddress":{"acs:SourceIp":"10.0.0.0/8"}}}"#),
    );
    let policies = [allow_all, deny_outside];
    assert_eq!(eval_in(&policies, "oss:GetObject", OBJ, &empty), allow("all", 0, None));
    assert_eq!(
        eval_in(&policies, "oss:GetObject", OBJ, &Context::new().with("acs:SourceIp", "192.168.1.1")),
        deny("deny-outside", 0, Some("Intranet"))
    );
    assert_eq!(
        eval_in(&policies, "oss:GetObject", OBJ, &Context::new().with("acs:SourceIp", "10.9.9.9")),
        allow("all", 0, None)
    );
    // Another key being present does not help.
    assert_eq!(
        eval_in(&policies, "oss:GetObject", OBJ, &Context::new().with("acs:UserAgent", "curl")),
        allow("all", 0, None)
    );
}

#[test]
fn condition_keys_are_case_insensitive() {
    assert!(holds(r#"{"IpAddress":{"acs:sourceip":"10.0.0.0/8"}}"#, "acs:SourceIp", "10.1.2.3"));
    assert!(holds(r#"{"IpAddress":{"ACS:SOURCEIP":"10.0.0.0/8"}}"#, "acs:sourceIP", "10.1.2.3"));
    assert!(holds(r#"{"IpAddress":{"acs:SourceIp":"10.0.0.0/8"}}"#, "acs:sourceip", "10.1.2.3"));
    assert!(!holds(r#"{"IpAddress":{"acs:sourceip":"10.0.0.0/8"}}"#, "acs:SourceIp", "11.1.2.3"));

    let mut ctx = Context::new().with("acs:SourceIp", "10.1.2.3");
    assert_eq!(ctx.get("ACS:SOURCEIP"), Some(&["10.1.2.3".to_owned()][..]));
    // Setting under another spelling replaces the value.
    ctx.set("acs:sourceip", "10.9.9.9");
    assert_eq!(ctx.get("acs:SourceIp"), Some(&["10.9.9.9".to_owned()][..]));
    assert_eq!(ctx.get("acs:UserAgent"), None);
    // Values are not folded.
    assert!(!holds(r#"{"StringEquals":{"acs:useragent":"curl"}}"#, "ACS:UserAgent", "CURL"));
}

// ---- bucket policies --------------------------------------------------------------

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn bucket_policy_principals() {
    let anonymous: Vec<String> = Vec::new();
    let alice = ids(&["200000000000001"]);
    let bob = ids(&["200000000000002"]);
    let ctx = Context::new();

    // "*" is everyone, anonymous callers included; in either spelling.
    for principal in [r#"["*"]"#, r#""*""#, r#"{"RAM":["*"]}"#] {
        let public = bucket_policy(&doc(&format!(
            r#"{{"Effect":"Allow","Principal":{principal},"Action":"oss:GetObject","Resource":"acs:oss:*:*:bucket/*"}}"#
        )));
        let policies = [public];
        assert_eq!(eval_as(&policies, "oss:GetObject", OBJ, &anonymous, &ctx), allow("bucket-policy", 0, None));
        assert_eq!(eval_as(&policies, "oss:GetObject", OBJ, &alice, &ctx), allow("bucket-policy", 0, None));
        assert_eq!(eval_as(&policies, "oss:PutObject", OBJ, &alice, &ctx), Decision::ImplicitDeny);
        // Evaluated as identity policies (no caller ids), statements naming principals do not apply.
        assert_eq!(eval(&policies, "oss:GetObject", OBJ), Decision::ImplicitDeny, "{principal}");
    }

    // A specific UID matches that caller only.
    for principal in [r#"["200000000000001"]"#, r#""200000000000001""#, r#"{"RAM":["200000000000001"]}"#] {
        let one = bucket_policy(&doc(&format!(
            r#"{{"Effect":"Allow","Principal":{principal},"Action":"oss:GetObject","Resource":"acs:oss:*:*:bucket/*"}}"#
        )));
        let policies = [one];
        assert_eq!(eval_as(&policies, "oss:GetObject", OBJ, &alice, &ctx), allow("bucket-policy", 0, None));
        assert_eq!(eval_as(&policies, "oss:GetObject", OBJ, &bob, &ctx), Decision::ImplicitDeny, "{principal}");
        assert_eq!(eval_as(&policies, "oss:GetObject", OBJ, &anonymous, &ctx), Decision::ImplicitDeny);
    }
    let several = bucket_policy(&doc(
        r#"{"Effect":"Allow","Principal":["200000000000003","200000000000001"],"Action":"oss:GetObject","Resource":"*"}"#,
    ));
    assert!(eval_as(std::slice::from_ref(&several), "oss:GetObject", OBJ, &alice, &ctx).allowed());
    assert!(!eval_as(&[several], "oss:GetObject", OBJ, &bob, &ctx).allowed());

    // "Principal": [] means everyone.
    let empty = bucket_policy(&doc(r#"{"Effect":"Allow","Principal":[],"Action":"oss:GetObject","Resource":"*"}"#));
    let policies = [empty];
    assert!(eval_as(&policies, "oss:GetObject", OBJ, &anonymous, &ctx).allowed());
    assert!(eval_as(&policies, "oss:GetObject", OBJ, &bob, &ctx).allowed());

    // A Deny for one principal beats an Allow for everyone.
    let block_bob =
        bucket_policy(&doc(r#"{"Effect":"Allow","Principal":["*"],"Action":"oss:GetObject","Resource":"*"},
           {"Sid":"NoBob","Effect":"Deny","Principal":["200000000000002"],"Action":"oss:*","Resource":"*"}"#));
    let policies = [block_bob];
    assert_eq!(eval_as(&policies, "oss:GetObject", OBJ, &bob, &ctx), deny("bucket-policy", 1, Some("NoBob")));
    assert_eq!(eval_as(&policies, "oss:GetObject", OBJ, &alice, &ctx), allow("bucket-policy", 0, None));
    assert_eq!(eval_as(&policies, "oss:GetObject", OBJ, &anonymous, &ctx), allow("bucket-policy", 0, None));
}

#[test]
fn identity_policies_apply_when_caller_ids_are_given() {
    let alice = ids(&["200000000000001"]);
    let read = p("read", &doc(r#"{"Effect":"Allow","Action":"oss:GetObject","Resource":"*"}"#));
    let ctx = Context::new();
    assert_eq!(eval_as(std::slice::from_ref(&read), "oss:GetObject", OBJ, &alice, &ctx), allow("read", 0, None));
    assert_eq!(eval_as(std::slice::from_ref(&read), "oss:GetObject", OBJ, &[], &ctx), allow("read", 0, None));

    // Identity and bucket policies together: a Deny in either wins.
    let deny_alice = bucket_policy(&doc(
        r#"{"Sid":"NoAlice","Effect":"Deny","Principal":["200000000000001"],"Action":"oss:GetObject","Resource":"*"}"#,
    ));
    let policies = [read, deny_alice];
    assert_eq!(eval_as(&policies, "oss:GetObject", OBJ, &alice, &ctx), deny("bucket-policy", 0, Some("NoAlice")));
    assert_eq!(eval_as(&policies, "oss:GetObject", OBJ, &ids(&["200000000000009"]), &ctx), allow("read", 0, None));
}

#[test]
fn the_documented_bucket_policy_example() {
    // spec B3, with the masked digits filled in.
    let owner = "1746495857602745";
    let user = "277379621561570";
    let policy = bucket_policy(&format!(
        r#"{{"Version":"1","Statement":[
 {{"Effect":"Allow","Action":["oss:GetObject","oss:PutObject"],"Principal":["{user}"],
  "Resource":["acs:oss:*:{owner}:examplebucket/*"]}},
 {{"Effect":"Allow","Action":["oss:ListObjects"],"Principal":["{user}"],
  "Resource":["acs:oss:*:{owner}:examplebucket"],
  "Condition":{{"StringLike":{{"oss:Prefix":["hangzhou/2020/*"]}}}}}},
 {{"Effect":"Deny","Action":"oss:*","Principal":["*"],"Resource":["acs:oss:*:{owner}:examplebucket"],
  "Condition":{{"NotIpAddress":{{"acs:SourceIp":["192.168.0.0/16"]}}}}}}]}}"#
    ));
    let policies = [policy];
    let bucket = format!("acs:oss:cn-hangzhou:{owner}:examplebucket");
    let object = format!("{bucket}/hangzhou/2020/a.txt");
    let caller = ids(&[user]);
    let inside = Context::new().with("acs:SourceIp", "192.168.1.20");
    let outside = Context::new().with("acs:SourceIp", "10.0.0.1");

    assert_eq!(eval_as(&policies, "oss:GetObject", &object, &caller, &inside), allow("bucket-policy", 0, None));
    assert_eq!(eval_as(&policies, "oss:GetObject", &object, &[], &inside), Decision::ImplicitDeny);
    assert_eq!(eval_as(&policies, "oss:DeleteObject", &object, &caller, &inside), Decision::ImplicitDeny);
    let listing = inside.clone().with("oss:Prefix", "hangzhou/2020/03/");
    assert_eq!(eval_as(&policies, "oss:ListObjects", &bucket, &caller, &listing), allow("bucket-policy", 1, None));
    let other_prefix = inside.clone().with("oss:Prefix", "beijing/");
    assert_eq!(eval_as(&policies, "oss:ListObjects", &bucket, &caller, &other_prefix), Decision::ImplicitDeny);
    let listing_outside = outside.clone().with("oss:Prefix", "hangzhou/2020/03/");
    assert_eq!(
        eval_as(&policies, "oss:ListObjects", &bucket, &caller, &listing_outside),
        deny("bucket-policy", 2, None)
    );
    // The Deny names the bucket ARN, not its objects.
    assert_eq!(eval_as(&policies, "oss:GetObject", &object, &caller, &outside), allow("bucket-policy", 0, None));
}

// ---- malformed documents ----------------------------------------------------------

#[test]
fn comments_are_named_and_pointed_at() {
    let line_comment = r#"{
  "Version": "1",
  // read-only access
  "Statement": [{"Effect": "Allow", "Action": "oss:Get*", "Resource": "*"}]
}"#;
    let trailing = r#"{
  "Version": "1", // always 1
  "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
}"#;
    let block = r#"{
  "Version": "1",
  "Statement": [
    /* the only statement */
    {"Effect": "Allow", "Action": "*", "Resource": "*"}
  ]
}"#;
    let first = r#"// my policy
{"Version": "1", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}"#;
    for (text, line) in [(line_comment, 3), (trailing, 2), (block, 4), (first, 1)] {
        let e = parse_err(text, PolicyKind::Identity);
        let line_text = text.lines().nth(line - 1).unwrap();
        let column = line_text.find('/').unwrap() + 1;
        assert_eq!((e.line, e.column), (line, column), "{e}\n{text}");
        assert!(e.reason.contains("comment"), "{e}");
        assert!(e.to_string().starts_with(&format!("line {line}, column {column}: ")), "{e}");
        // The same for bucket policies.
        let e = parse_err(text, PolicyKind::Resource);
        assert_eq!((e.line, e.column), (line, column), "{e}");
        assert!(e.reason.contains("comment"), "{e}");
    }
    // Slashes inside strings are not comments.
    Policy::parse(
        &doc(r#"{"Sid":"a//b","Effect":"Allow","Action":"oss:GetObject","Resource":"acs:oss:*:*:bucket/a//b/*"}"#),
        PolicyKind::Identity,
    )
    .unwrap();
}

#[test]
fn grammar_errors_have_reasons_and_positions() {
    let stmt = |body: &str| doc(&format!("{{{body}}}"));
    let cond =
        |condition: &str| stmt(&format!(r#""Effect":"Allow","Action":"*","Resource":"*","Condition":{condition}"#));
    let cases: Vec<(String, PolicyKind, &str)> = vec![
        (
            r#"{"Version":"2","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#.into(),
            PolicyKind::Identity,
            "Version must be \"1\"",
        ),
        (
            r#"{"Version":1,"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#.into(),
            PolicyKind::Identity,
            "invalid type",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#.into(),
            PolicyKind::Identity,
            "missing field `Version`",
        ),
        (r#"{"Version":"1"}"#.into(), PolicyKind::Identity, "missing field `Statement`"),
        (r#"{"Version":"1","Statement":[]}"#.into(), PolicyKind::Identity, "at least one statement"),
        (stmt(r#""Effect":"Alow","Action":"*","Resource":"*""#), PolicyKind::Identity, "unknown variant `Alow`"),
        (stmt(r#""Effect":"allow","Action":"*","Resource":"*""#), PolicyKind::Identity, "unknown variant `allow`"),
        (stmt(r#""Action":"*","Resource":"*""#), PolicyKind::Identity, "missing field `Effect`"),
        (
            stmt(r#""Effect":"Allow","Action":"*","NotAction":"oss:GetObject","Resource":"*""#),
            PolicyKind::Identity,
            "not both",
        ),
        (stmt(r#""Effect":"Allow","Resource":"*""#), PolicyKind::Identity, "needs Action or NotAction"),
        (stmt(r#""Effect":"Allow","Action":[],"Resource":"*""#), PolicyKind::Identity, "must not be empty"),
        (stmt(r#""Effect":"Allow","Action":"GetObject","Resource":"*""#), PolicyKind::Identity, "service:Action"),
        (stmt(r#""Effect":"Allow","Action":"*""#), PolicyKind::Identity, "needs Resource or NotResource"),
        (stmt(r#""Effect":"Allow","Action":"*","Resource":"*","NotResource":"*""#), PolicyKind::Identity, "not both"),
        (stmt(r#""Effect":"Allow","Action":"*","Resource":"""#), PolicyKind::Identity, "must not be empty"),
        (
            cond(r#"{"StringEq":{"acs:UserAgent":"x"}}"#),
            PolicyKind::Identity,
            "unknown condition operator \"StringEq\"",
        ),
        (cond(r#"{"stringequals":{"acs:UserAgent":"x"}}"#), PolicyKind::Identity, "unknown condition operator"),
        (cond(r#"{"StringEquals":{"acs:UserAgent":[]}}"#), PolicyKind::Identity, "has no values"),
        (cond(r#"{"IpAddress":{"acs:SourceIp":"10.0.0.0/33"}}"#), PolicyKind::Identity, "not a valid value"),
        (cond(r#"{"IpAddress":{"acs:SourceIp":"10.0.0.256"}}"#), PolicyKind::Identity, "not a valid value"),
        (cond(r#"{"NotIpAddress":{"acs:SourceIp":"2001:db8::/129"}}"#), PolicyKind::Identity, "not a valid value"),
        (cond(r#"{"DateLessThan":{"acs:CurrentTime":"tomorrow"}}"#), PolicyKind::Identity, "not a valid value"),
        (
            cond(r#"{"DateLessThan":{"acs:CurrentTime":"2019-13-40T00:00:00Z"}}"#),
            PolicyKind::Identity,
            "not a valid value",
        ),
        (cond(r#"{"NumericLessThan":{"oss:max-keys":"ten"}}"#), PolicyKind::Identity, "not a valid value"),
        (cond(r#"{"Bool":{"acs:SecureTransport":"yes"}}"#), PolicyKind::Identity, "not a valid value"),
        (
            r#"{"Version":"1","Id":"x","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#.into(),
            PolicyKind::Identity,
            "unknown field `Id`",
        ),
        (
            stmt(r#""Effect":"Allow","Action":"*","Resource":"*","Extra":1"#),
            PolicyKind::Identity,
            "unknown field `Extra`",
        ),
        (
            stmt(r#""Effect":"Allow","Action":"*","Resource":"*","NotPrincipal":"*""#),
            PolicyKind::Resource,
            "unknown field `NotPrincipal`",
        ),
        (
            stmt(r#""Effect":"Allow","Action":"*","Resource":"*","Principal":"*""#),
            PolicyKind::Identity,
            "Principal is only allowed in resource (bucket) policies",
        ),
        (
            stmt(r#""Effect":"Allow","Action":"*","Resource":"*","Principal":["200000000000001"]"#),
            PolicyKind::Identity,
            "Principal is only allowed",
        ),
        (stmt(r#""Effect":"Allow","Action":"*","Resource":"*""#), PolicyKind::Resource, "needs a Principal"),
        (r#"{"Version":"1","Statement":[{"Effect":"Allow""#.into(), PolicyKind::Identity, "EOF"),
        ("".into(), PolicyKind::Identity, "EOF"),
        (
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]} x"#.into(),
            PolicyKind::Identity,
            "trailing characters",
        ),
    ];
    for (text, kind, want) in &cases {
        let e = parse_err(text, *kind);
        assert!(e.reason.contains(*want), "{text}: got {e:?}, want {want:?}");
        assert!(e.line >= 1 && e.column >= 1, "{text}: {e:?}");
        assert!(e.line <= text.lines().count().max(1), "{text}: {e:?}");
        // serde_json's own " at line L column C" is stripped from the reason.
        assert!(!e.reason.contains(" at line "), "{e:?}");
    }
}

#[test]
fn positions_point_into_multi_line_documents() {
    // Errors found by the JSON reader point at the offending token's line.
    let bad_effect = r#"{
  "Version": "1",
  "Statement": [{"Effect": "Alow",
    "Action": "*", "Resource": "*"}]
}"#;
    let e = parse_err(bad_effect, PolicyKind::Identity);
    assert_eq!(e.line, 3, "{e}");
    assert!(e.reason.contains("unknown variant"), "{e}");

    let bad_version = r#"{
  "Version": "2012-10-17",
  "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
}"#;
    let e = parse_err(bad_version, PolicyKind::Identity);
    assert_eq!(e.line, 2, "{e}");
    assert!(e.reason.contains("Version must be"), "{e}");

    let unknown_field = r#"{
  "Version": "1",
  "Statement": [{"Effect": "Allow", "Action": "*",
    "Resource": "*",
    "Conditon": {}}]
}"#;
    let e = parse_err(unknown_field, PolicyKind::Identity);
    assert_eq!(e.line, 5, "{e}");
    assert!(e.reason.contains("unknown field `Conditon`"), "{e}");

    let truncated = "{\n  \"Version\": \"1\",\n  \"Statement\": [";
    let e = parse_err(truncated, PolicyKind::Identity);
    assert_eq!(e.line, 3, "{e}");
    assert!(e.reason.contains("EOF"), "{e}");

    // A bucket policy statement without Principal: pointed at the statement.
    let text = r#"{"Version": "1", "Statement": [
  {"Effect": "Allow", "Principal": ["*"], "Action": "*", "Resource": "*"},
  {"Effect": "Deny", "Action": "oss:DeleteObject", "Resource": "*"}
]}"#;
    let e = parse_err(text, PolicyKind::Resource);
    assert!(e.reason.contains("needs a Principal"), "{e}");
    assert_eq!((e.line, e.column), (3, 3), "{e}");

    // Principal in the first statement of an identity policy: pointed at it.
    let text = r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Principal":"*"}]}"#;
    let e = parse_err(text, PolicyKind::Identity);
    assert_eq!((e.line, e.column), (1, text.find("\"Principal\"").unwrap() + 1), "{e}");

    // An empty statement list: reported at the Statement element.
    let e = parse_err("{\n  \"Version\": \"1\",\n  \"Statement\": []\n}", PolicyKind::Identity);
    assert_eq!((e.line, e.column), (3, 3), "{e}");
}

#[test]
fn principal_in_a_later_statement_is_pointed_at() {
    let text = r#"{"Version": "1", "Statement": [
  {"Effect": "Allow", "Action": "*", "Resource": "*"},
  {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}
]}"#;
    let e = parse_err(text, PolicyKind::Identity);
    assert!(e.reason.contains("Principal"), "{e}");
    let column = text.lines().nth(2).unwrap().find("\"Principal\"").unwrap() + 1;
    assert_eq!((e.line, e.column), (3, column), "{e}");
}

#[test]
fn valid_documents_parse_to_their_statements() {
    let policy = Policy::parse(
        r#"{"Version":"1","Statement":[
            {"Sid":"Read","Effect":"Allow","Action":["oss:GetObject","oss:ListObjects"],
             "Resource":["acs:oss:*:*:bucket","acs:oss:*:*:bucket/*"],
             "Condition":{"IpAddress":{"acs:SourceIp":["10.0.0.0/8","192.168.1.1","2001:db8::/32","10.1.*"]},
                          "DateLessThan":{"acs:CurrentTime":"2019-08-12T17:00:00+08:00"}}},
            {"Effect":"Deny","NotAction":"oss:Get*","NotResource":"acs:oss:*:*:bucket/public/*"}]}"#,
        PolicyKind::Identity,
    )
    .unwrap();
    assert_eq!(policy.statements.len(), 2);
    let read = &policy.statements[0];
    assert_eq!(read.sid.as_deref(), Some("Read"));
    assert!(!read.actions.negated && !read.resources.negated);
    assert_eq!(read.actions.values, ["oss:GetObject", "oss:ListObjects"]);
    assert_eq!(read.conditions.len(), 2);
    assert!(read.conditions.iter().all(|c| c.key == c.key.to_ascii_lowercase()));
    assert_eq!(read.principals, None);
    let deny = &policy.statements[1];
    assert!(deny.actions.negated && deny.resources.negated);
    assert_eq!(deny.sid, None);
}

// ---- Identity::decide -------------------------------------------------------------

fn user_identity(account: &str, policies: Vec<NamedPolicy>) -> Identity {
    Identity {
        principal: Principal::User { account: account.into(), user_id: "200000000000001".into(), name: "alice".into() },
        access_key_id: Some("LTAIexample".into()),
        policies: policies.into(),
    }
}

#[test]
fn root_has_every_right_on_its_own_account_only() {
    let root = Identity::root(ACCOUNT);
    let ctx = Context::new();
    let own = format!("acs:oss:cn-hangzhou:{ACCOUNT}:bucket/key");
    let theirs = format!("acs:oss:cn-hangzhou:{OTHER_ACCOUNT}:bucket/key");
    for action in ["oss:GetObject", "oss:DeleteBucket", "kms:Decrypt", "ram:CreateUser"] {
        let d = root.decide(action, &own, &ctx);
        assert!(d.allowed(), "{action}: {d:?}");
        assert_eq!(root.decide(action, &theirs, &ctx), Decision::ImplicitDeny, "{action}");
    }
    assert!(root.decide("kms:Decrypt", &format!("acs:kms:cn-hangzhou:{ACCOUNT}:key/key-abc"), &ctx).allowed());
    assert_eq!(
        root.decide("kms:Decrypt", &format!("acs:kms:cn-hangzhou:{OTHER_ACCOUNT}:key/key-abc"), &ctx),
        Decision::ImplicitDeny
    );
    // The service-level ARN names no account.
    assert!(root.decide("oss:ListBuckets", "acs:oss:*:*:*", &ctx).allowed());
    assert_eq!(root.principal, Principal::Root { account: ACCOUNT.into() });
    assert_eq!(root.principal.account(), Some(ACCOUNT));
    assert_eq!(root.principal.arn(), format!("acs:ram::{ACCOUNT}:root"));
    assert_eq!(root.principal.ids(), vec![ACCOUNT.to_owned(), format!("acs:ram::{ACCOUNT}:root")]);
    assert!(root.policies.is_empty());
}

#[test]
fn a_ram_user_gets_what_its_policies_allow_in_its_own_account() {
    let read = p("read", &doc(r#"{"Sid":"R","Effect":"Allow","Action":["oss:Get*","oss:List*"],"Resource":"*"}"#));
    let no_secrets =
        p("no-secrets", &doc(r#"{"Effect":"Deny","Action":"oss:GetObject","Resource":"acs:oss:*:*:bucket/secret/*"}"#));
    let alice = user_identity(ACCOUNT, vec![read, no_secrets]);
    let ctx = Context::new();
    let own = |key: &str| format!("acs:oss:cn-hangzhou:{ACCOUNT}:bucket/{key}");

    assert_eq!(alice.decide("oss:GetObject", &own("a.txt"), &ctx), allow("read", 0, Some("R")));
    assert_eq!(alice.decide("oss:ListObjects", BUCKET, &ctx), allow("read", 0, Some("R")));
    assert_eq!(alice.decide("oss:PutObject", &own("a.txt"), &ctx), Decision::ImplicitDeny);
    assert_eq!(alice.decide("oss:GetObject", &own("secret/k"), &ctx), deny("no-secrets", 0, None));
    // "Resource": "*" still stops at the account boundary.
    let theirs = format!("acs:oss:cn-hangzhou:{OTHER_ACCOUNT}:bucket/a.txt");
    assert_eq!(alice.decide("oss:GetObject", &theirs, &ctx), Decision::ImplicitDeny);

    // A user without policies can do nothing, even in its own account.
    let nobody = user_identity(ACCOUNT, Vec::new());
    assert_eq!(nobody.decide("oss:GetObject", &own("a.txt"), &ctx), Decision::ImplicitDeny);

    assert_eq!(alice.principal.account(), Some(ACCOUNT));
    assert_eq!(alice.principal.arn(), format!("acs:ram::{ACCOUNT}:user/alice"));
    assert_eq!(alice.principal.ids(), vec!["200000000000001".to_owned(), format!("acs:ram::{ACCOUNT}:user/alice")]);
}

#[test]
fn anonymous_callers_are_always_implicitly_denied() {
    let anonymous = Identity::anonymous();
    let ctx = Context::new();
    for resource in [OBJ, BUCKET, "acs:oss:*:*:*", "*", "acs:oss:*:*:bucket/x"] {
        assert_eq!(anonymous.decide("oss:GetObject", resource, &ctx), Decision::ImplicitDeny, "{resource}");
    }
    assert_eq!(anonymous.principal, Principal::Anonymous);
    assert_eq!(anonymous.principal.account(), None);
    assert_eq!(anonymous.principal.arn(), "anonymous");
    assert!(anonymous.principal.ids().is_empty());
    assert_eq!(anonymous.access_key_id, None);
}

#[test]
fn own_deny_holds_on_other_accounts_resources() {
    let deny_all = p("deny-all", r#"{"Version":"1","Statement":[{"Effect":"Deny","Action":"oss:*","Resource":"*"}]}"#);
    let allow_all =
        p("allow-all", r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"oss:*","Resource":"*"}]}"#);
    let foreign = "acs:oss:cn-hangzhou:1999999999999999:other/obj";
    let ctx = Context::new();
    // The Allow grants nothing abroad; the Deny still refuses.
    assert_eq!(user_identity(ACCOUNT, vec![allow_all]).decide("oss:GetObject", foreign, &ctx), Decision::ImplicitDeny);
    assert!(matches!(user_identity(ACCOUNT, vec![deny_all]).decide("oss:GetObject", foreign, &ctx), Decision::Deny(_)));
}

#[test]
fn empty_principal_maps_are_refused() {
    for principal in [r#"{}"#, r#"{"RAM": []}"#] {
        let text = format!(
            r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Action":"oss:GetObject","Principal":{principal},"Resource":"*"}}]}}"#
        );
        let e = Policy::parse(&text, PolicyKind::Resource).unwrap_err();
        assert!(e.reason.contains("names no principal"), "{principal}: {e}");
    }
}
