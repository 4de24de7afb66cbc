//! Buckets: list, Create Bucket (with server encryption), Basic Settings,
//! objects (browse, upload with progress, download, delete, details).

use arca_core::{
    BucketInfo, CoreError, CreateBucket, EncryptionRule, ListParams, ObjectAttrs, Op, PutObject, SseRequest,
};
use bytes::Bytes;
use futures_util::StreamExt;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, BodyStream, StreamBody};
use hyper::body::Incoming;
use maud::{Markup, html};

use crate::views::{csrf_field, field_error, page, q, size, time};
use crate::{Body, Console, Ctx, Form, error_page, full, html_response, redirect_notice};

const SM4_SUITE_ID: u8 = arca_core::sse::SM4_SUITE_ID;

/// An enabled CMK the user may pick, with its region.
pub(crate) struct KeyChoice {
    pub id: String,
    pub region: String,
    pub label: String,
}

/// The account's enabled CMKs in every region, as far as the user may list
/// them (`Err` carries the refusal, shown next to the key choice).
pub(crate) async fn enabled_keys(console: &Console, ctx: &Ctx) -> Result<Vec<KeyChoice>, String> {
    let mut out = Vec::new();
    for region in console.regions.iter() {
        let listed = crate::kms::invoke(console, ctx, region, "ListKeys", &[("PageSize", "100")]).await?;
        for k in listed["Keys"]["Key"].as_array().into_iter().flatten() {
            let id = k["KeyId"].as_str().unwrap_or_default();
            let Ok(d) = crate::kms::invoke(console, ctx, region, "DescribeKey", &[("KeyId", id)]).await else {
                continue;
            };
            let m = &d["KeyMetadata"];
            // The service's own alias/acs/oss is offered separately.
            if m["KeyState"] != "Enabled" || m["CreatorType"] == "Service" {
                continue;
            }
            let description = m["Description"].as_str().unwrap_or_default();
            let label = if description.is_empty() { id.to_owned() } else { format!("{id} ({description})") };
            out.push(KeyChoice { id: id.to_owned(), region: region.clone(), label: format!("{label} · {region}") });
        }
    }
    Ok(out)
}

fn rule_text(rule: Option<&EncryptionRule>) -> String {
    match rule {
        None => "None".into(),
        Some(r) if r.algorithm == "KMS" => {
            let key = r.kms_key_id.as_deref().unwrap_or("alias/acs/oss");
            let data = if r.kms_data_encryption.as_deref() == Some("SM4") { ", data SM4" } else { "" };
            format!("KMS ({key}{data})")
        }
        Some(r) => r.algorithm.clone(),
    }
}

/// The Server Encryption choice (radios, CMK select, SM4 data option);
/// `current` preselects.
fn encryption_fields(
    prefix: &str,
    current: Option<&EncryptionRule>,
    keys: &Result<Vec<KeyChoice>, String>,
    region: Option<&str>,
) -> Markup {
    let alg = current.map(|r| r.algorithm.as_str()).unwrap_or("None");
    let key = current.and_then(|r| r.kms_key_id.as_deref()).unwrap_or("");
    let sm4 = current.is_some_and(|r| r.kms_data_encryption.as_deref() == Some("SM4"));
    html! {
        fieldset.sse {
            legend { "Server Encryption" }
            @for (value, label) in [("None", "None"), ("AES256", "AES256 (service key)"), ("SM4", "SM4 (service key)"), ("KMS", "KMS")] {
                label.radio {
                    input type="radio" name="sse" value=(value) id={(prefix) "-sse-" (value)} checked[alg == value];
                    " " (label)
                }
            }
            div.kms-options {
                label for={(prefix) "-kms-key"} { "KMS key" }
                select id={(prefix) "-kms-key"} name="kms_key" {
                    option value="" selected[key.is_empty()] { "alias/acs/oss (default key)" }
                    @if let Ok(keys) = keys {
                        @for k in keys.iter().filter(|k| region.is_none_or(|r| r == k.region)) {
                            option value=(k.id) data-region=(k.region) selected[key == k.id] { (k.label) }
                        }
                    }
                }
                @if let Err(e) = keys {
                    p.hint { "Your CMKs cannot be listed: " (e) }
                }
                label.radio {
                    input type="checkbox" name="kms_data_sm4" value="on" id={(prefix) "-kms-sm4"} checked[sm4];
                    " KMS data encryption: SM4"
                }
            }
        }
    }
}

/// The rule a Server Encryption form asks for.
fn rule_from(form: &Form) -> Option<EncryptionRule> {
    match form.get("sse").unwrap_or("None") {
        "None" => None,
        alg => Some(EncryptionRule {
            algorithm: alg.to_owned(),
            kms_key_id: Some(form.text("kms_key")).filter(|k| alg == "KMS" && !k.is_empty()),
            kms_data_encryption: (alg == "KMS" && form.get("kms_data_sm4") == Some("on")).then(|| "SM4".to_owned()),
        }),
    }
}

/// Errors of the Create Bucket dialog, by field.
#[derive(Default)]
pub(crate) struct CreateErrors {
    name: Option<String>,
    encryption: Option<String>,
    general: Option<String>,
    values: Option<Form>,
}

pub(crate) async fn list(console: &Console, ctx: &Ctx, query: &Form, errors: Option<CreateErrors>) -> Response<Body> {
    let listed = console.svc.list_buckets(&ctx.caller, "", "", 1000).await;
    let keys = enabled_keys(console, ctx).await;
    let open = errors.is_some() || query.get("create").is_some();
    let errors = errors.unwrap_or_default();
    let v = |name: &str, default: &str| {
        errors.values.as_ref().and_then(|f| f.get(name)).map(str::to_owned).unwrap_or_else(|| default.to_owned())
    };
    let region = v("region", console.regions.first().map(String::as_str).unwrap_or(""));
    let status = if errors.name.is_some() || errors.encryption.is_some() || errors.general.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let body = html! {
        p { a.button href="/buckets?create=1" id="create-bucket-open" { "Create Bucket" } }
        @match &listed {
            Err(e) => p.error role="alert" { "Buckets cannot be listed: " (e) },
            Ok((buckets, _)) if buckets.is_empty() => p { "No buckets yet." },
            Ok((buckets, _)) => table id="buckets" {
                thead { tr { th { "Name" } th { "Region" } th { "Created" } th { "Default encryption" } } }
                tbody {
                    @for b in buckets {
                        tr {
                            td { a href={"/buckets/" (q(&b.name))} { (b.name) } }
                            td { (b.region) }
                            td { (time(b.created)) }
                            td.encryption { (rule_text(b.encryption.as_ref())) }
                        }
                    }
                }
            },
        }
        dialog id="create-bucket" aria-labelledby="create-bucket-title" open[open] {
            h2 id="create-bucket-title" { "Create Bucket" }
            (field_error("create-error", errors.general.as_deref()))
            form method="post" action="/buckets" {
                (csrf_field(&ctx.session.csrf))
                label for="bucket-name" { "Bucket name" }
                input id="bucket-name" name="name" required value=(v("name", ""))
                    pattern="[a-z0-9][a-z0-9-]{1,61}[a-z0-9]" aria-describedby="bucket-name-hint";
                p.hint id="bucket-name-hint" { "3–63 characters: lower-case letters, digits and hyphens." }
                (field_error("bucket-name-error", errors.name.as_deref()))
                label for="bucket-region" { "Region" }
                select id="bucket-region" name="region" {
                    @for r in console.regions.iter() { option value=(r) selected[*r == region] { (r) } }
                }
                label for="bucket-acl" { "ACL" }
                select id="bucket-acl" name="acl" {
                    @for a in arca_core::BUCKET_ACLS { option value=(a) selected[v("acl", "private") == a] { (a) } }
                }
                label for="bucket-class" { "Storage class" }
                select id="bucket-class" name="storage_class" {
                    @for c in arca_core::STORAGE_CLASSES { option value=(c) selected[v("storage_class", "Standard") == c] { (c) } }
                }
                (encryption_fields("create", errors.values.as_ref().and_then(rule_from).as_ref(), &keys, None))
                (field_error("create-encryption-error", errors.encryption.as_deref()))
                div.actions {
                    button type="submit" id="create-bucket-submit" { "Create" }
                    a href="/buckets" { "Cancel" }
                }
            }
        }
    };
    html_response(status, page(Some(&ctx.frame("buckets")), "Buckets", query.get("notice"), body))
}

pub(crate) async fn create(console: &Console, ctx: &Ctx, form: Form) -> Response<Body> {
    let spec = CreateBucket {
        name: form.text("name"),
        region: form.text("region"),
        acl: form.get("acl").unwrap_or("private").to_owned(),
        storage_class: form.get("storage_class").unwrap_or("Standard").to_owned(),
        redundancy: "LRS".into(),
        encryption: rule_from(&form),
    };
    if !console.regions.contains(&spec.region) {
        let errors = CreateErrors {
            general: Some("Choose one of the listed regions.".into()),
            values: Some(form),
            ..Default::default()
        };
        return list(console, ctx, &Form(Vec::new()), Some(errors)).await;
    }
    let name = spec.name.clone();
    match console.svc.create_bucket(&ctx.caller, spec).await {
        Ok(_) => redirect_notice(&format!("/buckets/{}", q(&name)), &format!("Bucket {name} created.")),
        Err(e) => {
            let message = e.to_string();
            let mut errors = CreateErrors { values: Some(form), ..Default::default() };
            match e {
                CoreError::InvalidBucketName | CoreError::BucketAlreadyExists => errors.name = Some(message),
                CoreError::InvalidEncryptionAlgorithm(_)
                | CoreError::KmsKeyNotFound
                | CoreError::KmsKeyState(_)
                | CoreError::KmsServiceNotEnabled => errors.encryption = Some(message),
                CoreError::AccessDenied(m) if m == arca_core::KMS_FORBIDDEN => {
                    errors.encryption = Some(format!("Access denied: {m}"))
                }
                CoreError::AccessDenied(m) => errors.general = Some(format!("Access denied: {m}")),
                _ => errors.general = Some(message),
            }
            list(console, ctx, &Form(Vec::new()), Some(errors)).await
        }
    }
}

/// The bucket's region (to address it), without authorizing anything yet.
async fn region_of(console: &Console, bucket: &str) -> Option<String> {
    console.svc.meta().get_bucket(bucket).await.ok().flatten().map(|b| b.region)
}

fn tabs(bucket: &str, current: &str) -> Markup {
    html! {
        nav.tabs aria-label="Bucket" {
            a href={"/buckets/" (q(bucket))} aria-current=[(current == "objects").then_some("page")] { "Objects" }
            a href={"/buckets/" (q(bucket)) "/settings"} aria-current=[(current == "settings").then_some("page")] id="basic-settings" { "Basic Settings" }
        }
    }
}

fn no_bucket(ctx: &Ctx) -> Response<Body> {
    error_page(ctx, "buckets", StatusCode::NOT_FOUND, "No such bucket", "The bucket does not exist.")
}

pub(crate) async fn objects(console: &Console, ctx: &Ctx, bucket: &str, query: &Form) -> Response<Body> {
    let Some(region) = region_of(console, bucket).await else { return no_bucket(ctx) };
    let prefix = query.text("prefix");
    let params = ListParams { prefix: prefix.clone(), delimiter: "/".into(), after: None, max_keys: 1000 };
    let listing = console.svc.list_objects(&ctx.caller, &region, bucket, &params).await;
    let keys = enabled_keys(console, ctx).await;
    let crumbs: Vec<(String, String)> = {
        let mut acc = String::new();
        prefix
            .split_terminator('/')
            .map(|part| {
                acc.push_str(part);
                acc.push('/');
                (part.to_owned(), acc.clone())
            })
            .collect()
    };
    let body = html! {
        (tabs(bucket, "objects"))
        nav.crumbs aria-label="Folder" {
            a href={"/buckets/" (q(bucket))} { (bucket) }
            @for (name, p) in &crumbs { " / " a href={"/buckets/" (q(bucket)) "?prefix=" (q(p))} { (name) } }
        }
        @match &listing {
            Err(e) => p.error role="alert" { "Objects cannot be listed: " (e) },
            Ok(l) => table id="objects" {
                thead { tr { th { "Name" } th { "Size" } th { "Last modified" } th { "Encryption" } th { "Actions" } } }
                tbody {
                    @for p in &l.prefixes {
                        tr.folder {
                            td { a href={"/buckets/" (q(bucket)) "?prefix=" (q(p))} { (p.strip_prefix(prefix.as_str()).unwrap_or(p)) } }
                            td {} td {} td {} td {}
                        }
                    }
                    @for o in &l.objects {
                        tr data-key=(o.key) {
                            td { a href={"/buckets/" (q(bucket)) "/object?key=" (q(&o.key))} { (o.key.strip_prefix(prefix.as_str()).unwrap_or(&o.key)) } }
                            td { (size(o.size)) }
                            td { (time(o.last_modified)) }
                            td { (o.encryption.as_ref().map(|e| e.algorithm.as_str()).unwrap_or("None")) }
                            td.actions {
                                // No `download` attribute: a refusal must show as a page, not a failed file.
                                a href={"/buckets/" (q(bucket)) "/download?key=" (q(&o.key))} { "Download" }
                                form.inline method="post" action={"/buckets/" (q(bucket)) "/delete-object"} {
                                    (csrf_field(&ctx.session.csrf))
                                    input type="hidden" name="key" value=(o.key);
                                    button type="submit" { "Delete" }
                                }
                            }
                        }
                    }
                }
            },
        }
        section aria-labelledby="upload-title" {
            h2 id="upload-title" { "Upload" }
            form id="upload-form" data-bucket=(bucket) data-prefix=(prefix) data-csrf=(ctx.session.csrf) {
                label for="upload-file" { "File" }
                input type="file" id="upload-file" name="file" required;
                label for="upload-sse" { "Encryption" }
                select id="upload-sse" name="sse" {
                    option value="" { "Bucket default" }
                    option value="AES256" { "AES256" }
                    option value="SM4" { "SM4" }
                    option value="KMS" { "KMS (alias/acs/oss)" }
                    @if let Ok(keys) = &keys {
                        @for k in keys.iter().filter(|k| k.region == region) {
                            option value={"KMS:" (k.id)} { "KMS with " (k.label) }
                        }
                    }
                }
                button type="submit" id="upload-submit" { "Upload" }
                progress id="upload-progress" max="100" value="0" hidden {}
                p id="upload-status" role="status" aria-live="polite" {}
            }
        }
    };
    html_response(StatusCode::OK, page(Some(&ctx.frame("buckets")), bucket, query.get("notice"), body))
}

pub(crate) async fn object(console: &Console, ctx: &Ctx, bucket: &str, query: &Form) -> Response<Body> {
    let Some(region) = region_of(console, bucket).await else { return no_bucket(ctx) };
    let key = query.raw("key");
    let rec = match console.svc.head_object(&ctx.caller, &region, bucket, &key).await {
        Ok(r) => r,
        Err(e) => return error_page(ctx, "buckets", StatusCode::FORBIDDEN, "Object", &e.to_string()),
    };
    let enc = rec.encryption.as_ref();
    let data_alg = enc.map(|e| if e.suite == SM4_SUITE_ID { "SM4" } else { "AES256" });
    let body = html! {
        (tabs(bucket, "objects"))
        dl.details id="object-details" {
            dt { "Key" } dd { (rec.key) }
            dt { "Size" } dd id="detail-size" { (rec.size) " bytes (" (size(rec.size)) ")" }
            dt { "ETag" } dd id="detail-etag" { (rec.etag) }
            dt { "CRC-64" } dd id="detail-crc64" { (rec.crc64) }
            dt { "Last modified" } dd { (time(rec.last_modified)) }
            dt { "Content type" } dd { (rec.attrs.content_type) }
            dt { "Encryption" } dd id="detail-encryption" { (enc.map(|e| e.algorithm.as_str()).unwrap_or("None")) }
            @if let Some(e) = enc {
                dt { "Data algorithm" } dd id="detail-data-algorithm" { (data_alg.unwrap_or_default()) }
                @if e.algorithm == "KMS" {
                    dt { "CMK" } dd id="detail-cmk" { (e.key_id) }
                    dt { "Key version" } dd id="detail-key-version" { (e.key_version) }
                    @if let Some(id) = kms_version_id(&e.wrapped_key) {
                        dt { "Key version id" } dd id="detail-key-version-id" { (id) }
                    }
                } @else {
                    dt { "Service key version" } dd id="detail-key-version" { (e.key_version) }
                }
            }
        }
        p {
            a.button href={"/buckets/" (q(bucket)) "/download?key=" (q(&rec.key))} id="download" { "Download" }
        }
    };
    html_response(StatusCode::OK, page(Some(&ctx.frame("buckets")), &rec.key, None, body))
}

/// The CMK version id a KMS-wrapped data key names (its first 36 bytes).
fn kms_version_id(wrapped_hex: &str) -> Option<String> {
    let head = wrapped_hex.get(..72)?;
    let bytes: Option<Vec<u8>> = (0..36).map(|i| u8::from_str_radix(head.get(i * 2..i * 2 + 2)?, 16).ok()).collect();
    String::from_utf8(bytes?).ok()
}

pub(crate) async fn download(console: &Console, ctx: &Ctx, bucket: &str, query: &Form) -> Response<Body> {
    let Some(region) = region_of(console, bucket).await else { return no_bucket(ctx) };
    let key = query.raw("key");
    let refused = |e: CoreError| {
        error_page(
            ctx,
            "buckets",
            StatusCode::FORBIDDEN,
            "Download refused",
            &format!("{key} cannot be downloaded: {e}"),
        )
    };
    let (bucket_record, rec) = match console.svc.locate_object(&ctx.caller, &region, bucket, &key).await {
        Ok(r) => r,
        Err(e) => return refused(e),
    };
    let stream = match console.svc.read_object(&ctx.caller, &bucket_record, &rec, 0, rec.size).await {
        Ok(s) => s,
        Err(e) => return refused(e),
    };
    let disposition = attachment(key.rsplit('/').next().unwrap_or("download"));
    let body = StreamBody::new(stream.map(|r| r.map(hyper::body::Frame::data)));
    Response::builder()
        .header(
            "content-type",
            if rec.attrs.content_type.is_empty() { "application/octet-stream" } else { &rec.attrs.content_type },
        )
        .header("content-length", rec.size)
        .header("content-disposition", disposition)
        .header("cache-control", "no-store")
        .body(BodyExt::boxed_unsync(body))
        .expect("valid response")
}

/// `Content-Disposition` for a download: an ASCII fallback name (anything
/// unsafe in a header replaced) and the exact UTF-8 name per RFC 5987.
fn attachment(name: &str) -> String {
    let fallback: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{}", arca_wire::encode(name, false))
}

pub(crate) async fn delete_object(console: &Console, ctx: &Ctx, bucket: &str, form: Form) -> Response<Body> {
    let Some(region) = region_of(console, bucket).await else { return no_bucket(ctx) };
    let key = form.raw("key");
    let back = format!(
        "/buckets/{}?prefix={}",
        q(bucket),
        q(key.rsplit_once('/').map(|(p, _)| p).map(|p| format!("{p}/")).as_deref().unwrap_or(""))
    );
    match console.svc.delete_object(&ctx.caller, &region, bucket, &key).await {
        Ok(()) => redirect_notice(&back, &format!("Deleted {key}.")),
        Err(e) => error_page(ctx, "buckets", StatusCode::FORBIDDEN, "Delete refused", &e.to_string()),
    }
}

pub(crate) async fn delete(console: &Console, ctx: &Ctx, bucket: &str) -> Response<Body> {
    let Some(region) = region_of(console, bucket).await else { return no_bucket(ctx) };
    match console.svc.delete_bucket(&ctx.caller, &region, bucket).await {
        Ok(()) => redirect_notice("/buckets", &format!("Bucket {bucket} deleted.")),
        Err(e) => {
            let status =
                if matches!(e, CoreError::AccessDenied(_)) { StatusCode::FORBIDDEN } else { StatusCode::CONFLICT };
            error_page(ctx, "buckets", status, "Bucket not deleted", &e.to_string())
        }
    }
}

pub(crate) async fn settings(
    console: &Console,
    ctx: &Ctx,
    bucket: &str,
    query: &Form,
    error: Option<(String, Form)>,
) -> Response<Body> {
    let Some(region) = region_of(console, bucket).await else { return no_bucket(ctx) };
    let info: Result<BucketInfo, CoreError> =
        console.svc.bucket(&ctx.caller, &region, bucket, Op::bucket("oss:GetBucketInfo")).await;
    let b = match info {
        Ok(b) => b,
        Err(e) => {
            // After a refused save, the save's own reason matters more than the read's.
            let message = error.as_ref().map(|(m, _)| m.clone()).unwrap_or_else(|| e.to_string());
            return error_page(ctx, "buckets", StatusCode::FORBIDDEN, "Basic Settings", &message);
        }
    };
    let keys = enabled_keys(console, ctx).await;
    let (message, submitted) = match error {
        Some((m, f)) => (Some(m), Some(f)),
        None => (None, None),
    };
    let shown_rule = submitted.as_ref().map(rule_from).unwrap_or_else(|| b.encryption.clone());
    let status = if message.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let body = html! {
        (tabs(bucket, "settings"))
        section aria-labelledby="sse-title" id="server-encryption" {
            h2 id="sse-title" { "Server Encryption" }
            dl.details {
                dt { "Default encryption" } dd id="current-encryption" { (rule_text(b.encryption.as_ref())) }
            }
            details id="configure-encryption" open[message.is_some() || query.get("configure").is_some()] {
                summary { "Configure" }
                form method="post" action={"/buckets/" (q(bucket)) "/encryption"} {
                    (csrf_field(&ctx.session.csrf))
                    (encryption_fields("settings", shown_rule.as_ref(), &keys, Some(&b.region)))
                    p.notice { "Changing the default encryption applies to objects uploaded from now on; existing objects keep the encryption they were written with." }
                    (field_error("encryption-error", message.as_deref()))
                    button type="submit" id="save-encryption" { "Save" }
                }
            }
        }
        section aria-labelledby="bucket-title" {
            h2 id="bucket-title" { "Bucket" }
            dl.details {
                dt { "Region" } dd { (b.region) }
                dt { "Created" } dd { (time(b.created)) }
                dt { "ACL" } dd { (b.acl) }
                dt { "Storage class" } dd { (b.storage_class) }
                dt { "Bucket policy" } dd { (if b.policy.is_some() { "set" } else { "none" }) }
            }
            form method="post" action={"/buckets/" (q(bucket)) "/delete"} {
                (csrf_field(&ctx.session.csrf))
                button.danger type="submit" id="delete-bucket" { "Delete bucket" }
            }
        }
    };
    html_response(
        status,
        page(Some(&ctx.frame("buckets")), &format!("{bucket} · Basic Settings"), query.get("notice"), body),
    )
}

pub(crate) async fn save_encryption(console: &Console, ctx: &Ctx, bucket: &str, form: Form) -> Response<Body> {
    let Some(region) = region_of(console, bucket).await else { return no_bucket(ctx) };
    let result = match rule_from(&form) {
        None => console.svc.delete_bucket_encryption(&ctx.caller, &region, bucket).await,
        Some(rule) => console.svc.put_bucket_encryption(&ctx.caller, &region, bucket, rule).await,
    };
    match result {
        Ok(()) => redirect_notice(
            &format!("/buckets/{}/settings", q(bucket)),
            "Server encryption saved. Existing objects keep their encryption.",
        ),
        Err(e) => {
            let message = match e {
                CoreError::AccessDenied(m) => format!("Access denied: {m}"),
                other => other.to_string(),
            };
            settings(console, ctx, bucket, &Form(Vec::new()), Some((message, form))).await
        }
    }
}

/// PUT `/buckets/{bucket}/upload?key=…&sse=…`: the page's uploader sends the
/// file's bytes as the body (so it can show progress); answers JSON.
pub(crate) async fn upload(console: &Console, ctx: &Ctx, req: Request<Incoming>, query: &Form) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let json = |status: StatusCode, v: serde_json::Value| {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(full(Bytes::from(v.to_string())))
            .expect("valid response")
    };
    let Some(bucket) = path.strip_prefix("/buckets/").and_then(|p| p.strip_suffix("/upload")) else {
        return json(StatusCode::NOT_FOUND, serde_json::json!({ "error": "No such upload target." }));
    };
    let bucket = crate::path_decode(bucket);
    let Some(region) = region_of(console, &bucket).await else {
        return json(StatusCode::NOT_FOUND, serde_json::json!({ "error": "The bucket does not exist." }));
    };
    let sse = match query.get("sse").unwrap_or("") {
        "" => SseRequest::default(),
        "KMS" => SseRequest { algorithm: Some("KMS".into()), ..Default::default() },
        s if s.starts_with("KMS:") => {
            SseRequest { algorithm: Some("KMS".into()), key_id: Some(s[4..].to_owned()), ..Default::default() }
        }
        s => SseRequest { algorithm: Some(s.to_owned()), ..Default::default() },
    };
    let content_length = req.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let stream = BodyStream::new(req.into_body()).filter_map(|frame| async move {
        match frame {
            Ok(f) => f.into_data().ok().map(Ok),
            Err(e) => Some(Err(std::io::Error::other(e))),
        }
    });
    let put = PutObject {
        bucket: bucket.clone(),
        key: query.raw("key"),
        attrs: ObjectAttrs { content_type, acl: "default".into(), ..Default::default() },
        content_md5: None,
        content_length,
        forbid_overwrite: false,
        sse,
        body: Box::pin(stream),
    };
    match console.svc.put_object(&ctx.caller, &region, put).await {
        Ok(rec) => json(
            StatusCode::OK,
            serde_json::json!({
                "key": rec.key, "etag": rec.etag,
                "encryption": rec.encryption.as_ref().map(|e| e.algorithm.clone()).unwrap_or_else(|| "None".into()),
            }),
        ),
        Err(e) => {
            let status = match e {
                CoreError::AccessDenied(_) => StatusCode::FORBIDDEN,
                CoreError::Internal(_) | CoreError::Integrity => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
            };
            json(status, serde_json::json!({ "error": e.to_string() }))
        }
    }
}
