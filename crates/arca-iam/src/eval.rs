//! Policy evaluation (spec B2) as a pure function: explicit Deny beats Allow,
//! Allow beats the implicit deny; the deciding statement is returned.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::policy::{Condition, Effect, Operator, Patterns, Policy, Statement, parse_date};

/// A policy with the name it is known by (for the deciding statement).
#[derive(Debug, Clone)]
pub struct NamedPolicy {
    /// `AliyunOSSFullAccess`, a custom policy name, or `bucket-policy`.
    pub name: String,
    /// The parsed document.
    pub policy: Arc<Policy>,
}

/// The request's condition values, keyed case-insensitively.
#[derive(Debug, Clone, Default)]
pub struct Context {
    values: BTreeMap<String, Vec<String>>,
}

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a key (replacing earlier values).
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.values.insert(key.to_ascii_lowercase(), vec![value.into()]);
    }

    /// Builder form of [`Context::set`].
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.set(key, value);
        self
    }

    /// The values of `key` (case-insensitive).
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.values.get(&key.to_ascii_lowercase()).map(Vec::as_slice)
    }
}

/// Which statement decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    /// The policy's name.
    pub policy: String,
    /// 0-based statement index.
    pub statement: usize,
    /// The statement's `Sid`, if it has one.
    pub sid: Option<String>,
}

impl std::fmt::Display for Matched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.sid {
            Some(sid) => write!(f, "{} statement {} (Sid {sid})", self.policy, self.statement + 1),
            None => write!(f, "{} statement {}", self.policy, self.statement + 1),
        }
    }
}

/// The outcome of evaluating a set of policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A statement allows and none denies.
    Allow(Matched),
    /// A statement denies explicitly.
    Deny(Matched),
    /// Nothing applies.
    ImplicitDeny,
}

impl Decision {
    /// True for [`Decision::Allow`].
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

/// What is asked: `action` (`oss:GetObject`) on `resource` (an ARN).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `service:Action`.
    pub action: &'a str,
    /// The resource ARN.
    pub resource: &'a str,
    /// Condition values.
    pub context: &'a Context,
    /// For resource policies: the caller's principal ids (account or user
    /// UIDs); empty for anonymous callers, who match only `*`.
    /// `None` evaluates identity policies (which name no principal).
    pub principal_ids: Option<&'a [String]>,
}

/// Evaluates `policies` for `request`.
pub fn evaluate<'a>(policies: impl IntoIterator<Item = &'a NamedPolicy>, request: &Request<'_>) -> Decision {
    let mut allow = None;
    for named in policies {
        for (i, s) in named.policy.statements.iter().enumerate() {
            if !applies(s, request) {
                continue;
            }
            let matched = || Matched { policy: named.name.clone(), statement: i, sid: s.sid.clone() };
            match s.effect {
                Effect::Deny => return Decision::Deny(matched()),
                Effect::Allow if allow.is_none() => allow = Some(matched()),
                Effect::Allow => {}
            }
        }
    }
    allow.map(Decision::Allow).unwrap_or(Decision::ImplicitDeny)
}

fn applies(s: &Statement, r: &Request<'_>) -> bool {
    let principal_ok = match (&s.principals, r.principal_ids) {
        (None, _) => true,
        // "Principal": [] means everyone.
        (Some(list), Some(ids)) => {
            list.is_empty() || list.iter().any(|p| p == "*" || ids.iter().any(|id| glob(p, id, false)))
        }
        (Some(_), None) => false,
    };
    principal_ok
        && matches_patterns(&s.actions, r.action, true)
        && matches_patterns(&s.resources, r.resource, false)
        && s.conditions.iter().all(|c| condition_holds(c, r.context))
}

fn matches_patterns(p: &Patterns, value: &str, ignore_case: bool) -> bool {
    p.values.iter().any(|pat| glob(pat, value, ignore_case)) != p.negated
}

/// `*` matches any run (including `/` and `:`), `?` exactly one character.
pub fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let eq = |a: char, b: char| if ignore_case { a.to_lowercase().eq(b.to_lowercase()) } else { a == b };
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || eq(p[pi], t[ti])) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            // Let the last star swallow one more character and retry.
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// An absent key makes every condition on it false (spec B1, our rule).
fn condition_holds(c: &Condition, ctx: &Context) -> bool {
    let Some(actual) = ctx.get(&c.key) else { return false };
    use Operator::*;
    let any = |f: &dyn Fn(&str, &str) -> bool| actual.iter().any(|a| c.values.iter().any(|v| f(a, v)));
    // Typed operators: a request value that does not parse fails the
    // condition, for the negated operators too (garbage never matches).
    let typed = |parses: fn(&str) -> bool, f: &dyn Fn(&str, &str) -> bool, negated: bool| {
        actual.iter().all(|a| parses(a)) && any(f) != negated
    };
    let number = |s: &str| s.trim().parse::<f64>().is_ok();
    let date_ok = |s: &str| parse_date(s).is_some();
    let ip_ok = |s: &str| s.parse::<IpAddr>().is_ok();
    let num = |f: fn(f64, f64) -> bool, negated: bool| {
        typed(
            number,
            &|a, v| match (a.trim().parse::<f64>(), v.trim().parse::<f64>()) {
                (Ok(a), Ok(v)) => f(a, v),
                _ => false,
            },
            negated,
        )
    };
    let date = |f: fn(i64, i64) -> bool, negated: bool| {
        typed(
            date_ok,
            &|a, v| match (parse_date(a), parse_date(v)) {
                (Some(a), Some(v)) => f(a, v),
                _ => false,
            },
            negated,
        )
    };
    match c.operator {
        StringEquals => any(&|a, v| a == v),
        StringNotEquals => !any(&|a, v| a == v),
        StringEqualsIgnoreCase => any(&|a, v| a.eq_ignore_ascii_case(v)),
        StringNotEqualsIgnoreCase => !any(&|a, v| a.eq_ignore_ascii_case(v)),
        StringLike => any(&|a, v| glob(v, a, false)),
        StringNotLike => !any(&|a, v| glob(v, a, false)),
        NumericEquals => num(|a, v| a == v, false),
        NumericNotEquals => num(|a, v| a == v, true),
        NumericLessThan => num(|a, v| a < v, false),
        NumericLessThanEquals => num(|a, v| a <= v, false),
        NumericGreaterThan => num(|a, v| a > v, false),
        NumericGreaterThanEquals => num(|a, v| a >= v, false),
        DateEquals => date(|a, v| a == v, false),
        DateNotEquals => date(|a, v| a == v, true),
        DateLessThan => date(|a, v| a < v, false),
        DateLessThanEquals => date(|a, v| a <= v, false),
        DateGreaterThan => date(|a, v| a > v, false),
        DateGreaterThanEquals => date(|a, v| a >= v, false),
        Bool => any(&|a, v| a.eq_ignore_ascii_case(v)),
        IpAddress => typed(ip_ok, &ip_matches, false),
        NotIpAddress => typed(ip_ok, &ip_matches, true),
    }
}

/// Whether address `ip` is `pattern`: an address, a CIDR block, or a `*` pattern.
fn ip_matches(ip: &str, pattern: &str) -> bool {
    let Ok(addr) = ip.parse::<IpAddr>() else { return false };
    if pattern.contains('*') {
        return glob(pattern, &addr.to_string(), true);
    }
    let (net, bits) = match pattern.split_once('/') {
        Some((n, b)) => (n, b.parse::<u32>().ok()),
        None => (pattern, None),
    };
    match (addr, net.parse::<IpAddr>()) {
        (IpAddr::V4(a), Ok(IpAddr::V4(n))) => prefix_eq(u32::from(a).into(), u32::from(n).into(), 32, bits),
        (IpAddr::V6(a), Ok(IpAddr::V6(n))) => prefix_eq(u128::from(a), u128::from(n), 128, bits),
        // An IPv4 client seen through an IPv6 socket.
        (IpAddr::V6(a), Ok(IpAddr::V4(n))) => match a.to_ipv4_mapped() {
            Some(a) => prefix_eq(u32::from(a).into(), u32::from(n).into(), 32, bits),
            None => false,
        },
        _ => false,
    }
}

fn prefix_eq(a: u128, n: u128, width: u32, bits: Option<u32>) -> bool {
    let bits = bits.unwrap_or(width).min(width);
    if bits == 0 {
        return true;
    }
    let shift = width - bits;
    (a >> shift) == (n >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*", "", false));
        assert!(glob("acs:oss:*:*:bucket/*", "acs:oss:cn-hangzhou:1:bucket/a/b.txt", false));
        assert!(!glob("acs:oss:*:*:bucket/*", "acs:oss:cn-hangzhou:1:bucket", false));
        assert!(glob("oss:Get*", "OSS:getobject", true));
        assert!(!glob("oss:Get*", "oss:getobject", false));
        assert!(glob("a?c", "abc", false));
        assert!(!glob("a?c", "ac", false));
        assert!(glob("*a*b*", "xxaxxbxx", false));
        assert!(!glob("*a*b", "xxaxxbxxc", false));
        assert!(glob("**", "anything", false));
    }

    #[test]
    fn ip_patterns() {
        assert!(ip_matches("192.168.3.4", "192.168.0.0/16"));
        assert!(!ip_matches("192.169.3.4", "192.168.0.0/16"));
        assert!(ip_matches("10.1.2.3", "10.1.2.3"));
        assert!(ip_matches("10.1.2.3", "0.0.0.0/0"));
        assert!(ip_matches("10.1.2.3", "10.1.*"));
        assert!(ip_matches("::ffff:10.1.2.3", "10.0.0.0/8"));
        assert!(ip_matches("2001:db8::1", "2001:db8::/32"));
        assert!(!ip_matches("2001:db9::1", "2001:db8::/32"));
        assert!(!ip_matches("not-an-ip", "0.0.0.0/0"));
    }
}
