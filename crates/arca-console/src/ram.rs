//! RAM: users (access keys shown once, console password, groups, policies),
//! groups, policies (JSON editor with inline validation errors, versions,
//! attach/detach) and the "simulate" box. Actions go through the RAM API's
//! action layer as the signed-in identity.

use arca_iam::{Context, Decision};
use http::{Response, StatusCode};
use maud::{Markup, html};
use serde_json::Value;

use crate::views::{csrf_field, field_error, page, q};
use crate::{Body, Console, Ctx, Form, error_page, html_response, redirect_notice};

/// Runs a RAM action as the signed-in identity; errors as `Code: message`.
async fn invoke(console: &Console, ctx: &Ctx, action: &str, params: &[(&str, &str)]) -> Result<Value, String> {
    let mut p: Vec<(String, String)> = params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    p.push(("Action".into(), action.into()));
    let region = console.regions.first().cloned().unwrap_or_default();
    console
        .rpc
        .invoke(ctx.identity(), &ctx.caller.context, &region, "2015-05-01", action, &p)
        .await
        .map_err(|e| format!("{}: {}", e.code, e.message))
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn list<'a>(v: &'a Value, outer: &str, inner: &str) -> impl Iterator<Item = &'a Value> {
    v[outer][inner].as_array().into_iter().flatten()
}

/// Errors of the overview's forms, by form.
#[derive(Default)]
pub(crate) struct OverviewErrors {
    user: Option<String>,
    group: Option<String>,
    policy: Option<String>,
    policy_values: Option<(String, String, String)>,
    simulate: Option<Markup>,
}

pub(crate) async fn overview(
    console: &Console,
    ctx: &Ctx,
    query: &Form,
    errors: Option<OverviewErrors>,
) -> Response<Body> {
    let users = invoke(console, ctx, "ListUsers", &[]).await;
    let groups = invoke(console, ctx, "ListGroups", &[]).await;
    let policies = invoke(console, ctx, "ListPolicies", &[]).await;
    let errors = errors.unwrap_or_default();
    let failed = errors.user.is_some() || errors.group.is_some() || errors.policy.is_some();
    let (pname, pdesc, pdoc) = errors.policy_values.clone().unwrap_or_else(|| {
        (String::new(), String::new(), "{\n  \"Version\": \"1\",\n  \"Statement\": [\n    {\n      \"Effect\": \"Allow\",\n      \"Action\": [\"oss:GetObject\"],\n      \"Resource\": [\"acs:oss:*:*:mybucket/*\"]\n    }\n  ]\n}".into())
    });
    let body = html! {
        section aria-labelledby="users-title" {
            h2 id="users-title" { "Users" }
            @match &users {
                Err(e) => p.error role="alert" { "Users cannot be listed: " (e) },
                Ok(u) => table id="users" {
                    thead { tr { th { "Name" } th { "Display name" } th { "User ID" } th { "Created" } } }
                    tbody {
                        @for user in list(u, "Users", "User") {
                            tr {
                                td { a href={"/ram/users/" (q(s(&user["UserName"])))} { (s(&user["UserName"])) } }
                                td { (s(&user["DisplayName"])) }
                                td { (s(&user["UserId"])) }
                                td { (s(&user["CreateDate"])) }
                            }
                        }
                    }
                },
            }
            form method="post" action="/ram/users" {
                (csrf_field(&ctx.session.csrf))
                label for="new-user" { "New user name" }
                input id="new-user" name="name" required pattern="[A-Za-z0-9._-]{1,64}";
                label for="new-user-display" { "Display name" }
                input id="new-user-display" name="display_name";
                (field_error("user-error", errors.user.as_deref()))
                button type="submit" id="create-user" { "Create user" }
            }
        }
        section aria-labelledby="groups-title" {
            h2 id="groups-title" { "Groups" }
            @match &groups {
                Err(e) => p.error { "Groups cannot be listed: " (e) },
                Ok(g) => ul id="groups" { @for group in list(g, "Groups", "Group") { li { (s(&group["GroupName"])) } } },
            }
            form method="post" action="/ram/users/-/create-group" {
                (csrf_field(&ctx.session.csrf))
                label for="new-group" { "New group name" }
                input id="new-group" name="group" required;
                (field_error("group-error", errors.group.as_deref()))
                button type="submit" id="create-group" { "Create group" }
            }
        }
        section aria-labelledby="policies-title" {
            h2 id="policies-title" { "Policies" }
            @match &policies {
                Err(e) => p.error { "Policies cannot be listed: " (e) },
                Ok(p) => table id="policies" {
                    thead { tr { th { "Name" } th { "Type" } th { "Description" } th { "Attached" } } }
                    tbody {
                        @for policy in list(p, "Policies", "Policy") {
                            tr {
                                td { a href={"/ram/policies/" (q(s(&policy["PolicyName"]))) "?type=" (s(&policy["PolicyType"]))} { (s(&policy["PolicyName"])) } }
                                td { (s(&policy["PolicyType"])) }
                                td { (s(&policy["Description"])) }
                                td { (policy["AttachmentCount"]) }
                            }
                        }
                    }
                },
            }
            form method="post" action="/ram/policies" {
                (csrf_field(&ctx.session.csrf))
                label for="policy-name" { "Policy name" }
                input id="policy-name" name="name" required value=(pname);
                label for="policy-description" { "Description" }
                input id="policy-description" name="description" value=(pdesc);
                label for="policy-document" { "Policy document (JSON)" }
                textarea id="policy-document" name="document" rows="14" spellcheck="false" aria-describedby="policy-error" { (pdoc) }
                (field_error("policy-error", errors.policy.as_deref()))
                button type="submit" id="create-policy" { "Create policy" }
            }
        }
        section aria-labelledby="simulate-title" {
            h2 id="simulate-title" { "Simulate" }
            form method="post" action="/ram/simulate" {
                (csrf_field(&ctx.session.csrf))
                label for="sim-user" { "User (empty: the account's root)" }
                input id="sim-user" name="user";
                label for="sim-action" { "Action" }
                input id="sim-action" name="action" placeholder="oss:GetObject" required;
                label for="sim-resource" { "Resource" }
                input id="sim-resource" name="resource" placeholder={"acs:oss:*:" (ctx.account()) ":mybucket/key"} required;
                label for="sim-ip" { "Source IP (optional)" }
                input id="sim-ip" name="source_ip";
                button type="submit" id="simulate" { "Simulate" }
            }
            @if let Some(result) = &errors.simulate { (result) }
        }
    };
    let status = if failed { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    html_response(status, page(Some(&ctx.frame("ram")), "RAM", query.get("notice"), body))
}

pub(crate) async fn create_user(console: &Console, ctx: &Ctx, form: Form) -> Response<Body> {
    let name = form.text("name");
    let display = form.text("display_name");
    match invoke(console, ctx, "CreateUser", &[("UserName", &name), ("DisplayName", &display)]).await {
        Ok(_) => redirect_notice(&format!("/ram/users/{}", q(&name)), &format!("User {name} created.")),
        Err(e) => {
            let errors = OverviewErrors { user: Some(e), ..Default::default() };
            overview(console, ctx, &Form(Vec::new()), Some(errors)).await
        }
    }
}

pub(crate) async fn create_policy(console: &Console, ctx: &Ctx, form: Form) -> Response<Body> {
    let (name, description, document) = (form.text("name"), form.text("description"), form.text("document"));
    let params =
        [("PolicyName", name.as_str()), ("PolicyDocument", document.as_str()), ("Description", description.as_str())];
    match invoke(console, ctx, "CreatePolicy", &params).await {
        Ok(_) => {
            redirect_notice(&format!("/ram/policies/{}?type=Custom", q(&name)), &format!("Policy {name} created."))
        }
        Err(e) => {
            let errors = OverviewErrors {
                policy: Some(e),
                policy_values: Some((name, description, document)),
                ..Default::default()
            };
            overview(console, ctx, &Form(Vec::new()), Some(errors)).await
        }
    }
}

pub(crate) async fn user(
    console: &Console,
    ctx: &Ctx,
    name: &str,
    query: &Form,
    error: Option<String>,
) -> Response<Body> {
    let name = &crate::path_decode(name);
    let user = match invoke(console, ctx, "GetUser", &[("UserName", name)]).await {
        Ok(v) => v["User"].clone(),
        // After a refused action, its own reason matters more than the read's.
        Err(e) => return error_page(ctx, "ram", StatusCode::FORBIDDEN, "User", error.as_deref().unwrap_or(&e)),
    };
    let keys = invoke(console, ctx, "ListAccessKeys", &[("UserName", name)]).await;
    let groups = invoke(console, ctx, "ListGroupsForUser", &[("UserName", name)]).await;
    let all_groups = invoke(console, ctx, "ListGroups", &[]).await;
    let attached = invoke(console, ctx, "ListPoliciesForUser", &[("UserName", name)]).await;
    let policies = invoke(console, ctx, "ListPolicies", &[]).await;
    let action = |op: &str| format!("/ram/users/{}/{op}", q(name));
    let new_key = query
        .get("new_key_id")
        .and_then(|id| console.sessions.take_secret(&ctx.session_id, id).map(|secret| (id.to_owned(), secret)));
    let body = html! {
        p { a href="/ram" { "← RAM" } }
        (field_error("user-action-error", error.as_deref()))
        dl.details {
            dt { "User name" } dd { (s(&user["UserName"])) }
            dt { "User ID" } dd id="user-id" { (s(&user["UserId"])) }
            dt { "Display name" } dd { (s(&user["DisplayName"])) }
            dt { "Created" } dd { (s(&user["CreateDate"])) }
        }
        @if let Some((id, secret)) = new_key.as_ref() {
            div.notice role="alert" id="new-key" {
                p { strong { "New access key — the secret is shown only now; copy it." } }
                p { "AccessKey ID: " code id="new-key-id" { (id) } }
                p { "AccessKey secret: " code id="new-key-secret" { (secret) } }
            }
        }
        section aria-labelledby="keys-title" {
            h2 id="keys-title" { "Access keys" }
            @match &keys {
                Err(e) => p.error { "Access keys cannot be listed: " (e) },
                Ok(k) => table id="access-keys" {
                    thead { tr { th { "AccessKey ID" } th { "Status" } th { "Created" } th { "Actions" } } }
                    tbody {
                        @for key in list(k, "AccessKeys", "AccessKey") {
                            tr {
                                td { (s(&key["AccessKeyId"])) }
                                td { (s(&key["Status"])) }
                                td { (s(&key["CreateDate"])) }
                                td.actions {
                                    @let next = if s(&key["Status"]) == "Active" { "Inactive" } else { "Active" };
                                    form.inline method="post" action=(action("key-status")) {
                                        (csrf_field(&ctx.session.csrf))
                                        input type="hidden" name="key" value=(s(&key["AccessKeyId"]));
                                        input type="hidden" name="status" value=(next);
                                        button type="submit" { (if next == "Active" { "Enable" } else { "Disable" }) }
                                    }
                                    form.inline method="post" action=(action("delete-key")) {
                                        (csrf_field(&ctx.session.csrf))
                                        input type="hidden" name="key" value=(s(&key["AccessKeyId"]));
                                        button type="submit" { "Delete" }
                                    }
                                }
                            }
                        }
                    }
                },
            }
            form method="post" action=(action("create-key")) {
                (csrf_field(&ctx.session.csrf))
                button type="submit" id="create-access-key" { "Create access key" }
            }
        }
        section aria-labelledby="password-title" {
            h2 id="password-title" { "Console password" }
            form method="post" action=(action("password")) {
                (csrf_field(&ctx.session.csrf))
                label for="console-password" { "New password (8–32 characters)" }
                input id="console-password" name="password" type="password" autocomplete="new-password" required;
                button type="submit" id="set-password" { "Set password" }
            }
        }
        section aria-labelledby="groups-title" {
            h2 id="groups-title" { "Groups" }
            @if let Ok(g) = &groups {
                ul { @for group in list(g, "Groups", "Group") {
                    li {
                        (s(&group["GroupName"])) " "
                        form.inline method="post" action=(action("leave-group")) {
                            (csrf_field(&ctx.session.csrf))
                            input type="hidden" name="group" value=(s(&group["GroupName"]));
                            button type="submit" { "Remove" }
                        }
                    }
                } }
            }
            @if let Ok(all) = &all_groups {
                form method="post" action=(action("join-group")) {
                    (csrf_field(&ctx.session.csrf))
                    label for="join-group" { "Add to group" }
                    select id="join-group" name="group" { @for g in list(all, "Groups", "Group") { option { (s(&g["GroupName"])) } } }
                    button type="submit" { "Add" }
                }
            }
        }
        section aria-labelledby="attached-title" {
            h2 id="attached-title" { "Policies" }
            @match &attached {
                Err(e) => p.error { "Policies cannot be listed: " (e) },
                Ok(a) => ul id="attached-policies" { @for p in list(a, "Policies", "Policy") {
                    li {
                        (s(&p["PolicyName"])) " (" (s(&p["PolicyType"])) ") "
                        form.inline method="post" action=(action("detach")) {
                            (csrf_field(&ctx.session.csrf))
                            input type="hidden" name="policy" value={(s(&p["PolicyType"])) ":" (s(&p["PolicyName"]))};
                            button type="submit" { "Detach" }
                        }
                    }
                } },
            }
            @if let Ok(all) = &policies {
                form method="post" action=(action("attach")) {
                    (csrf_field(&ctx.session.csrf))
                    label for="attach-policy" { "Attach policy" }
                    select id="attach-policy" name="policy" {
                        @for p in list(all, "Policies", "Policy") {
                            option value={(s(&p["PolicyType"])) ":" (s(&p["PolicyName"]))} { (s(&p["PolicyName"])) " (" (s(&p["PolicyType"])) ")" }
                        }
                    }
                    button type="submit" id="attach-policy-submit" { "Attach" }
                }
            }
        }
        form method="post" action=(action("delete")) {
            (csrf_field(&ctx.session.csrf))
            button.danger type="submit" { "Delete user" }
        }
    };
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    html_response(status, page(Some(&ctx.frame("ram")), &format!("User {name}"), query.get("notice"), body))
}

pub(crate) async fn user_action(console: &Console, ctx: &Ctx, name: &str, op: &str, form: Form) -> Response<Body> {
    let name = crate::path_decode(name);
    let back = format!("/ram/users/{}", q(&name));
    let typed = |v: &str| -> (String, String) {
        let (t, n) = v.split_once(':').unwrap_or(("Custom", v));
        (t.to_owned(), n.to_owned())
    };
    let result = match op {
        "create-group" => {
            let group = form.text("group");
            return match invoke(console, ctx, "CreateGroup", &[("GroupName", &group)]).await {
                Ok(_) => redirect_notice("/ram", &format!("Group {group} created.")),
                Err(e) => {
                    overview(
                        console,
                        ctx,
                        &Form(Vec::new()),
                        Some(OverviewErrors { group: Some(e), ..Default::default() }),
                    )
                    .await
                }
            };
        }
        "create-key" => match invoke(console, ctx, "CreateAccessKey", &[("UserName", &name)]).await {
            Ok(v) => {
                let k = &v["AccessKey"];
                // The secret waits in the session for the next page only.
                console.sessions.hold_secret(&ctx.session_id, s(&k["AccessKeyId"]), s(&k["AccessKeySecret"]));
                return crate::redirect(&format!("{back}?new_key_id={}", q(s(&k["AccessKeyId"]))));
            }
            Err(e) => Err(e),
        },
        "key-status" => {
            let (key, status) = (form.text("key"), form.text("status"));
            invoke(
                console,
                ctx,
                "UpdateAccessKey",
                &[("UserName", &name), ("UserAccessKeyId", &key), ("Status", &status)],
            )
            .await
        }
        "delete-key" => {
            let key = form.text("key");
            invoke(console, ctx, "DeleteAccessKey", &[("UserName", &name), ("UserAccessKeyId", &key)]).await
        }
        "password" => {
            let password = form.get("password").unwrap_or("").to_owned();
            invoke(console, ctx, "CreateLoginProfile", &[("UserName", &name), ("Password", &password)]).await
        }
        "join-group" => {
            invoke(console, ctx, "AddUserToGroup", &[("UserName", &name), ("GroupName", &form.text("group"))]).await
        }
        "leave-group" => {
            invoke(console, ctx, "RemoveUserFromGroup", &[("UserName", &name), ("GroupName", &form.text("group"))])
                .await
        }
        "attach" | "detach" => {
            let (t, p) = typed(&form.text("policy"));
            let action = if op == "attach" { "AttachPolicyToUser" } else { "DetachPolicyFromUser" };
            invoke(console, ctx, action, &[("UserName", &name), ("PolicyType", &t), ("PolicyName", &p)]).await
        }
        "delete" => match invoke(console, ctx, "DeleteUser", &[("UserName", &name)]).await {
            Ok(_) => return redirect_notice("/ram", &format!("User {name} deleted.")),
            Err(e) => Err(e),
        },
        _ => return crate::plain(StatusCode::NOT_FOUND, "No such user action."),
    };
    match result {
        Ok(_) => redirect_notice(&back, "Saved."),
        Err(e) => user(console, ctx, &name, &Form(Vec::new()), Some(e)).await,
    }
}

pub(crate) async fn policy(
    console: &Console,
    ctx: &Ctx,
    name: &str,
    query: &Form,
    error: Option<(String, String)>,
) -> Response<Body> {
    let name = &crate::path_decode(name);
    let policy_type = if query.get("type") == Some("System") { "System" } else { "Custom" };
    let got = match invoke(console, ctx, "GetPolicy", &[("PolicyName", name), ("PolicyType", policy_type)]).await {
        Ok(v) => v,
        Err(e) => return error_page(ctx, "ram", StatusCode::FORBIDDEN, "Policy", &e),
    };
    let versions =
        invoke(console, ctx, "ListPolicyVersions", &[("PolicyName", name), ("PolicyType", policy_type)]).await;
    let (message, draft) = match error {
        Some((m, d)) => (Some(m), d),
        None => (None, s(&got["DefaultPolicyVersion"]["PolicyDocument"]).to_owned()),
    };
    let action = |op: &str| format!("/ram/policies/{}/{op}", q(name));
    let body = html! {
        p { a href="/ram" { "← RAM" } }
        dl.details {
            dt { "Type" } dd { (policy_type) }
            dt { "Description" } dd { (s(&got["Policy"]["Description"])) }
            dt { "Default version" } dd id="default-version" { (s(&got["Policy"]["DefaultVersion"])) }
            dt { "Attached to" } dd { (got["Policy"]["AttachmentCount"]) " users or groups" }
        }
        h2 { "Document in force" }
        pre id="policy-in-force" { (s(&got["DefaultPolicyVersion"]["PolicyDocument"])) }
        @if policy_type == "Custom" {
            @if let Ok(v) = &versions {
                h2 { "Versions" }
                ul { @for ver in list(v, "PolicyVersions", "PolicyVersion") {
                    li {
                        (s(&ver["VersionId"])) @if ver["IsDefaultVersion"] == true { " (default)" }
                        @else {
                            " "
                            form.inline method="post" action=(action("set-default")) {
                                (csrf_field(&ctx.session.csrf))
                                input type="hidden" name="version" value=(s(&ver["VersionId"]));
                                button type="submit" { "Make default" }
                            }
                        }
                    }
                } }
            }
            h2 { "New version" }
            form method="post" action=(action("version")) {
                (csrf_field(&ctx.session.csrf))
                label for="version-document" { "Policy document (JSON)" }
                textarea id="version-document" name="document" rows="14" spellcheck="false" aria-describedby="version-error" { (draft) }
                (field_error("version-error", message.as_deref()))
                label.radio { input type="checkbox" name="default" value="true" checked; " Make it the version in force" }
                button type="submit" id="save-version" { "Save version" }
            }
            form method="post" action=(action("delete")) {
                (csrf_field(&ctx.session.csrf))
                button.danger type="submit" { "Delete policy" }
            }
        }
    };
    let status = if message.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    html_response(status, page(Some(&ctx.frame("ram")), &format!("Policy {name}"), query.get("notice"), body))
}

pub(crate) async fn policy_action(console: &Console, ctx: &Ctx, name: &str, op: &str, form: Form) -> Response<Body> {
    let name = crate::path_decode(name);
    let back = format!("/ram/policies/{}?type=Custom", q(&name));
    let result = match op {
        "version" => {
            let document = form.text("document");
            let default = if form.get("default") == Some("true") { "true" } else { "false" };
            match invoke(
                console,
                ctx,
                "CreatePolicyVersion",
                &[
                    ("PolicyName", &name),
                    ("PolicyDocument", &document),
                    ("SetAsDefault", default),
                    ("RotateStrategy", "DeleteOldestNonDefaultVersionWhenLimitExceeded"),
                ],
            )
            .await
            {
                Ok(_) => Ok(Value::Null),
                Err(e) => {
                    let query = Form(vec![("type".into(), "Custom".into())]);
                    return policy(console, ctx, &name, &query, Some((e, document))).await;
                }
            }
        }
        "set-default" => {
            invoke(
                console,
                ctx,
                "SetDefaultPolicyVersion",
                &[("PolicyName", &name), ("VersionId", &form.text("version"))],
            )
            .await
        }
        "delete" => match invoke(console, ctx, "DeletePolicy", &[("PolicyName", &name)]).await {
            Ok(_) => return redirect_notice("/ram", &format!("Policy {name} deleted.")),
            Err(e) => Err(e),
        },
        _ => return crate::plain(StatusCode::NOT_FOUND, "No such policy action."),
    };
    match result {
        Ok(_) => redirect_notice(&back, "Saved."),
        Err(e) => error_page(ctx, "ram", StatusCode::FORBIDDEN, "Policy", &e),
    }
}

/// "May user U do action A on resource R?" — allowed to whoever may read
/// the user's policies (`ram:ListPoliciesForUser`; root for the root).
pub(crate) async fn simulate(console: &Console, ctx: &Ctx, form: Form) -> Response<Body> {
    let (user, action, resource, ip) =
        (form.text("user"), form.text("action"), form.text("resource"), form.text("source_ip"));
    let permitted = if user.is_empty() {
        matches!(ctx.identity().principal, arca_iam::Principal::Root { .. })
            .then_some(())
            .ok_or_else(|| "Only the root identity may simulate the root.".to_owned())
    } else {
        invoke(console, ctx, "ListPoliciesForUser", &[("UserName", &user)]).await.map(|_| ())
    };
    let result = match permitted {
        Err(e) => html! { p.error id="simulate-result" role="alert" { (e) } },
        Ok(()) => {
            let mut context = Context::new();
            if !ip.is_empty() {
                context.set("acs:SourceIp", ip.as_str());
            }
            let user_ref = Some(user.as_str()).filter(|u| !u.is_empty());
            match console.iam.simulate(ctx.account(), user_ref, &action, &resource, &context).await {
                Err(e) => html! { p.error id="simulate-result" role="alert" { (e.message) } },
                Ok(Decision::Allow(m)) => {
                    html! { p.allow id="simulate-result" role="status" { "Allow — by " (m.to_string()) } }
                }
                Ok(Decision::Deny(m)) => {
                    html! { p.deny id="simulate-result" role="status" { "Deny (explicit) — by " (m.to_string()) } }
                }
                Ok(Decision::ImplicitDeny) => {
                    html! { p.deny id="simulate-result" role="status" { "Implicit deny — no statement allows it" } }
                }
            }
        }
    };
    let errors = OverviewErrors { simulate: Some(result), ..Default::default() };
    overview(console, ctx, &Form(Vec::new()), Some(errors)).await
}
