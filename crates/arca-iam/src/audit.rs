//! The audit log: one JSON line per denied authorization and per KMS key use.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use serde::Serialize;

/// One audited event.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent<'a> {
    /// `deny`, or `allow` for key uses.
    pub decision: &'a str,
    /// `acs:ram::{account}:root`, `acs:ram::{account}:user/{name}`, or `anonymous`.
    pub principal: &'a str,
    /// `service:Action`.
    pub action: &'a str,
    /// The resource ARN.
    pub resource: &'a str,
    /// The deciding statement, or why nothing allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    /// CMK id (key uses).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<&'a str>,
    /// CMK version id (key uses).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_version: Option<&'a str>,
    /// Client address, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<&'a str>,
}

/// Where audit lines go. Each line is written with one `write` on a file
/// opened for appending, so lines from concurrent requests never interleave.
pub struct Audit {
    sink: Option<Mutex<std::fs::File>>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit").field("enabled", &self.sink.is_some()).finish()
    }
}

impl Audit {
    /// Appends to the file at `path` (created 0600 if absent).
    pub fn file(path: &Path) -> std::io::Result<Audit> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let f = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
        Ok(Audit { sink: Some(Mutex::new(f)) })
    }

    /// Records nothing (tests and tools that do not audit).
    pub fn disabled() -> Audit {
        Audit { sink: None }
    }

    /// Records a refusal of `action` on `resource` to `identity`, and why.
    pub fn deny(
        &self,
        identity: &crate::Identity,
        context: &crate::Context,
        action: &str,
        resource: &str,
        reason: &str,
    ) {
        self.record(&AuditEvent {
            decision: "deny",
            principal: &identity.principal.arn(),
            action,
            resource,
            reason: Some(reason),
            key_id: None,
            key_version: None,
            source_ip: context.get("acs:SourceIp").and_then(|v| v.first()).map(String::as_str),
        });
    }

    /// Why a decision refused, for the audit log and messages.
    pub fn reason(decision: &crate::Decision) -> String {
        match decision {
            crate::Decision::Deny(m) => format!("denied by {m}"),
            _ => "no RAM policy allows it".to_owned(),
        }
    }

    /// Writes one event.
    pub fn record(&self, event: &AuditEvent<'_>) {
        let Some(sink) = &self.sink else { return };
        #[derive(Serialize)]
        struct Line<'a> {
            time: String,
            #[serde(flatten)]
            event: &'a AuditEvent<'a>,
        }
        let time =
            time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        let Ok(mut line) = serde_json::to_vec(&Line { time, event }) else { return };
        line.push(b'\n');
        let result = match sink.lock() {
            Ok(mut f) => f.write_all(&line),
            Err(_) => Err(std::io::Error::other("audit lock poisoned")),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "writing the audit log failed");
        }
    }
}
