//! The RAM policy language (spec Part B1): parsing and validation.
//!
//! Documents are parsed straight into typed structures so that every error,
//! syntax or grammar, carries the line and column where it was found.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::Deserialize;

/// Where a policy is attached: identity policies (users, groups) carry no
/// `Principal`; resource policies (bucket policies) must.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// Attached to a user or group.
    Identity,
    /// Attached to a resource (a bucket).
    Resource,
}

/// Why a document was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: {}", self.line, self.column, self.reason)
    }
}

impl std::error::Error for PolicyError {}

/// A parsed, validated policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Statements in document order.
    pub statements: Vec<Statement>,
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Effect {
    /// Grants.
    Allow,
    /// Refuses, overriding any grant.
    Deny,
}

/// A list of patterns, matched positively (`Action`) or negatively (`NotAction`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patterns {
    /// True for `NotAction` / `NotResource`.
    pub negated: bool,
    /// The patterns (`*` and `?` wildcards).
    pub values: Vec<String>,
}

/// One statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// Optional statement id.
    pub sid: Option<String>,
    /// Allow or Deny.
    pub effect: Effect,
    /// Action patterns.
    pub actions: Patterns,
    /// Resource patterns.
    pub resources: Patterns,
    /// Principals (resource policies only); `*` is everyone, anonymous included.
    pub principals: Option<Vec<String>>,
    /// Conditions, all of which must hold.
    pub conditions: Vec<Condition>,
}

/// A condition operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Operator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    IpAddress,
    NotIpAddress,
}

impl Operator {
    fn parse(name: &str) -> Option<Self> {
        use Operator::*;
        Some(match name {
            "StringEquals" => StringEquals,
            "StringNotEquals" => StringNotEquals,
            "StringEqualsIgnoreCase" => StringEqualsIgnoreCase,
            "StringNotEqualsIgnoreCase" => StringNotEqualsIgnoreCase,
            "StringLike" => StringLike,
            "StringNotLike" => StringNotLike,
            "NumericEquals" => NumericEquals,
            "NumericNotEquals" => NumericNotEquals,
            "NumericLessThan" => NumericLessThan,
            "NumericLessThanEquals" => NumericLessThanEquals,
            "NumericGreaterThan" => NumericGreaterThan,
            "NumericGreaterThanEquals" => NumericGreaterThanEquals,
            "DateEquals" => DateEquals,
            "DateNotEquals" => DateNotEquals,
            "DateLessThan" => DateLessThan,
            "DateLessThanEquals" => DateLessThanEquals,
            "DateGreaterThan" => DateGreaterThan,
            "DateGreaterThanEquals" => DateGreaterThanEquals,
            "Bool" => Bool,
            "IpAddress" => IpAddress,
            "NotIpAddress" => NotIpAddress,
            _ => return None,
        })
    }

    /// Checks that `value` is well-formed for this operator.
    fn check_value(self, value: &str) -> Result<(), String> {
        use Operator::*;
        let ok = match self {
            NumericEquals
            | NumericNotEquals
            | NumericLessThan
            | NumericLessThanEquals
            | NumericGreaterThan
            | NumericGreaterThanEquals => value.trim().parse::<f64>().is_ok(),
            DateEquals
            | DateNotEquals
            | DateLessThan
            | DateLessThanEquals
            | DateGreaterThan
            | DateGreaterThanEquals => parse_date(value).is_some(),
            Bool => value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false"),
            IpAddress | NotIpAddress => valid_ip_pattern(value),
            _ => true,
        };
        if ok { Ok(()) } else { Err(format!("{value:?} is not a valid value for {self:?}")) }
    }
}

/// One `Operator: { key: values }` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The operator.
    pub operator: Operator,
    /// The condition key, lower-cased (keys match case-insensitively).
    pub key: String,
    /// Values; any may match.
    pub values: Vec<String>,
}

/// Seconds since the epoch of an ISO-8601 / RFC 3339 time (`2019-08-12T17:00:00+08:00`).
pub(crate) fn parse_date(s: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(s.trim(), &Rfc3339).ok().map(|t| t.unix_timestamp())
}

/// An IP, a CIDR block, or an address pattern with `*` (as OSS allows).
fn valid_ip_pattern(s: &str) -> bool {
    if s.contains('*') {
        return s.chars().all(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '*'));
    }
    match s.split_once('/') {
        Some((ip, bits)) => match (ip.parse::<IpAddr>(), bits.parse::<u8>()) {
            (Ok(IpAddr::V4(_)), Ok(b)) => b <= 32,
            (Ok(IpAddr::V6(_)), Ok(b)) => b <= 128,
            _ => false,
        },
        None => s.parse::<IpAddr>().is_ok(),
    }
}

// ---- the document as written ------------------------------------------------

/// A string or an array of strings (equivalent, per the grammar).
#[derive(Deserialize)]
#[serde(untagged)]
enum StringList {
    One(String),
    Many(Vec<String>),
}

impl StringList {
    fn into_vec(self) -> Vec<String> {
        match self {
            StringList::One(s) => vec![s],
            StringList::Many(v) => v,
        }
    }
}

/// Condition values may be written as strings, numbers or booleans.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Str(String),
    Num(serde_json::Number),
    Bool(bool),
}

impl Scalar {
    fn into_string(self) -> String {
        match self {
            Scalar::Str(s) => s,
            Scalar::Num(n) => n.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ScalarList {
    One(Scalar),
    Many(Vec<Scalar>),
}

/// `"*"`, `["uid", …]`, or `{"RAM": [...], …}` (the values of every kind).
#[derive(Deserialize)]
#[serde(untagged)]
enum PrincipalValue {
    List(StringList),
    Map(BTreeMap<String, StringList>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatement {
    #[serde(rename = "Sid")]
    sid: Option<String>,
    #[serde(rename = "Effect")]
    effect: Effect,
    #[serde(rename = "Action")]
    action: Option<StringList>,
    #[serde(rename = "NotAction")]
    not_action: Option<StringList>,
    #[serde(rename = "Resource")]
    resource: Option<StringList>,
    #[serde(rename = "NotResource")]
    not_resource: Option<StringList>,
    #[serde(rename = "Principal")]
    principal: Option<PrincipalValue>,
    #[serde(rename = "Condition")]
    condition: Option<BTreeMap<String, BTreeMap<String, ScalarList>>>,
}

fn patterns(positive: Option<StringList>, negative: Option<StringList>, what: &str) -> Result<Patterns, String> {
    let (negated, values) = match (positive, negative) {
        (Some(p), None) => (false, p.into_vec()),
        (None, Some(n)) => (true, n.into_vec()),
        (Some(_), Some(_)) => return Err(format!("a statement has either {what} or Not{what}, not both")),
        (None, None) => return Err(format!("a statement needs {what} or Not{what}")),
    };
    if values.is_empty() || values.iter().any(|v| v.is_empty()) {
        return Err(format!("{what} must not be empty"));
    }
    Ok(Patterns { negated, values })
}

impl RawStatement {
    /// The grammar rules serde cannot express; errors point at the statement.
    fn validate(self) -> Result<Statement, String> {
        let raw = self;
        let actions = patterns(raw.action, raw.not_action, "Action")?;
        if let Some(bad) = actions.values.iter().find(|a| *a != "*" && !a.contains(':')) {
            return Err(format!("action {bad:?} must be written service:Action (e.g. oss:GetObject)"));
        }
        let resources = patterns(raw.resource, raw.not_resource, "Resource")?;
        // Only a literal `[]` means everyone; an empty map or an empty list
        // inside one is a mistake, not a grant to the world.
        let principals = match raw.principal {
            None => None,
            Some(PrincipalValue::List(l)) => Some(l.into_vec()),
            Some(PrincipalValue::Map(m)) => {
                let list: Vec<String> = m.into_values().flat_map(StringList::into_vec).collect();
                if list.is_empty() {
                    return Err("Principal names no principal; write \"*\" for everyone".into());
                }
                Some(list)
            }
        };
        let mut conditions = Vec::new();
        for (op_name, keys) in raw.condition.unwrap_or_default() {
            let operator =
                Operator::parse(&op_name).ok_or_else(|| format!("unknown condition operator {op_name:?}"))?;
            for (key, values) in keys {
                let values: Vec<String> = match values {
                    ScalarList::One(v) => vec![v.into_string()],
                    ScalarList::Many(v) => v.into_iter().map(Scalar::into_string).collect(),
                };
                if values.is_empty() {
                    return Err(format!("condition {op_name} on {key:?} has no values"));
                }
                for v in &values {
                    operator.check_value(v)?;
                }
                conditions.push(Condition { operator, key: key.to_ascii_lowercase(), values });
            }
        }
        Ok(Statement { sid: raw.sid, effect: raw.effect, actions, resources, principals, conditions })
    }
}

fn version_one<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = String::deserialize(d)?;
    if v != "1" {
        return Err(serde::de::Error::custom(format!("Version must be \"1\", not {v:?}")));
    }
    Ok(v)
}

/// The document with its statements kept as text, so each statement's errors
/// can be placed relative to where it starts.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy<'a> {
    #[serde(rename = "Version", deserialize_with = "version_one")]
    #[allow(dead_code)]
    version: String,
    #[serde(rename = "Statement", borrow)]
    statement: Vec<&'a serde_json::value::RawValue>,
}

/// 1-based line and column of byte `offset` in `text`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (line, column)
}

/// Moves a position inside a statement (starting at `start`) to the document.
fn shift((line, column): (usize, usize), (start_line, start_column): (usize, usize)) -> (usize, usize) {
    if line == 1 { (start_line, start_column + column - 1) } else { (start_line + line - 1, column) }
}

impl Policy {
    /// Parses and validates a document.
    ///
    /// # Errors
    /// The first problem found, with its line and column. Comments (which
    /// example policies in documentation often carry) are named as such.
    pub fn parse(text: &str, kind: PolicyKind) -> Result<Policy, PolicyError> {
        let raw: RawPolicy = serde_json::from_str(text).map_err(|e| explain(text, &e))?;
        if raw.statement.is_empty() {
            let (line, column) = position(text, text.find("\"Statement\"").unwrap_or(0));
            return Err(PolicyError { line, column, reason: "Statement must contain at least one statement".into() });
        }
        let mut statements = Vec::with_capacity(raw.statement.len());
        for stmt in raw.statement {
            let stmt_text = stmt.get();
            // The raw value borrows from `text`: its address gives its offset.
            let start = position(text, stmt_text.as_ptr() as usize - text.as_ptr() as usize);
            let at = |offset: usize, reason: String| {
                let (line, column) = shift(position(stmt_text, offset), start);
                PolicyError { line, column, reason }
            };
            let parsed: RawStatement = serde_json::from_str(stmt_text).map_err(|e| {
                let (line, column) = shift((e.line().max(1), e.column().max(1)), start);
                PolicyError { line, column, reason: strip_position(&e) }
            })?;
            let statement = parsed.validate().map_err(|reason| at(0, reason))?;
            match (kind, &statement.principals) {
                (PolicyKind::Identity, Some(_)) => {
                    let offset = stmt_text.find("\"Principal\"").unwrap_or(0);
                    return Err(at(offset, "Principal is only allowed in resource (bucket) policies".into()));
                }
                (PolicyKind::Resource, None) => {
                    return Err(at(0, "a bucket policy statement needs a Principal".into()));
                }
                _ => {}
            }
            statements.push(statement);
        }
        Ok(Policy { statements })
    }
}

/// serde_json's message without its trailing " at line L column C".
fn strip_position(e: &serde_json::Error) -> String {
    let mut reason = e.to_string();
    if let Some(i) = reason.rfind(" at line ") {
        reason.truncate(i);
    }
    reason
}

/// Turns a serde_json error into a policy error, naming comments explicitly.
fn explain(text: &str, e: &serde_json::Error) -> PolicyError {
    let (line, column) = (e.line().max(1), e.column().max(1));
    let mut reason = strip_position(e);
    let rest = text.lines().nth(line - 1).and_then(|l| l.get(column.saturating_sub(1)..)).unwrap_or("");
    if rest.trim_start().starts_with("//") || rest.trim_start().starts_with("/*") {
        reason = "comments are not allowed in a policy document (JSON has no comments; remove them)".into();
    }
    PolicyError { line, column, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_strings_equal_one_element_arrays() {
        let a = Policy::parse(
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"oss:GetObject","Resource":"*"}]}"#,
            PolicyKind::Identity,
        )
        .unwrap();
        let b = Policy::parse(
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":["oss:GetObject"],"Resource":["*"]}]}"#,
            PolicyKind::Identity,
        )
        .unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn comments_are_pointed_at() {
        let text = "{\n  \"Version\": \"1\",\n    // allow reads\n  \"Statement\": []\n}";
        let e = Policy::parse(text, PolicyKind::Identity).unwrap_err();
        assert_eq!((e.line, e.column), (3, 5), "{e}");
        assert!(e.reason.contains("comments are not allowed"), "{e}");
    }

    #[test]
    fn grammar_errors_carry_positions() {
        let cases = [
            (r#"{"Version":"2","Statement":[]}"#, "Version must be"),
            (r#"{"Version":"1","Statement":[{"Effect":"Alow","Action":"*","Resource":"*"}]}"#, "unknown variant"),
            (
                r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","NotAction":"*","Resource":"*"}]}"#,
                "not both",
            ),
            (r#"{"Version":"1","Statement":[{"Effect":"Allow","Resource":"*"}]}"#, "needs Action"),
            (
                r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"GetObject","Resource":"*"}]}"#,
                "service:Action",
            ),
            (r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*"}]}"#, "needs Resource"),
            (
                r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEq":{"a":"b"}}}]}"#,
                "unknown condition operator",
            ),
            (
                r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"acs:SourceIp":"10.0.0.0/99"}}}]}"#,
                "not a valid value",
            ),
            (
                r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"acs:CurrentTime":"tomorrow"}}}]}"#,
                "not a valid value",
            ),
            (
                r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NumericLessThan":{"oss:max-keys":"ten"}}}]}"#,
                "not a valid value",
            ),
            (
                r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Extra":1}]}"#,
                "unknown field",
            ),
            (r#"{"Version":"1","Statement":[]}"#, "at least one"),
            (
                r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Principal":"*"}]}"#,
                "Principal",
            ),
            ("{\"Version\":\"1\",", "EOF"),
        ];
        for (text, want) in cases {
            let e = Policy::parse(text, PolicyKind::Identity).unwrap_err();
            assert!(e.reason.contains(want), "{text}: {e}");
            assert!(e.line >= 1 && e.column >= 1);
        }
    }

    #[test]
    fn statement_errors_point_at_their_statement() {
        let text = "{\"Version\": \"1\", \"Statement\": [\n  {\"Effect\": \"Allow\", \"Action\": \"*\", \"Resource\": \"*\"},\n    {\"Effect\": \"Allow\", \"Action\": \"*\", \"NotAction\": \"*\", \"Resource\": \"*\"}\n]}";
        let e = Policy::parse(text, PolicyKind::Identity).unwrap_err();
        assert_eq!((e.line, e.column), (3, 5), "{e}");
        let text = "{\"Version\": \"1\", \"Statement\": [\n  {\"Effect\": \"Allow\",\n   \"Action\": 5, \"Resource\": \"*\"}]}";
        let e = Policy::parse(text, PolicyKind::Identity).unwrap_err();
        assert_eq!(e.line, 3, "{e}");
    }

    #[test]
    fn bucket_policies_need_principals() {
        let no_principal =
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"oss:GetObject","Resource":"*"}]}"#;
        assert!(Policy::parse(no_principal, PolicyKind::Resource).unwrap_err().reason.contains("Principal"));
        let p = Policy::parse(
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"oss:GetObject","Principal":{"RAM":["1","2"]},"Resource":"*"}]}"#,
            PolicyKind::Resource,
        )
        .unwrap();
        assert_eq!(p.statements[0].principals, Some(vec!["1".to_owned(), "2".to_owned()]));
    }

    #[test]
    fn condition_values_of_any_scalar_type() {
        let p = Policy::parse(
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*",
               "Condition":{"Bool":{"acs:SecureTransport":true},"NumericLessThan":{"Oss:Max":[5, "6.5"]}}}]}"#,
            PolicyKind::Identity,
        )
        .unwrap();
        let c = &p.statements[0].conditions;
        assert_eq!(c[0].values, vec!["true"]);
        assert_eq!((c[1].key.as_str(), c[1].values.clone()), ("oss:max", vec!["5".to_owned(), "6.5".to_owned()]));
    }
}
