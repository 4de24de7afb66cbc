//! KMS keys: list, create, enable/disable, rotate, rotation policy,
//! deletion (showing the buckets whose default names the key), BYOK import,
//! and usage (the billable call counts). Every action goes through the KMS
//! API's action layer as the signed-in identity.

use http::{Response, StatusCode};
use maud::html;
use serde_json::Value;

use crate::views::{csrf_field, field_error, page, q};
use crate::{Body, Console, Ctx, Form, error_page, html_response, redirect_notice};

/// Runs a KMS action as the signed-in identity; errors as `Code: message`.
pub(crate) async fn invoke(
    console: &Console,
    ctx: &Ctx,
    region: &str,
    action: &str,
    params: &[(&str, &str)],
) -> Result<Value, String> {
    let mut p: Vec<(String, String)> = params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    p.push(("Action".into(), action.into()));
    console
        .rpc
        .invoke(ctx.identity(), &ctx.caller.context, region, "2016-01-20", action, &p)
        .await
        .map_err(|e| format!("{}: {}", e.code, e.message))
}

fn region_of(console: &Console, query: &Form) -> String {
    let r = query.text("region");
    if console.regions.contains(&r) { r } else { console.regions.first().cloned().unwrap_or_default() }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

pub(crate) async fn list(console: &Console, ctx: &Ctx, query: &Form, error: Option<String>) -> Response<Body> {
    let region = region_of(console, query);
    let keys = invoke(console, ctx, &region, "ListKeys", &[("PageSize", "100")]).await;
    let aliases = invoke(console, ctx, &region, "ListAliases", &[("PageSize", "100")]).await.unwrap_or_default();
    let alias_of = |id: &str| -> Vec<String> {
        aliases["Aliases"]["Alias"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["KeyId"] == id)
            .map(|a| s(&a["AliasName"]).to_owned())
            .collect()
    };
    let mut rows = Vec::new();
    if let Ok(k) = &keys {
        for key in k["Keys"]["Key"].as_array().into_iter().flatten() {
            let id = s(&key["KeyId"]);
            let meta = invoke(console, ctx, &region, "DescribeKey", &[("KeyId", id)]).await.ok();
            rows.push((id.to_owned(), alias_of(id), meta.map(|m| m["KeyMetadata"].clone())));
        }
    }
    let usage = invoke(console, ctx, &region, "DescribeKmsUsage", &[]).await;
    let body = html! {
        form.inline method="get" action="/kms" {
            label for="kms-region" { "Region" }
            select id="kms-region" name="region" {
                @for r in console.regions.iter() { option value=(r) selected[*r == region] { (r) } }
            }
            button type="submit" { "Show" }
        }
        @match &keys {
            Err(e) => p.error role="alert" { "Keys cannot be listed: " (e) },
            Ok(_) => table id="keys" {
                thead { tr { th { "Key ID" } th { "Alias" } th { "Spec" } th { "State" } th { "Rotation" } th { "Region" } th { "Actions" } } }
                tbody {
                    @for (id, aliases, meta) in &rows {
                        tr data-key-id=(id) {
                            td { a href={"/kms/keys/" (id) "?region=" (q(&region))} { (id) } }
                            td { (aliases.join(", ")) }
                            @if let Some(m) = meta {
                                td { (s(&m["KeySpec"])) }
                                td.state { (s(&m["KeyState"])) }
                                td { (s(&m["AutomaticRotation"])) (m.get("RotationInterval").map(|v| format!(" ({})", s(v))).unwrap_or_default()) }
                            } @else {
                                td { "?" } td.state { "?" } td { "?" }
                            }
                            td { (region) }
                            td.actions {
                                @let state = meta.as_ref().map(|m| s(&m["KeyState"]).to_owned()).unwrap_or_default();
                                @if state == "Enabled" {
                                    (key_button(ctx, id, &region, "disable", "Disable"))
                                    (key_button(ctx, id, &region, "rotate", "Rotate now"))
                                } @else if state == "Disabled" {
                                    (key_button(ctx, id, &region, "enable", "Enable"))
                                }
                            }
                        }
                    }
                }
            },
        }
        (field_error("kms-error", error.as_deref()))
        section aria-labelledby="create-key-title" {
            h2 id="create-key-title" { "Create key" }
            form method="post" action={"/kms/keys?region=" (q(&region))} {
                (csrf_field(&ctx.session.csrf))
                label for="key-spec" { "Key spec" }
                select id="key-spec" name="spec" { option { "Aliyun_AES_256" } option { "Aliyun_SM4" } }
                label for="key-origin" { "Key material" }
                select id="key-origin" name="origin" {
                    option value="Aliyun_KMS" { "Generated by KMS" }
                    option value="EXTERNAL" { "External (import, BYOK)" }
                }
                label for="key-description" { "Description" }
                input id="key-description" name="description";
                label for="key-alias" { "Alias (alias/…)" }
                input id="key-alias" name="alias" placeholder="alias/my-key";
                label for="key-rotation" { "Automatic rotation every (days, empty for none)" }
                input id="key-rotation" name="rotation_days" inputmode="numeric";
                button type="submit" id="create-key" { "Create key" }
            }
        }
        section aria-labelledby="usage-title" {
            h2 id="usage-title" { "Usage (billable KMS calls)" }
            @match &usage {
                Err(e) => p.error { "Usage cannot be shown: " (e) },
                Ok(u) => {
                    p { "Total calls: " strong id="usage-total" { (u["TotalCalls"]) } }
                    table id="usage" {
                        thead { tr { th { "Key" } th { "Action" } th { "Calls" } } }
                        tbody {
                            @for e in u["Usage"]["Entry"].as_array().into_iter().flatten() {
                                tr { td { (s(&e["KeyId"])) } td { (s(&e["Action"])) } td { (e["Count"]) } }
                            }
                        }
                    }
                }
            }
        }
    };
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    html_response(status, page(Some(&ctx.frame("kms")), "KMS keys", query.get("notice"), body))
}

fn key_button(ctx: &Ctx, id: &str, region: &str, op: &str, label: &str) -> maud::Markup {
    html! {
        form.inline method="post" action={"/kms/keys/" (id) "/" (op) "?region=" (q(region))} {
            (csrf_field(&ctx.session.csrf))
            button type="submit" data-op=(op) { (label) }
        }
    }
}

pub(crate) async fn create(console: &Console, ctx: &Ctx, query: &Form, form: Form) -> Response<Body> {
    let region = region_of(console, query);
    let mut params = vec![("KeySpec", form.text("spec")), ("Origin", form.text("origin"))];
    params.push(("Description", form.text("description")));
    let days = form.text("rotation_days");
    if !days.is_empty() {
        match days.parse::<u64>() {
            Ok(d) => {
                params.push(("EnableAutomaticRotation", "true".into()));
                params.push(("RotationInterval", format!("{}s", d * 86400)));
            }
            Err(_) => return list(console, ctx, query, Some("Rotation must be a number of days.".into())).await,
        }
    }
    let borrowed: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let created = match invoke(console, ctx, &region, "CreateKey", &borrowed).await {
        Ok(v) => v,
        Err(e) => return list(console, ctx, query, Some(e)).await,
    };
    let id = s(&created["KeyMetadata"]["KeyId"]).to_owned();
    let alias = form.text("alias");
    if !alias.is_empty()
        && let Err(e) = invoke(console, ctx, &region, "CreateAlias", &[("AliasName", &alias), ("KeyId", &id)]).await
    {
        return list(console, ctx, query, Some(format!("Key {id} created, but the alias was refused: {e}"))).await;
    }
    redirect_notice(&format!("/kms?region={}", q(&region)), &format!("Key {id} created."))
}

/// Buckets whose default encryption names `key_id` (or one of its aliases),
/// among those the user may list; `None` when the user may not list buckets.
async fn buckets_naming(console: &Console, ctx: &Ctx, key_id: &str, aliases: &[String]) -> Option<Vec<String>> {
    let (all, _) = console.svc.list_buckets(&ctx.caller, "", "", 1000).await.ok()?;
    let naming =
        all.into_iter()
            .filter(|b| {
                b.encryption.as_ref().and_then(|r| r.kms_key_id.as_deref()).is_some_and(|k| {
                    k == key_id || k.ends_with(&format!("key/{key_id}")) || aliases.iter().any(|a| a == k)
                })
            })
            .map(|b| b.name)
            .collect();
    Some(naming)
}

pub(crate) async fn key(console: &Console, ctx: &Ctx, id: &str, query: &Form, error: Option<String>) -> Response<Body> {
    let region = region_of(console, query);
    let meta = match invoke(console, ctx, &region, "DescribeKey", &[("KeyId", id)]).await {
        Ok(v) => v["KeyMetadata"].clone(),
        // After a refused action, its own reason matters more than the read's.
        Err(e) => return error_page(ctx, "kms", StatusCode::FORBIDDEN, "KMS key", error.as_deref().unwrap_or(&e)),
    };
    let aliases: Vec<String> = invoke(console, ctx, &region, "ListAliasesByKeyId", &[("KeyId", id)])
        .await
        .map(|v| {
            v["Aliases"]["Alias"].as_array().into_iter().flatten().map(|a| s(&a["AliasName"]).to_owned()).collect()
        })
        .unwrap_or_default();
    let versions = invoke(console, ctx, &region, "ListKeyVersions", &[("KeyId", id), ("PageSize", "100")]).await;
    let naming_listed = buckets_naming(console, ctx, id, &aliases).await;
    let naming = naming_listed.clone().unwrap_or_default();
    let state = s(&meta["KeyState"]).to_owned();
    let body = html! {
        p { a href={"/kms?region=" (q(&region))} { "← All keys" } }
        (field_error("key-error", error.as_deref()))
        dl.details id="key-details" {
            dt { "Key ID" } dd { (id) }
            dt { "ARN" } dd { (s(&meta["Arn"])) }
            dt { "Aliases" } dd { (aliases.join(", ")) }
            dt { "Spec" } dd { (s(&meta["KeySpec"])) }
            dt { "Origin" } dd { (s(&meta["Origin"])) }
            dt { "State" } dd id="key-state" { (state) }
            dt { "Description" } dd { (s(&meta["Description"])) }
            dt { "Primary version" } dd { (s(&meta["PrimaryKeyVersion"])) }
            dt { "Automatic rotation" } dd { (s(&meta["AutomaticRotation"])) }
            @if !s(&meta["DeleteDate"]).is_empty() { dt { "Deletion date" } dd { (s(&meta["DeleteDate"])) } }
            dt { "Buckets whose default encryption names this key" }
            dd id="key-buckets" {
                @match &naming_listed {
                    None => "(not shown: you may not list buckets)",
                    Some(n) if n.is_empty() => "none",
                    Some(n) => (n.join(", ")),
                }
            }
        }
        @if let Ok(v) = &versions {
            h2 { "Versions" }
            ul { @for kv in v["KeyVersions"]["KeyVersion"].as_array().into_iter().flatten() { li { (s(&kv["KeyVersionId"])) " · " (s(&kv["CreationDate"])) } } }
        }
        div.actions {
            @if state == "Enabled" { (key_button(ctx, id, &region, "disable", "Disable")) (key_button(ctx, id, &region, "rotate", "Rotate now")) }
            @if state == "Disabled" { (key_button(ctx, id, &region, "enable", "Enable")) }
            @if state == "PendingDeletion" { (key_button(ctx, id, &region, "cancel-deletion", "Cancel deletion")) }
        }
        section aria-labelledby="rotation-title" {
            h2 id="rotation-title" { "Rotation policy" }
            form method="post" action={"/kms/keys/" (id) "/rotation?region=" (q(&region))} {
                (csrf_field(&ctx.session.csrf))
                label for="rotation-days" { "Rotate every (days; empty turns automatic rotation off)" }
                input id="rotation-days" name="rotation_days" inputmode="numeric";
                button type="submit" { "Save rotation policy" }
            }
        }
        @if state != "PendingDeletion" {
            section aria-labelledby="deletion-title" {
                h2 id="deletion-title" { "Schedule deletion" }
                @if !naming.is_empty() {
                    p.error role="alert" { "The default encryption of these buckets names this key: " (naming.join(", ")) ". Their new uploads fail once it is deleted." }
                }
                form method="post" action={"/kms/keys/" (id) "/schedule-deletion?region=" (q(&region))} {
                    (csrf_field(&ctx.session.csrf))
                    label for="deletion-days" { "Waiting period (7–366 days)" }
                    input id="deletion-days" name="days" value="30" inputmode="numeric";
                    @if !naming.is_empty() {
                        label.radio { input type="checkbox" name="force" value="true"; " Delete even though buckets name it" }
                    }
                    button.danger type="submit" id="schedule-deletion" { "Schedule deletion" }
                }
            }
        }
        @if s(&meta["Origin"]) == "EXTERNAL" {
            section aria-labelledby="import-title" {
                h2 id="import-title" { "Import key material (BYOK)" }
                form method="post" action={"/kms/keys/" (id) "/import-parameters?region=" (q(&region))} {
                    (csrf_field(&ctx.session.csrf))
                    button type="submit" id="get-wrapping-key" { "Get wrapping key and import token" }
                }
                @if let (Some(pk), Some(token)) = (query.get("public_key"), query.get("token")) {
                    label for="wrapping-key" { "Wrapping public key (RSA-2048, DER, base64; wrap with RSAES_OAEP_SHA_256)" }
                    textarea id="wrapping-key" readonly rows="4" { (pk) }
                    label for="import-token-shown" { "Import token (valid 24 h)" }
                    textarea id="import-token-shown" readonly rows="3" { (token) }
                }
                form method="post" action={"/kms/keys/" (id) "/import?region=" (q(&region))} {
                    (csrf_field(&ctx.session.csrf))
                    label for="import-material" { "Encrypted key material (base64)" }
                    textarea id="import-material" name="material" rows="4" required {}
                    label for="import-token" { "Import token" }
                    textarea id="import-token" name="token" rows="3" required { (query.get("token").unwrap_or("")) }
                    button type="submit" id="import-material-submit" { "Import" }
                }
            }
        }
    };
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    html_response(status, page(Some(&ctx.frame("kms")), &format!("Key {id}"), query.get("notice"), body))
}

pub(crate) async fn act(console: &Console, ctx: &Ctx, id: &str, op: &str, query: &Form, form: Form) -> Response<Body> {
    let region = region_of(console, query);
    let back = format!("/kms/keys/{id}?region={}", q(&region));
    let days;
    let token_wrapped;
    let result = match op {
        "enable" => invoke(console, ctx, &region, "EnableKey", &[("KeyId", id)]).await,
        "disable" => invoke(console, ctx, &region, "DisableKey", &[("KeyId", id)]).await,
        "rotate" => invoke(console, ctx, &region, "CreateKeyVersion", &[("KeyId", id)]).await,
        "cancel-deletion" => invoke(console, ctx, &region, "CancelKeyDeletion", &[("KeyId", id)]).await,
        "rotation" => {
            days = form.text("rotation_days");
            if days.is_empty() {
                invoke(
                    console,
                    ctx,
                    &region,
                    "UpdateRotationPolicy",
                    &[("KeyId", id), ("EnableAutomaticRotation", "false")],
                )
                .await
            } else {
                let interval = match days.parse::<u64>() {
                    Ok(d) => format!("{}s", d * 86400),
                    Err(_) => {
                        return key(console, ctx, id, query, Some("Rotation must be a number of days.".into())).await;
                    }
                };
                invoke(
                    console,
                    ctx,
                    &region,
                    "UpdateRotationPolicy",
                    &[("KeyId", id), ("EnableAutomaticRotation", "true"), ("RotationInterval", &interval)],
                )
                .await
            }
        }
        "schedule-deletion" => {
            days = form.text("days");
            let force = if form.get("force") == Some("true") { "true" } else { "false" };
            invoke(
                console,
                ctx,
                &region,
                "ScheduleKeyDeletion",
                &[("KeyId", id), ("PendingWindowInDays", &days), ("Force", force)],
            )
            .await
        }
        "import-parameters" => {
            match invoke(
                console,
                ctx,
                &region,
                "GetParametersForImport",
                &[("KeyId", id), ("WrappingKeySpec", "RSA_2048"), ("WrappingAlgorithm", "RSAES_OAEP_SHA_256")],
            )
            .await
            {
                Ok(v) => {
                    let to = format!("{back}&public_key={}&token={}", q(s(&v["PublicKey"])), q(s(&v["ImportToken"])));
                    return crate::redirect(&to);
                }
                Err(e) => Err(e),
            }
        }
        "import" => {
            token_wrapped = form.text("token");
            let material = form.text("material");
            invoke(
                console,
                ctx,
                &region,
                "ImportKeyMaterial",
                &[("KeyId", id), ("EncryptedKeyMaterial", &material), ("ImportToken", &token_wrapped)],
            )
            .await
        }
        _ => return crate::plain(StatusCode::NOT_FOUND, "No such key action."),
    };
    match result {
        Ok(_) => redirect_notice(&back, "Done."),
        Err(e) => key(console, ctx, id, query, Some(e)).await,
    }
}
