//! Which resources a KMS action is checked against (spec B4), and the check.

use arca_iam::{Context, Identity, Principal};
use arca_kms::{Kms, KmsContext};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use http::StatusCode;

use crate::actions::{ApiError, Params};

/// The `(action, resource)` pairs a call needs, resolving key references.
/// A reference that does not resolve yields its own ARN, so a caller without
/// permission learns nothing about which keys exist.
async fn requirements(
    kms: &Kms,
    ctx: &KmsContext,
    action: &str,
    p: &Params<'_>,
) -> Result<Vec<(String, String)>, ApiError> {
    let container = |kind: &str| format!("acs:kms:{}:{}:{kind}", ctx.region, ctx.account);
    let key_arn = |id: &str| format!("acs:kms:{}:{}:key/{id}", ctx.region, ctx.account);
    let alias_arn = |alias: &str| format!("acs:kms:{}:{}:{alias}", ctx.region, ctx.account);
    let own = |a: &str| format!("kms:{a}");
    let blob_key = |name: &'static str| async move {
        let blob = B64.decode(p.need(name)?).map_err(|_| ApiError::invalid(name))?;
        Ok::<_, ApiError>(kms.blob_key_id(&blob).await.unwrap_or_else(|_| "unknown".into()))
    };
    let key_of = |r: &'static str| async move {
        let key_ref = p.need(r)?;
        Ok::<_, ApiError>(match kms.resolve(ctx, key_ref).await {
            Ok(cmk) => cmk.key_id,
            Err(_) => key_ref.rsplit(['/', ':']).next().unwrap_or(key_ref).to_owned(),
        })
    };
    Ok(match action {
        "DescribeRegions" => vec![],
        "CreateKey" | "ListKeys" | "DescribeKmsUsage" => vec![(own(action), container("key"))],
        "ListAliases" => vec![(own(action), container("alias"))],
        "CreateAlias" | "UpdateAlias" => {
            vec![(own(action), alias_arn(p.need("AliasName")?)), (own(action), key_arn(&key_of("KeyId").await?))]
        }
        "DeleteAlias" => {
            vec![(own(action), alias_arn(p.need("AliasName")?)), (own(action), key_arn(&key_of("AliasName").await?))]
        }
        "Decrypt" => vec![(own(action), key_arn(&blob_key("CiphertextBlob").await?))],
        // The blob ReEncrypt decrypts is `CiphertextBlob` (as the action runs it).
        "ReEncrypt" => vec![
            ("kms:ReEncryptFrom".into(), key_arn(&blob_key("CiphertextBlob").await?)),
            ("kms:ReEncryptTo".into(), key_arn(&key_of("DestinationKeyId").await?)),
        ],
        // Every other action names one key.
        _ => vec![(own(action), key_arn(&key_of("KeyId").await?))],
    })
}

/// Authorizes a KMS call for `identity`: the account's root may do anything
/// with its keys; a RAM user what its policies allow.
pub async fn authorize(
    kms: &Kms,
    ctx: &KmsContext,
    identity: &Identity,
    context: &Context,
    audit: &arca_iam::Audit,
    action: &str,
    p: &Params<'_>,
) -> Result<(), ApiError> {
    if matches!(identity.principal, Principal::Root { .. }) {
        return Ok(());
    }
    for (action, resource) in requirements(kms, ctx, action, p).await? {
        let decision = identity.decide(&action, &resource, context);
        if decision.allowed() {
            continue;
        }
        let reason = arca_iam::Audit::reason(&decision);
        audit.deny(identity, context, &action, &resource, &reason);
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Forbidden.NoPermission",
            format!("This operation for {resource} is forbidden by permission system ({action}: {reason})."),
        ));
    }
    Ok(())
}
