//! Authorization of object-service requests (spec B2/B3/B5).
//!
//! Order: the bucket owner's root identity may do anything with its
//! buckets. Otherwise the caller's identity policies (RAM users, on their
//! own account's buckets only) and the bucket policy are evaluated: an
//! explicit Deny in either refuses, an Allow in either grants. If neither
//! decides, data actions fall back to the object ACL, then the bucket ACL;
//! management actions are refused.
//!
//! SSE-KMS adds a check against the caller for a user-named CMK:
//! `kms:GenerateDataKey` to write, `kms:Decrypt` to read, `kms:List*` and
//! `kms:DescribeKey` to name it as a bucket default. The default key
//! `alias/acs/oss` is used by the service on the caller's behalf and needs
//! no KMS permission (but never serves anonymous requests).

use arca_iam::{Context, Decision, Identity, NamedPolicy, Policy, PolicyKind, Principal, Request};
use arca_meta::Bucket;

use crate::{Caller, CoreError, ObjectService};

/// What a request wants to do, for the ACL fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read object data or listings.
    Read,
    /// Write or delete objects.
    Write,
    /// Manage the bucket itself (ACL, delete, info): no ACL grants it.
    Owner,
}

/// An OSS action on a bucket or one of its objects.
#[derive(Debug, Clone, Copy)]
pub struct Op<'a> {
    /// The RAM action, e.g. `oss:GetObject`.
    pub action: &'static str,
    /// The object key, for object actions.
    pub key: Option<&'a str>,
    /// Extra condition values (`oss:Prefix`, `oss:Delimiter`).
    pub extra: &'a [(&'static str, &'a str)],
}

impl<'a> Op<'a> {
    /// A bucket-level action.
    pub const fn bucket(action: &'static str) -> Self {
        Op { action, key: None, extra: &[] }
    }

    /// An action on object `key`.
    pub const fn object(action: &'static str, key: &'a str) -> Self {
        Op { action, key: Some(key), extra: &[] }
    }

    /// What a canned ACL may grant for this action.
    fn acl_class(&self) -> Access {
        match self.action {
            "oss:GetObject" | "oss:ListObjects" | "oss:ListMultipartUploads" | "oss:ListParts" => Access::Read,
            "oss:PutObject" | "oss:DeleteObject" | "oss:AbortMultipartUpload" => Access::Write,
            _ => Access::Owner,
        }
    }
}

/// The OSS ARN of a bucket or object.
pub fn oss_arn(bucket: &Bucket, key: Option<&str>) -> String {
    match key {
        Some(k) => format!("acs:oss:{}:{}:{}/{k}", bucket.region, bucket.owner, bucket.name),
        None => format!("acs:oss:{}:{}:{}", bucket.region, bucket.owner, bucket.name),
    }
}

/// The message of a refusal for missing KMS permission (spec B5).
pub const KMS_FORBIDDEN: &str = "This request is forbidden by kms.";

fn acl_grants(acl: &str, access: Access) -> bool {
    match access {
        Access::Read => acl == "public-read" || acl == "public-read-write",
        Access::Write => acl == "public-read-write",
        Access::Owner => false,
    }
}

/// Parses a stored bucket policy (validated when it was put). One that no
/// longer parses refuses every request it would have been asked about,
/// rather than silently dropping its Deny statements.
fn bucket_policy(bucket: &Bucket) -> Result<Option<NamedPolicy>, CoreError> {
    let Some(text) = bucket.policy.as_deref() else { return Ok(None) };
    match Policy::parse(text, PolicyKind::Resource) {
        Ok(p) => Ok(Some(NamedPolicy { name: "bucket policy".into(), policy: std::sync::Arc::new(p) })),
        Err(e) => {
            tracing::error!(bucket = %bucket.name, error = %e, "stored bucket policy does not parse");
            Err(CoreError::internal("the bucket policy cannot be evaluated (details in the log)"))
        }
    }
}

impl Caller {
    fn is_owner_root(&self, bucket: &Bucket) -> bool {
        matches!(&self.identity.principal, Principal::Root { account } if *account == bucket.owner)
    }

    /// The request's condition values plus `extra`.
    fn context_with(&self, extra: &[(&'static str, &str)]) -> Context {
        let mut ctx = self.context.clone();
        for (k, v) in extra {
            ctx.set(k, *v);
        }
        ctx
    }
}

impl ObjectService {
    /// Decides `op` on `bucket` for `caller`; `object_acl` is the target
    /// object's ACL when there is one (it overrides the bucket's unless `default`).
    pub(crate) fn authorize(
        &self,
        caller: &Caller,
        bucket: &Bucket,
        op: &Op<'_>,
        object_acl: Option<&str>,
    ) -> Result<(), CoreError> {
        if caller.is_owner_root(bucket) {
            return Ok(());
        }
        let resource = oss_arn(bucket, op.key);
        let context = caller.context_with(op.extra);
        let identity = caller.identity.decide(op.action, &resource, &context);
        let ids = caller.identity.principal.ids();
        let by_policy = bucket_policy(bucket)?.map(|p| {
            let request =
                Request { action: op.action, resource: &resource, context: &context, principal_ids: Some(&ids) };
            arca_iam::evaluate([&p], &request)
        });
        let decisions = [Some(identity), by_policy];
        if let Some(Decision::Deny(m)) = decisions.iter().flatten().find(|d| matches!(d, Decision::Deny(_))) {
            let reason = m.to_string();
            self.audit_deny(caller, op.action, &resource, &reason);
            // Only the bucket's own account learns which statement decided.
            if caller.account_id() != Some(bucket.owner.as_str()) {
                return Err(CoreError::AccessDenied("You are denied by bucket policy or your own policy.".into()));
            }
            return Err(CoreError::AccessDenied(format!(
                "You are forbidden to {} on {resource}: denied by {reason}.",
                op.action
            )));
        }
        if decisions.iter().flatten().any(Decision::allowed) {
            return Ok(());
        }
        let acl = match object_acl {
            Some(a) if a != "default" => a,
            _ => bucket.acl.as_str(),
        };
        if acl_grants(acl, op.acl_class()) {
            return Ok(());
        }
        self.audit_deny(caller, op.action, &resource, "no policy or ACL allows it");
        Err(implicit_denial(&caller.identity, op.action, &resource, bucket))
    }

    /// Setting an ACL while writing (`x-oss-object-acl`) also needs
    /// `oss:PutObjectAcl`, so a user who may not publish objects cannot make
    /// them public by uploading.
    pub(crate) fn authorize_acl_header(
        &self,
        caller: &Caller,
        bucket: &Bucket,
        key: &str,
        acl: &str,
    ) -> Result<(), CoreError> {
        if acl.is_empty() || acl == "default" {
            return Ok(());
        }
        self.authorize(caller, bucket, &Op::object("oss:PutObjectAcl", key), None)
    }

    /// Checks an action that names no bucket (`oss:ListBuckets`, `oss:PutBucket`)
    /// against the caller's identity policies.
    pub(crate) fn authorize_account(
        &self,
        caller: &Caller,
        action: &'static str,
        resource: &str,
    ) -> Result<String, CoreError> {
        let Some(account) = caller.account_id().map(str::to_owned) else {
            self.audit_deny(caller, action, resource, "anonymous");
            return Err(CoreError::AccessDenied("Anonymous access is forbidden for this operation.".into()));
        };
        match caller.identity.decide(action, resource, &caller.context) {
            Decision::Allow(_) => Ok(account),
            Decision::Deny(m) => {
                self.audit_deny(caller, action, resource, &m.to_string());
                Err(CoreError::AccessDenied(format!("You are forbidden to {action} on {resource}: denied by {m}.")))
            }
            Decision::ImplicitDeny => {
                self.audit_deny(caller, action, resource, "no policy allows it");
                Err(CoreError::AccessDenied(format!(
                    "You are not authorized to do {action} on {resource}: no RAM policy allows it."
                )))
            }
        }
    }

    /// Checks the caller may use the user-named CMK `key_ref` of `bucket`'s
    /// account for each of `actions`; returns the key id.
    pub(crate) async fn authorize_kms(
        &self,
        caller: &Caller,
        bucket: &Bucket,
        key_ref: &str,
        actions: &[&'static str],
    ) -> Result<String, CoreError> {
        if caller.account_id().is_none() {
            self.audit_deny(caller, actions.first().copied().unwrap_or("kms:*"), key_ref, "anonymous");
            return Err(CoreError::AccessDenied(KMS_FORBIDDEN.into()));
        }
        let ctx = crate::sse::kms_context(bucket, caller);
        let resolved = self.kms.resolve(&ctx, key_ref).await;
        if caller.is_owner_root(bucket) {
            return resolved.map(|cmk| cmk.key_id).map_err(crate::sse::kms_error);
        }
        // Authorized before a missing key is reported, so a caller without
        // permission cannot probe which keys exist.
        let key_id = match &resolved {
            Ok(cmk) => cmk.key_id.clone(),
            Err(_) => key_ref.rsplit(['/', ':']).next().unwrap_or(key_ref).to_owned(),
        };
        self.kms_allowed(caller, bucket, &key_id, actions)?;
        resolved.map(|cmk| cmk.key_id).map_err(crate::sse::kms_error)
    }

    /// A bucket default naming a CMK: the caller must be allowed `kms:List*`
    /// and `kms:DescribeKey` on it. The id is stored as configured (as OSS
    /// does; a key that does not exist fails the writes that use it).
    pub(crate) async fn authorize_kms_rule(
        &self,
        caller: &Caller,
        bucket: &Bucket,
        key_ref: &str,
    ) -> Result<(), CoreError> {
        if caller.is_owner_root(bucket) {
            return Ok(());
        }
        let ctx = crate::sse::kms_context(bucket, caller);
        let key_id = match self.kms.resolve(&ctx, key_ref).await {
            Ok(cmk) => cmk.key_id,
            Err(_) => key_ref.trim_start_matches("key/").to_owned(),
        };
        self.kms_allowed(caller, bucket, &key_id, &["kms:ListKeys", "kms:DescribeKey"])
    }

    /// The caller's identity policies allow every one of `actions` on key `key_id`.
    fn kms_allowed(
        &self,
        caller: &Caller,
        bucket: &Bucket,
        key_id: &str,
        actions: &[&'static str],
    ) -> Result<(), CoreError> {
        for action in actions {
            let resource = if action.starts_with("kms:List") {
                format!("acs:kms:{}:{}:key", bucket.region, bucket.owner)
            } else {
                format!("acs:kms:{}:{}:key/{key_id}", bucket.region, bucket.owner)
            };
            if !caller.identity.decide(action, &resource, &caller.context).allowed() {
                self.audit_deny(caller, action, &resource, "no RAM policy allows the caller to use this key");
                return Err(CoreError::AccessDenied(KMS_FORBIDDEN.into()));
            }
        }
        Ok(())
    }

    /// Reading an SSE-KMS object needs `kms:Decrypt` on a user-named CMK
    /// (not on the service's `alias/acs/oss`), and is never anonymous.
    pub(crate) async fn authorize_kms_read(
        &self,
        caller: &Caller,
        bucket: &Bucket,
        enc: Option<&arca_meta::Encryption>,
    ) -> Result<(), CoreError> {
        let Some(enc) = enc.filter(|e| e.algorithm == crate::sse::KMS) else { return Ok(()) };
        if caller.account_id().is_none() {
            self.audit_deny(caller, "kms:Decrypt", &enc.key_id, "anonymous");
            return Err(CoreError::AccessDenied(KMS_FORBIDDEN.into()));
        }
        if caller.is_owner_root(bucket) {
            return Ok(());
        }
        let service_key = self.meta.get_cmk(&enc.key_id).await?.is_some_and(|c| c.creator_type == "Service");
        if !service_key {
            self.authorize_kms(caller, bucket, &enc.key_id, &["kms:Decrypt"]).await?;
        }
        Ok(())
    }

    pub(crate) fn audit_deny(&self, caller: &Caller, action: &str, resource: &str, reason: &str) {
        self.audit.deny(&caller.identity, &caller.context, action, resource, reason);
    }
}

fn implicit_denial(identity: &Identity, action: &str, resource: &str, bucket: &Bucket) -> CoreError {
    CoreError::AccessDenied(match &identity.principal {
        Principal::Anonymous => "You have no right to access this object because of bucket acl.".into(),
        Principal::Root { .. } => "You have no right to access this object because of bucket acl.".into(),
        Principal::User { account, .. } if *account != bucket.owner => {
            "The bucket you access does not belong to you.".into()
        }
        Principal::User { .. } => {
            format!("You are not authorized to do {action} on {resource}: no RAM policy or bucket policy allows it.")
        }
    })
}
