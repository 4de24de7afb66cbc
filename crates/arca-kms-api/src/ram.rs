//! RAM actions (`Version=2015-05-01`, spec Part C) over the identity
//! directory, so the Alibaba RAM SDK manages Arca's users, groups, access
//! keys and policies. Served on the KMS API's listener.

use arca_iam::{Attachment, Audit, Context, Iam, IamError, Identity, Principal, StoredPolicy, Target, User};
use arca_meta::AccessKey;
use http::StatusCode;
use serde_json::{Value, json};

use crate::actions::{ApiError, Params};

impl From<IamError> for ApiError {
    fn from(e: IamError) -> Self {
        if e.status >= 500 {
            return ApiError::internal(e.message);
        }
        ApiError::new(StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST), e.code, e.message)
    }
}

fn iso(t: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(t).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z")).unwrap_or_default()
}

fn user_json(u: &User) -> Value {
    json!({
        "UserId": u.user_id, "UserName": u.name, "DisplayName": u.display_name, "Comments": u.comments,
        "CreateDate": iso(u.created), "UpdateDate": iso(u.updated),
    })
}

fn key_json(k: &AccessKey, with_secret: bool) -> Value {
    let mut v = json!({
        "AccessKeyId": k.id, "Status": if k.enabled { "Active" } else { "Inactive" }, "CreateDate": iso(k.created),
    });
    if with_secret {
        v["AccessKeySecret"] = json!(k.secret);
    }
    v
}

fn policy_json(p: &StoredPolicy, attachments: Option<usize>) -> Value {
    let mut v = json!({
        "PolicyName": p.name, "PolicyType": p.policy_type, "Description": p.description,
        "DefaultVersion": p.default_version, "CreateDate": iso(p.created), "UpdateDate": iso(p.updated),
    });
    if let Some(n) = attachments {
        v["AttachmentCount"] = json!(n);
    }
    v
}

fn attachments_json(list: &[Attachment]) -> Value {
    json!({ "Policy": list.iter().map(|a| json!({
        "PolicyName": a.name, "PolicyType": a.policy_type, "AttachDate": iso(a.attached),
    })).collect::<Vec<_>>() })
}

fn bool_param(p: &Params<'_>, name: &str) -> Result<bool, ApiError> {
    match p.get(name).map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("false") => Ok(false),
        Some("true") => Ok(true),
        _ => Err(ApiError::invalid(name)),
    }
}

/// The resources a RAM action is checked against; the caller needs the
/// action on every one. Decided per action: parameters an action does not
/// use never change what is checked.
fn resources(account: &str, action: &str, p: &Params<'_>, self_name: Option<&str>) -> Vec<String> {
    let of = |kind: &str, name: Option<&str>| {
        format!("acs:ram:*:{account}:{kind}/{}", name.filter(|n| !n.is_empty()).unwrap_or("*"))
    };
    let user = || of("user", p.get("UserName").filter(|u| !u.is_empty()).or(self_name));
    let group = || of("group", p.get("GroupName"));
    let policy = || of("policy", p.get("PolicyName"));
    match action {
        "ListUsers" | "ListGroups" | "ListPolicies" => vec![format!("acs:ram:*:{account}:*")],
        "CreateGroup" | "GetGroup" | "UpdateGroup" | "DeleteGroup" | "ListUsersForGroup" | "ListPoliciesForGroup" => {
            vec![group()]
        }
        "AddUserToGroup" | "RemoveUserFromGroup" => vec![user(), group()],
        "AttachPolicyToUser" | "DetachPolicyFromUser" => vec![policy(), user()],
        "AttachPolicyToGroup" | "DetachPolicyFromGroup" => vec![policy(), group()],
        "CreatePolicy"
        | "GetPolicy"
        | "DeletePolicy"
        | "CreatePolicyVersion"
        | "GetPolicyVersion"
        | "ListPolicyVersions"
        | "SetDefaultPolicyVersion"
        | "DeletePolicyVersion" => vec![policy()],
        "CreateUser"
        | "GetUser"
        | "UpdateUser"
        | "DeleteUser"
        | "CreateLoginProfile"
        | "UpdateLoginProfile"
        | "DeleteLoginProfile"
        | "CreateAccessKey"
        | "ListAccessKeys"
        | "UpdateAccessKey"
        | "DeleteAccessKey"
        | "ListGroupsForUser"
        | "ListPoliciesForUser" => vec![user()],
        _ => vec![format!("acs:ram:*:{account}:*")],
    }
}

/// Runs a RAM action for `identity`.
pub async fn dispatch(
    iam: &Iam,
    identity: &Identity,
    context: &Context,
    audit: &Audit,
    action: &str,
    p: &Params<'_>,
) -> Result<Value, ApiError> {
    let account = identity.principal.account().unwrap_or_default().to_owned();
    let acct = account.as_str();
    if let Principal::User { name, .. } = &identity.principal {
        for resource in resources(acct, action, p, Some(name)) {
            let decision = identity.decide(&format!("ram:{action}"), &resource, context);
            if decision.allowed() {
                continue;
            }
            audit.deny(identity, context, &format!("ram:{action}"), &resource, &Audit::reason(&decision));
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "NoPermission",
                format!("You are not authorized to do ram:{action} on {resource}."),
            ));
        }
    }
    // `UserName` is optional on access-key actions: omitted means the caller.
    let key_owner = || -> Option<String> {
        match (p.get("UserName").filter(|u| !u.is_empty()), &identity.principal) {
            (Some(u), _) => Some(u.to_owned()),
            (None, Principal::User { name, .. }) => Some(name.clone()),
            (None, _) => None,
        }
    };
    let policy_type = || p.get("PolicyType").filter(|t| !t.is_empty()).unwrap_or("Custom");
    let target = |kind: &str| -> Result<Target<'_>, ApiError> {
        Ok(if kind == "User" { Target::User(p.need("UserName")?) } else { Target::Group(p.need("GroupName")?) })
    };
    Ok(match action {
        "CreateUser" => {
            let u = iam
                .create_user(
                    acct,
                    p.need("UserName")?,
                    p.get("DisplayName").unwrap_or(""),
                    p.get("Comments").unwrap_or(""),
                )
                .await?;
            json!({ "User": user_json(&u) })
        }
        "GetUser" => json!({ "User": user_json(&iam.get_user(acct, p.need("UserName")?).await?) }),
        "UpdateUser" => {
            let name = p.need("UserName")?;
            if p.get("NewUserName").is_some_and(|n| n != name) {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameter",
                    "Renaming users is not supported.",
                ));
            }
            let u = iam.update_user(acct, name, p.get("NewDisplayName"), p.get("NewComments")).await?;
            json!({ "User": user_json(&u) })
        }
        "DeleteUser" => {
            iam.delete_user(acct, p.need("UserName")?).await?;
            json!({})
        }
        "ListUsers" => {
            let users = iam.list_users(acct).await?;
            json!({ "Users": { "User": users.iter().map(user_json).collect::<Vec<_>>() }, "IsTruncated": false })
        }
        "CreateLoginProfile" | "UpdateLoginProfile" => {
            iam.set_password(acct, p.need("UserName")?, Some(p.need("Password")?)).await?;
            json!({ "LoginProfile": { "UserName": p.need("UserName")?, "PasswordResetRequired": false } })
        }
        "DeleteLoginProfile" => {
            iam.set_password(acct, p.need("UserName")?, None).await?;
            json!({})
        }
        "CreateAccessKey" => {
            let k = iam.create_access_key(acct, key_owner().as_deref()).await?;
            json!({ "AccessKey": key_json(&k, true) })
        }
        "ListAccessKeys" => {
            let keys = iam.list_access_keys(acct, key_owner().as_deref()).await?;
            json!({ "AccessKeys": { "AccessKey": keys.iter().map(|k| key_json(k, false)).collect::<Vec<_>>() } })
        }
        "UpdateAccessKey" => {
            let enabled = match p.need("Status")? {
                "Active" => true,
                "Inactive" => false,
                _ => return Err(ApiError::invalid("Status")),
            };
            iam.set_access_key_enabled(acct, key_owner().as_deref(), p.need("UserAccessKeyId")?, enabled).await?;
            json!({})
        }
        "DeleteAccessKey" => {
            iam.delete_access_key(acct, key_owner().as_deref(), p.need("UserAccessKeyId")?).await?;
            json!({})
        }
        "CreateGroup" => {
            let g = iam.create_group(acct, p.need("GroupName")?, p.get("Comments").unwrap_or("")).await?;
            json!({ "Group": { "GroupName": g.name, "Comments": g.comments, "CreateDate": iso(g.created) } })
        }
        "GetGroup" => {
            let g = iam.get_group(acct, p.need("GroupName")?).await?;
            json!({ "Group": { "GroupName": g.name, "Comments": g.comments, "CreateDate": iso(g.created) } })
        }
        "ListGroups" => {
            let groups = iam.list_groups(acct).await?;
            let list: Vec<Value> = groups
                .iter()
                .map(|g| json!({ "GroupName": g.name, "Comments": g.comments, "CreateDate": iso(g.created) }))
                .collect();
            json!({ "Groups": { "Group": list }, "IsTruncated": false })
        }
        "DeleteGroup" => {
            iam.delete_group(acct, p.need("GroupName")?).await?;
            json!({})
        }
        "AddUserToGroup" => {
            iam.add_user_to_group(acct, p.need("UserName")?, p.need("GroupName")?).await?;
            json!({})
        }
        "RemoveUserFromGroup" => {
            iam.remove_user_from_group(acct, p.need("UserName")?, p.need("GroupName")?).await?;
            json!({})
        }
        "ListGroupsForUser" => {
            let u = iam.get_user(acct, p.need("UserName")?).await?;
            let mut list = Vec::new();
            for g in &u.groups {
                if let Ok(g) = iam.get_group(acct, g).await {
                    list.push(json!({ "GroupName": g.name, "Comments": g.comments, "JoinDate": iso(g.created) }));
                }
            }
            json!({ "Groups": { "Group": list } })
        }
        "ListUsersForGroup" => {
            let users = iam.list_users_for_group(acct, p.need("GroupName")?).await?;
            let list: Vec<Value> =
                users.iter().map(|u| json!({ "UserName": u.name, "DisplayName": u.display_name })).collect();
            json!({ "Users": { "User": list }, "IsTruncated": false })
        }
        "CreatePolicy" => {
            let policy = iam
                .create_policy(
                    acct,
                    p.need("PolicyName")?,
                    p.need("PolicyDocument")?,
                    p.get("Description").unwrap_or(""),
                )
                .await?;
            json!({ "Policy": policy_json(&policy, None) })
        }
        "GetPolicy" => {
            let t = policy_type();
            let policy = iam.get_policy(acct, t, p.need("PolicyName")?).await?;
            let count = iam.attachment_count(acct, t, &policy.name).await?;
            let default = policy.versions.iter().find(|v| v.id == policy.default_version);
            json!({
                "Policy": policy_json(&policy, Some(count)),
                "DefaultPolicyVersion": default.map(|v| json!({
                    "VersionId": v.id, "IsDefaultVersion": true, "PolicyDocument": v.document, "CreateDate": iso(v.created),
                })),
            })
        }
        "ListPolicies" => {
            let list = iam.list_policies(acct, p.get("PolicyType").filter(|t| !t.is_empty())).await?;
            let mut out = Vec::new();
            for policy in &list {
                let count = iam.attachment_count(acct, &policy.policy_type, &policy.name).await?;
                out.push(policy_json(policy, Some(count)));
            }
            json!({ "Policies": { "Policy": out }, "IsTruncated": false })
        }
        "DeletePolicy" => {
            iam.delete_policy(acct, p.need("PolicyName")?).await?;
            json!({})
        }
        "CreatePolicyVersion" => {
            let rotate = p.get("RotateStrategy") == Some("DeleteOldestNonDefaultVersionWhenLimitExceeded");
            let v = iam
                .create_policy_version(
                    acct,
                    p.need("PolicyName")?,
                    p.need("PolicyDocument")?,
                    bool_param(p, "SetAsDefault")?,
                    rotate,
                )
                .await?;
            let policy = iam.get_policy(acct, "Custom", p.need("PolicyName")?).await?;
            json!({ "PolicyVersion": {
                "VersionId": v.id, "IsDefaultVersion": policy.default_version == v.id,
                "PolicyDocument": v.document, "CreateDate": iso(v.created),
            } })
        }
        "GetPolicyVersion" | "ListPolicyVersions" => {
            let policy = iam.get_policy(acct, policy_type(), p.need("PolicyName")?).await?;
            let render = |v: &arca_iam::PolicyVersion| {
                json!({
                    "VersionId": v.id, "IsDefaultVersion": v.id == policy.default_version,
                    "PolicyDocument": v.document, "CreateDate": iso(v.created),
                })
            };
            if action == "ListPolicyVersions" {
                json!({ "PolicyVersions": { "PolicyVersion": policy.versions.iter().map(render).collect::<Vec<_>>() } })
            } else {
                let id = p.need("VersionId")?;
                let v = policy.versions.iter().find(|v| v.id == id).ok_or_else(|| {
                    ApiError::new(
                        StatusCode::NOT_FOUND,
                        "EntityNotExist.Policy.Version",
                        format!("The policy version does not exist: {id}."),
                    )
                })?;
                json!({ "PolicyVersion": render(v) })
            }
        }
        "SetDefaultPolicyVersion" => {
            iam.set_default_policy_version(acct, p.need("PolicyName")?, p.need("VersionId")?).await?;
            json!({})
        }
        "DeletePolicyVersion" => {
            iam.delete_policy_version(acct, p.need("PolicyName")?, p.need("VersionId")?).await?;
            json!({})
        }
        "AttachPolicyToUser" | "AttachPolicyToGroup" => {
            let t = target(if action.ends_with("User") { "User" } else { "Group" })?;
            iam.attach_policy(acct, t, p.need("PolicyType")?, p.need("PolicyName")?).await?;
            json!({})
        }
        "DetachPolicyFromUser" | "DetachPolicyFromGroup" => {
            let t = target(if action.ends_with("User") { "User" } else { "Group" })?;
            iam.detach_policy(acct, t, p.need("PolicyType")?, p.need("PolicyName")?).await?;
            json!({})
        }
        "ListPoliciesForUser" | "ListPoliciesForGroup" => {
            let t = target(if action.ends_with("User") { "User" } else { "Group" })?;
            let list = iam.list_policies_for(acct, t).await?;
            let mut rendered = attachments_json(&list);
            for (item, a) in rendered["Policy"].as_array_mut().into_iter().flatten().zip(&list) {
                if let Ok(policy) = iam.get_policy(acct, &a.policy_type, &a.name).await {
                    item["Description"] = json!(policy.description);
                    item["DefaultVersion"] = json!(policy.default_version);
                }
            }
            json!({ "Policies": rendered })
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "InvalidAction.NotFound",
                format!("Specified api is not found, please check your url and method: {action}."),
            ));
        }
    })
}
