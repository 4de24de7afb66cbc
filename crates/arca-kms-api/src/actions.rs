//! KMS actions: parameters in, JSON out, errors with their codes (spec A2, A5).

use arca_kms::{Kms, KmsContext, KmsError, NewKey};
use arca_meta::Cmk;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use http::StatusCode;
use serde_json::{Value, json};

/// A KMS or RAM error response.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Error code (`Forbidden.NoPermission`, `EntityNotExist.User`, …).
    pub code: String,
    /// Message for the caller.
    pub message: String,
    /// Detail for the log only (internal errors).
    pub internal: Option<String>,
}

impl ApiError {
    /// An error with a code and message.
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError { status, code: code.into(), message: message.into(), internal: None }
    }

    /// `MissingParameter` for `name`.
    pub fn missing(name: &str) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "MissingParameter",
            format!("The parameter \"{name}\" is needed but not provided."),
        )
    }

    /// `InvalidParameter` for `name`.
    pub fn invalid(name: &str) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            format!("The specified parameter \"{name}\" is not valid."),
        )
    }

    /// `InternalFailure`; `detail` goes to the log only.
    pub fn internal(detail: String) -> Self {
        let mut e = ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure", "Internal Failure.");
        e.internal = Some(detail);
        e
    }
}

impl From<KmsError> for ApiError {
    fn from(e: KmsError) -> Self {
        use StatusCode as S;
        let msg = e.to_string();
        match e {
            KmsError::KeyNotFound => ApiError::new(S::NOT_FOUND, "Forbidden.KeyNotFound", msg),
            KmsError::AliasNotFound => ApiError::new(S::NOT_FOUND, "Forbidden.AliasNotFound", msg),
            KmsError::KeyVersionNotFound | KmsError::NotFound(_) => {
                ApiError::new(S::NOT_FOUND, "Forbidden.KeyVersionNotFound", "The specified Key version is not found.")
            }
            KmsError::MissingParameter(p) => ApiError::missing(&p),
            KmsError::InvalidParameter(p) => ApiError::invalid(&p),
            KmsError::Rejected(state) => {
                let code = match state.as_str() {
                    "Disabled" => "Rejected.Disabled",
                    "PendingDeletion" => "Rejected.PendingDeletion",
                    "PendingImport" => "Rejected.PendingImport",
                    _ => "Rejected.Enabled",
                };
                ApiError::new(S::CONFLICT, code, msg)
            }
            KmsError::StateModifiedFailed => ApiError::new(S::CONFLICT, "Rejected.StateModifiedFailed", msg),
            KmsError::AliasAlreadyExists => ApiError::new(S::BAD_REQUEST, "AliasAlreadyExists", msg),
            KmsError::UnsupportedOrigin => ApiError::new(S::BAD_REQUEST, "Unsupported.Origin", msg),
            KmsError::UnsupportedOperation => ApiError::new(S::BAD_REQUEST, "Rejected.UnsupportedOperation", msg),
            KmsError::ServiceNotEnabled => ApiError::new(S::FORBIDDEN, "Forbidden.KmsServiceNotEnabled", msg),
            KmsError::KeyInUse(_) => ApiError::new(S::CONFLICT, "Rejected.ResourceInUse", msg),
            KmsError::InvalidKeyMaterial => ApiError::new(S::BAD_REQUEST, "InvalidKeyMaterial", msg),
            KmsError::InvalidImportToken => ApiError::new(S::BAD_REQUEST, "InvalidImportToken", msg),
            KmsError::ExpiredImportToken => ApiError::new(S::BAD_REQUEST, "ExpiredImportToken", msg),
            KmsError::Unseal(_) | KmsError::Meta(_) => ApiError::internal(msg),
        }
    }
}

fn iso(t: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(t).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z")).unwrap_or_default()
}

fn metadata(cmk: &Cmk) -> Value {
    let rotation = match (cmk.rotation_secs, cmk.state.as_str()) {
        (None, _) => "Disabled",
        (Some(_), "Enabled") => "Enabled",
        (Some(_), _) => "Suspended",
    };
    let mut m = json!({
        "Arn": Kms::arn(cmk),
        "AutomaticRotation": rotation,
        "CreationDate": iso(cmk.created),
        "Creator": cmk.account,
        "CreatorType": cmk.creator_type,
        "DeleteDate": cmk.delete_at.map(iso).unwrap_or_default(),
        "Description": cmk.description,
        "KeyId": cmk.key_id,
        "KeySpec": cmk.spec,
        "KeyState": cmk.state,
        "KeyUsage": "ENCRYPT/DECRYPT",
        "LastRotationDate": iso(cmk.last_rotation),
        "MaterialExpireTime": cmk.material_expire.map(iso).unwrap_or_default(),
        "Origin": cmk.origin,
        "PrimaryKeyVersion": cmk.versions.last().cloned().unwrap_or_default(),
        "ProtectionLevel": "SOFTWARE",
        "DeletionProtection": if cmk.creator_type == "Service" { "Enabled" } else { "Disabled" },
        "DeletionProtectionDescription": if cmk.creator_type == "Service" { "this key is used by OSS" } else { "" },
    });
    if let Some(r) = cmk.rotation_secs {
        m["RotationInterval"] = json!(format!("{r}s"));
        m["NextRotationDate"] = json!(iso(cmk.last_rotation + r as i64));
    }
    m
}

/// `integer[unit]` with unit d, h, m or s (seconds when absent).
fn parse_interval(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'd' => (&s[..s.len() - 1], 86400),
        'h' => (&s[..s.len() - 1], 3600),
        'm' => (&s[..s.len() - 1], 60),
        's' => (&s[..s.len() - 1], 1),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Request parameters.
pub struct Params<'a>(pub &'a [(String, String)]);

impl<'a> Params<'a> {
    /// A parameter's value.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A required, non-empty parameter.
    pub fn need(&self, name: &str) -> Result<&'a str, ApiError> {
        self.get(name).filter(|v| !v.is_empty()).ok_or_else(|| ApiError::missing(name))
    }
}

fn page(p: &Params<'_>) -> Result<(usize, usize), ApiError> {
    let num = |name: &str, default: usize, max: usize| -> Result<usize, ApiError> {
        match p.get(name) {
            None | Some("") => Ok(default),
            Some(v) => v.parse().ok().filter(|n| (1..=max).contains(n)).ok_or_else(|| ApiError::invalid(name)),
        }
    };
    Ok((num("PageNumber", 1, usize::MAX)?, num("PageSize", 10, 100)?))
}

fn paged<T: Clone>(items: &[T], number: usize, size: usize) -> Vec<T> {
    items.iter().skip((number - 1).saturating_mul(size)).take(size).cloned().collect()
}

/// ListKeys `Filters`: `[{"Key":"KeyState","Values":["Enabled"]}, …]`; keys AND, values OR.
fn filter_keys(keys: Vec<Cmk>, filters: Option<&str>) -> Result<Vec<Cmk>, ApiError> {
    let Some(text) = filters.filter(|f| !f.trim().is_empty()) else { return Ok(keys) };
    let parsed: Vec<Value> = serde_json::from_str(text).map_err(|_| ApiError::invalid("Filters"))?;
    let mut wanted: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for f in parsed {
        let key = f["Key"].as_str().ok_or_else(|| ApiError::invalid("Filters"))?.to_owned();
        let values = f["Values"].as_array().ok_or_else(|| ApiError::invalid("Filters"))?;
        let entry = wanted.entry(key).or_default();
        entry.extend(values.iter().filter_map(|v| v.as_str().map(str::to_owned)));
    }
    Ok(keys
        .into_iter()
        .filter(|k| {
            wanted.iter().all(|(name, values)| {
                let field = match name.as_str() {
                    "KeyState" => &k.state,
                    "KeySpec" => &k.spec,
                    "CreatorType" => &k.creator_type,
                    "KeyUsage" => return values.iter().any(|v| v == "ENCRYPT/DECRYPT"),
                    "ProtectionLevel" => return values.iter().any(|v| v == "SOFTWARE"),
                    _ => return true,
                };
                values.contains(field)
            })
        })
        .collect())
}

/// Runs one action.
pub async fn dispatch(kms: &Kms, ctx: &KmsContext, action: &str, p: &Params<'_>) -> Result<Value, ApiError> {
    let context = p.get("EncryptionContext");
    Ok(match action {
        "CreateKey" => {
            let rotate = p
                .get("EnableAutomaticRotation")
                .map(|v| parse_bool(v).ok_or_else(|| ApiError::invalid("EnableAutomaticRotation")))
                .transpose()?;
            let rotation_secs = if rotate == Some(true) {
                Some(parse_interval(p.need("RotationInterval")?).ok_or_else(|| ApiError::invalid("RotationInterval"))?)
            } else {
                None
            };
            if let Some(u) = p.get("KeyUsage").filter(|u| !u.is_empty() && *u != "ENCRYPT/DECRYPT") {
                let _ = u;
                return Err(ApiError::invalid("KeyUsage"));
            }
            let req = NewKey {
                spec: p.get("KeySpec").filter(|s| !s.is_empty()).map(str::to_owned),
                origin: p.get("Origin").filter(|s| !s.is_empty()).map(str::to_owned),
                description: p.get("Description").unwrap_or("").to_owned(),
                rotation_secs,
            };
            json!({ "KeyMetadata": metadata(&kms.create_key(ctx, req).await?) })
        }
        "DescribeKey" => {
            let cmk = kms.resolve(ctx, p.need("KeyId")?).await?;
            kms.meter(ctx, &cmk.key_id, action).await?;
            json!({ "KeyMetadata": metadata(&cmk) })
        }
        "ListKeys" => {
            let (n, size) = page(p)?;
            let keys = filter_keys(kms.list_keys(ctx).await?, p.get("Filters"))?;
            let list: Vec<Value> =
                paged(&keys, n, size).iter().map(|k| json!({ "KeyId": k.key_id, "KeyArn": Kms::arn(k) })).collect();
            json!({ "Keys": { "Key": list }, "TotalCount": keys.len(), "PageNumber": n, "PageSize": size })
        }
        "EnableKey" => {
            kms.enable_key(ctx, p.need("KeyId")?).await?;
            json!({})
        }
        "DisableKey" => {
            kms.disable_key(ctx, p.need("KeyId")?).await?;
            json!({})
        }
        "ScheduleKeyDeletion" => {
            let days = p.need("PendingWindowInDays")?.parse().map_err(|_| ApiError::invalid("PendingWindowInDays"))?;
            // `Force=true` (an Arca extension) deletes a key that bucket defaults still name.
            let force = p.get("Force").and_then(parse_bool).unwrap_or(false);
            kms.schedule_deletion(ctx, p.need("KeyId")?, days, force).await?;
            json!({})
        }
        "CancelKeyDeletion" => {
            kms.cancel_deletion(ctx, p.need("KeyId")?).await?;
            json!({})
        }
        "UpdateKeyDescription" => {
            kms.update_description(
                ctx,
                p.need("KeyId")?,
                p.get("Description").ok_or_else(|| ApiError::missing("Description"))?,
            )
            .await?;
            json!({})
        }
        "UpdateRotationPolicy" => {
            let enable = parse_bool(p.need("EnableAutomaticRotation")?)
                .ok_or_else(|| ApiError::invalid("EnableAutomaticRotation"))?;
            let secs = if enable {
                Some(parse_interval(p.need("RotationInterval")?).ok_or_else(|| ApiError::invalid("RotationInterval"))?)
            } else {
                None
            };
            kms.update_rotation(ctx, p.need("KeyId")?, secs).await?;
            json!({})
        }
        "CreateKeyVersion" => {
            let cmk = kms.create_key_version(ctx, p.need("KeyId")?).await?;
            let versions = kms.versions(&cmk).await?;
            let (id, created) = versions.last().cloned().unwrap_or_default();
            json!({ "KeyVersion": { "KeyId": cmk.key_id, "KeyVersionId": id, "CreationDate": iso(created) } })
        }
        "ListKeyVersions" => {
            let cmk = kms.resolve(ctx, p.need("KeyId")?).await?;
            let (n, size) = page(p)?;
            let versions = kms.versions(&cmk).await?;
            kms.meter(ctx, &cmk.key_id, action).await?;
            let list: Vec<Value> = paged(&versions, n, size)
                .iter()
                .map(|(id, created)| json!({ "KeyId": cmk.key_id, "KeyVersionId": id, "CreationDate": iso(*created) }))
                .collect();
            json!({ "KeyVersions": { "KeyVersion": list }, "TotalCount": versions.len(), "PageNumber": n, "PageSize": size })
        }
        "DescribeKeyVersion" => {
            let cmk = kms.resolve(ctx, p.need("KeyId")?).await?;
            let wanted = p.need("KeyVersionId")?;
            let versions = kms.versions(&cmk).await?;
            let (id, created) =
                versions.into_iter().find(|(id, _)| id == wanted).ok_or(KmsError::KeyVersionNotFound)?;
            kms.meter(ctx, &cmk.key_id, action).await?;
            json!({ "KeyVersion": { "KeyId": cmk.key_id, "KeyVersionId": id, "CreationDate": iso(created) } })
        }
        "CreateAlias" | "UpdateAlias" => {
            kms.put_alias(ctx, p.need("AliasName")?, p.need("KeyId")?, action == "UpdateAlias").await?;
            json!({})
        }
        "DeleteAlias" => {
            kms.delete_alias(ctx, p.need("AliasName")?).await?;
            json!({})
        }
        "ListAliases" | "ListAliasesByKeyId" => {
            let key_id = if action == "ListAliasesByKeyId" {
                Some(kms.resolve(ctx, p.need("KeyId")?).await?.key_id)
            } else {
                None
            };
            let (n, size) = page(p)?;
            let aliases = kms.list_aliases(ctx, key_id.as_deref()).await?;
            let list: Vec<Value> = paged(&aliases, n, size)
                .iter()
                .map(|(alias, key)| {
                    json!({ "AliasName": alias, "KeyId": key, "AliasArn": format!("acs:kms:{}:{}:{alias}", ctx.region, ctx.account) })
                })
                .collect();
            json!({ "Aliases": { "Alias": list }, "TotalCount": aliases.len(), "PageNumber": n, "PageSize": size })
        }
        "GenerateDataKey" | "GenerateDataKeyWithoutPlaintext" => {
            let bytes =
                match (p.get("NumberOfBytes").filter(|v| !v.is_empty()), p.get("KeySpec").filter(|v| !v.is_empty())) {
                    (Some(n), _) => n.parse().map_err(|_| ApiError::invalid("NumberOfBytes"))?,
                    (None, Some("AES_256")) | (None, None) => 32,
                    (None, Some("AES_128")) => 16,
                    (None, Some(_)) => return Err(ApiError::invalid("KeySpec")),
                };
            let g = kms.generate_data_key(ctx, p.need("KeyId")?, bytes, context, action).await?;
            let mut v =
                json!({ "KeyId": g.key_id, "KeyVersionId": g.version_id, "CiphertextBlob": B64.encode(&g.blob) });
            if action == "GenerateDataKey" {
                v["Plaintext"] = json!(B64.encode(&g.plaintext));
            }
            v
        }
        "Encrypt" => {
            let plaintext = p.need("Plaintext")?;
            let (key_id, version_id, blob) = kms.encrypt(ctx, p.need("KeyId")?, plaintext, context).await?;
            json!({ "KeyId": key_id, "KeyVersionId": version_id, "CiphertextBlob": B64.encode(blob) })
        }
        "Decrypt" => {
            let blob = B64.decode(p.need("CiphertextBlob")?).map_err(|_| ApiError::invalid("CiphertextBlob"))?;
            let d = kms.decrypt(ctx, &blob, context).await?;
            json!({ "KeyId": d.key_id, "KeyVersionId": d.version_id, "Plaintext": d.plaintext.as_str() })
        }
        "ReEncrypt" => {
            let blob = B64.decode(p.need("CiphertextBlob")?).map_err(|_| ApiError::invalid("CiphertextBlob"))?;
            let d = kms.decrypt(ctx, &blob, p.get("SourceEncryptionContext")).await?;
            let (key_id, version_id, out) = kms
                .encrypt(ctx, p.need("DestinationKeyId")?, &d.plaintext, p.get("DestinationEncryptionContext"))
                .await?;
            json!({ "KeyId": key_id, "KeyVersionId": version_id, "CiphertextBlob": B64.encode(out),
                    "SourceKeyId": d.key_id, "SourceKeyVersionId": d.version_id })
        }
        "GetParametersForImport" => {
            let r = kms
                .get_parameters_for_import(
                    ctx,
                    p.need("KeyId")?,
                    p.need("WrappingKeySpec")?,
                    p.need("WrappingAlgorithm")?,
                )
                .await?;
            json!({ "KeyId": r.key_id, "ImportToken": r.token, "PublicKey": B64.encode(&r.public_key_der),
                    "TokenExpireTime": iso(r.expires) })
        }
        "ImportKeyMaterial" => {
            let material =
                B64.decode(p.need("EncryptedKeyMaterial")?).map_err(|_| ApiError::invalid("EncryptedKeyMaterial"))?;
            let expire = match p.get("KeyMaterialExpireUnix").filter(|v| !v.is_empty()) {
                None => None,
                Some(v) => Some(v.parse::<i64>().map_err(|_| ApiError::invalid("KeyMaterialExpireUnix"))?),
            };
            kms.import_key_material(ctx, p.need("KeyId")?, &material, p.need("ImportToken")?, expire).await?;
            json!({})
        }
        "DeleteKeyMaterial" => {
            kms.delete_key_material(ctx, p.need("KeyId")?).await?;
            json!({})
        }
        // Arca extension: the metering of the caller's account (billable calls).
        "DescribeKmsUsage" => {
            let usage = kms.usage(&ctx.account).await?;
            let total: u64 = usage.iter().map(|u| u.count).sum();
            let list: Vec<Value> =
                usage.iter().map(|u| json!({ "KeyId": u.key_id, "Action": u.action, "Count": u.count })).collect();
            json!({ "TotalCalls": total, "Usage": { "Entry": list } })
        }
        "DescribeRegions" => {
            json!({ "Regions": { "Region": [{ "RegionId": ctx.region }] } })
        }
        "" => return Err(ApiError::missing("Action")),
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "InvalidAction.NotFound",
                format!("Specified api {action} is not found."),
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_intervals() {
        assert_eq!(parse_interval("7d"), Some(604800));
        assert_eq!(parse_interval("604800s"), Some(604800));
        assert_eq!(parse_interval("168h"), Some(604800));
        assert_eq!(parse_interval("604800"), Some(604800));
        assert_eq!(parse_interval("x"), None);
        assert_eq!(parse_interval(""), None);
    }

    #[test]
    fn booleans_accept_python_spelling() {
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("false"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }
}
