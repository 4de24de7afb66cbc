//! The identity directory over a real SQLite store: accounts, RAM users,
//! access keys, groups, custom and system policies with versions,
//! attachments, `simulate`, the policy cache, and console passwords.

use std::fmt::Debug;
use std::sync::Arc;

use arca_iam::{
    Context, Decision, Iam, IamError, MAX_KEYS_PER_USER, MAX_POLICY_LEN, MAX_POLICY_VERSIONS, Matched,
    POLICY_CACHE_TTL, Principal, SYSTEM_POLICIES, Target, User,
};
use arca_meta::{AccessKey, MetaStore, Sqlite};

struct Env {
    _dir: tempfile::TempDir,
    meta: Arc<dyn MetaStore>,
    iam: Iam,
    /// The account every test works in.
    account: String,
    /// Its first root key.
    root_key: AccessKey,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let meta: Arc<dyn MetaStore> = Arc::new(Sqlite::open(&dir.path().join("meta.sqlite")).unwrap());
    let iam = Iam::new(meta.clone());
    let (account, root_key) = iam.create_account("acme").await.unwrap();
    Env { _dir: dir, meta, iam, account: account.id, root_key }
}

impl Env {
    async fn user(&self, name: &str) -> User {
        self.iam.create_user(&self.account, name, "", "").await.unwrap()
    }

    async fn policy(&self, name: &str, document: &str) {
        self.iam.create_policy(&self.account, name, document, "").await.unwrap();
    }

    async fn sim(&self, user: Option<&str>, action: &str, resource: &str) -> Decision {
        self.iam.simulate(&self.account, user, action, resource, &Context::new()).await.unwrap()
    }

    /// An object ARN in this account.
    fn obj(&self, key: &str) -> String {
        format!("acs:oss:cn-hangzhou:{}:data/{key}", self.account)
    }

    async fn policy_names(&self, user: &str) -> Vec<String> {
        self.iam.user_policies(&self.account, user).await.unwrap().iter().map(|p| p.name.clone()).collect()
    }
}

// The tables below are written for these limits.
const _: () = assert!(MAX_KEYS_PER_USER == 2 && MAX_POLICY_VERSIONS == 5);

/// `"{status} {code}"` of the error a call must fail with.
#[track_caller]
fn err<T: Debug>(r: Result<T, IamError>) -> String {
    let e = r.expect_err("the call should have failed");
    format!("{} {}", e.status, e.code)
}

/// The decision, reduced to its effect and deciding policy.
fn by(d: &Decision) -> String {
    match d {
        Decision::Allow(m) => format!("Allow {}", m.policy),
        Decision::Deny(m) => format!("Deny {}", m.policy),
        Decision::ImplicitDeny => "ImplicitDeny".into(),
    }
}

/// A one-statement policy document.
fn allow(actions: &str, resource: &str) -> String {
    format!(r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Action":{actions},"Resource":"{resource}"}}]}}"#)
}

/// A distinct valid document per `n`.
fn numbered(n: u32) -> String {
    format!(
        r#"{{"Version":"1","Statement":[{{"Sid":"S{n}","Effect":"Allow","Action":"oss:GetObject","Resource":"*"}}]}}"#
    )
}

// ---- accounts ---------------------------------------------------------------------

#[tokio::test]
async fn accounts_get_an_id_and_a_root_key() {
    let e = env().await;
    assert_eq!(e.account.len(), 16, "{}", e.account);
    assert!(e.account.starts_with('1'));
    assert!(e.account.bytes().all(|b| b.is_ascii_digit()), "{}", e.account);
    let k = &e.root_key;
    assert_eq!(k.user, None);
    assert!(k.enabled);
    assert_eq!(k.account_id, e.account);
    assert!(k.id.starts_with("LTAI"), "{}", k.id);
    assert_eq!(k.secret.len(), 30);
    assert!(k.secret.chars().all(|c| c.is_ascii_alphanumeric()));

    let accounts = e.iam.list_accounts().await.unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!((accounts[0].id.as_str(), accounts[0].name.as_str()), (e.account.as_str(), "acme"));
    assert_eq!(err(e.iam.create_account("acme").await), "409 EntityAlreadyExists.Account");
    assert_eq!(err(e.iam.create_account("bad name").await), "400 InvalidParameter.AccountName.InvalidChars");
    assert_eq!(err(e.iam.create_account("").await), "400 InvalidParameter.AccountName.Length");

    let (other, other_key) = e.iam.create_account("umbrella").await.unwrap();
    assert_ne!(other.id, e.account);
    assert_ne!(other_key.id, e.root_key.id);
    assert_eq!(e.iam.list_accounts().await.unwrap().len(), 2);

    // The root key is listed (without its secret) and resolves to the root identity.
    let keys = e.iam.list_access_keys(&e.account, None).await.unwrap();
    assert_eq!(keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(), [e.root_key.id.as_str()]);
    assert!(keys[0].secret.is_empty());
    let stored = e.meta.get_access_key(&e.root_key.id).await.unwrap().unwrap();
    assert_eq!(stored.secret, e.root_key.secret);
    let id = e.iam.identity(&e.root_key).await.unwrap();
    assert_eq!(id.principal, Principal::Root { account: e.account.clone() });
    assert_eq!(id.access_key_id.as_deref(), Some(e.root_key.id.as_str()));
    assert!(id.policies.is_empty());
    assert!(id.decide("oss:PutObject", &e.obj("a"), &Context::new()).allowed());
    let theirs = format!("acs:oss:cn-hangzhou:{}:data/a", other.id);
    assert_eq!(id.decide("oss:GetObject", &theirs, &Context::new()), Decision::ImplicitDeny);
}

// ---- users ------------------------------------------------------------------------

#[tokio::test]
async fn users_are_created_read_listed_and_updated() {
    let e = env().await;
    let a = &e.account;
    let alice = e.iam.create_user(a, "alice", "Alice", "developer").await.unwrap();
    assert_eq!(
        (alice.name.as_str(), alice.display_name.as_str(), alice.comments.as_str()),
        ("alice", "Alice", "developer")
    );
    assert_eq!(alice.user_id.len(), 16);
    assert!(alice.user_id.bytes().all(|b| b.is_ascii_digit()));
    assert!(alice.groups.is_empty() && alice.policies.is_empty());
    assert!(!alice.has_password());
    assert!(alice.created > 0);

    // The display name defaults to the name.
    let bob = e.user("bob").await;
    assert_eq!(bob.display_name, "bob");
    assert_ne!(bob.user_id, alice.user_id);
    let longest = "y".repeat(64);
    for name in ["carol.c", "dave_d", "erin-e", "x", longest.as_str()] {
        e.iam.create_user(a, name, "", "").await.unwrap_or_else(|x| panic!("{name}: {x}"));
    }

    assert_eq!(err(e.iam.create_user(a, "alice", "", "").await), "409 EntityAlreadyExists.User");
    for bad in ["bad name", "a/b", "emoji😀", "tab\t", "semi;colon"] {
        assert_eq!(err(e.iam.create_user(a, bad, "", "").await), "400 InvalidParameter.UserName.InvalidChars", "{bad}");
    }
    assert_eq!(err(e.iam.create_user(a, "", "", "").await), "400 InvalidParameter.UserName.Length");
    assert_eq!(err(e.iam.create_user(a, &"z".repeat(65), "", "").await), "400 InvalidParameter.UserName.Length");
    let e400 = e.iam.create_user(a, "zed", &"d".repeat(129), "").await.unwrap_err();
    assert_eq!(e400.status, 400, "{e400}");

    assert_eq!(e.iam.get_user(a, "alice").await.unwrap(), alice);
    assert_eq!(err(e.iam.get_user(a, "nobody").await), "404 EntityNotExist.User");
    let names: Vec<String> = e.iam.list_users(a).await.unwrap().into_iter().map(|u| u.name).collect();
    assert_eq!(names, ["alice", "bob", "carol.c", "dave_d", "erin-e", "x", longest.as_str()]);

    let updated = e.iam.update_user(a, "alice", Some("Alice Liddell"), None).await.unwrap();
    assert_eq!((updated.display_name.as_str(), updated.comments.as_str()), ("Alice Liddell", "developer"));
    let updated = e.iam.update_user(a, "alice", None, Some("lead")).await.unwrap();
    assert_eq!((updated.display_name.as_str(), updated.comments.as_str()), ("Alice Liddell", "lead"));
    assert_eq!(updated.user_id, alice.user_id);
    assert_eq!(e.iam.get_user(a, "alice").await.unwrap(), updated);
    assert_eq!(err(e.iam.update_user(a, "nobody", Some("x"), None).await), "404 EntityNotExist.User");

    // Users belong to their account.
    let (other, _) = e.iam.create_account("umbrella").await.unwrap();
    assert!(e.iam.list_users(&other.id).await.unwrap().is_empty());
    assert_eq!(err(e.iam.get_user(&other.id, "alice").await), "404 EntityNotExist.User");
    e.iam.create_user(&other.id, "alice", "", "").await.unwrap();
    assert_eq!(e.iam.get_user(a, "alice").await.unwrap().user_id, alice.user_id);
}

#[tokio::test]
async fn users_are_deleted_only_once_detached_from_everything() {
    let e = env().await;
    let a = &e.account;
    e.user("alice").await;
    let key = e.iam.create_access_key(a, Some("alice")).await.unwrap();
    e.iam.create_group(a, "devs", "").await.unwrap();
    e.iam.add_user_to_group(a, "alice", "devs").await.unwrap();
    e.iam.attach_policy(a, Target::User("alice"), "System", "AliyunOSSReadOnlyAccess").await.unwrap();

    assert_eq!(err(e.iam.delete_user(a, "alice").await), "409 DeleteConflict.User.AccessKey");
    e.iam.delete_access_key(a, Some("alice"), &key.id).await.unwrap();
    assert_eq!(err(e.iam.delete_user(a, "alice").await), "409 DeleteConflict.User.Policy");
    e.iam.detach_policy(a, Target::User("alice"), "System", "AliyunOSSReadOnlyAccess").await.unwrap();
    assert_eq!(err(e.iam.delete_user(a, "alice").await), "409 DeleteConflict.User.Group");
    e.iam.remove_user_from_group(a, "alice", "devs").await.unwrap();
    e.iam.delete_user(a, "alice").await.unwrap();

    assert_eq!(err(e.iam.get_user(a, "alice").await), "404 EntityNotExist.User");
    assert_eq!(err(e.iam.delete_user(a, "alice").await), "404 EntityNotExist.User");
    assert!(e.iam.list_users(a).await.unwrap().is_empty());
    // The name can be used again, for a new user.
    e.user("alice").await;
}

// ---- access keys ------------------------------------------------------------------

#[tokio::test]
async fn access_keys_are_limited_listed_disabled_and_deleted() {
    let e = env().await;
    let a = &e.account;
    e.user("alice").await;
    e.user("bob").await;

    let k1 = e.iam.create_access_key(a, Some("alice")).await.unwrap();
    assert_eq!(k1.secret.len(), 30);
    assert!(k1.secret.chars().all(|c| c.is_ascii_alphanumeric()));
    assert!(k1.id.starts_with("LTAI"));
    assert_eq!(k1.user.as_deref(), Some("alice"));
    assert_eq!(&k1.account_id, a);
    assert!(k1.enabled);
    let k2 = e.iam.create_access_key(a, Some("alice")).await.unwrap();
    assert_ne!(k1.id, k2.id);
    assert_ne!(k1.secret, k2.secret);
    assert_eq!(err(e.iam.create_access_key(a, Some("alice")).await), "409 LimitExceeded.User.AccessKey");
    // The limit is per user.
    let kb = e.iam.create_access_key(a, Some("bob")).await.unwrap();

    let listed = e.iam.list_access_keys(a, Some("alice")).await.unwrap();
    let mut ids: Vec<&str> = listed.iter().map(|k| k.id.as_str()).collect();
    ids.sort_unstable();
    let mut want = vec![k1.id.as_str(), k2.id.as_str()];
    want.sort_unstable();
    assert_eq!(ids, want);
    assert!(listed.iter().all(|k| k.secret.is_empty() && k.enabled && k.user.as_deref() == Some("alice")));
    // Root's keys are listed apart from users'.
    let root_keys = e.iam.list_access_keys(a, None).await.unwrap();
    assert_eq!(root_keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(), [e.root_key.id.as_str()]);
    assert_eq!(err(e.iam.list_access_keys(a, Some("nobody")).await), "404 EntityNotExist.User");
    assert_eq!(err(e.iam.create_access_key(a, Some("nobody")).await), "404 EntityNotExist.User");

    // Disable and re-enable.
    e.iam.set_access_key_enabled(a, Some("alice"), &k1.id, false).await.unwrap();
    let listed = e.iam.list_access_keys(a, Some("alice")).await.unwrap();
    assert!(!listed.iter().find(|k| k.id == k1.id).unwrap().enabled);
    assert!(listed.iter().find(|k| k.id == k2.id).unwrap().enabled);
    let stored = e.meta.get_access_key(&k1.id).await.unwrap().unwrap();
    assert!(!stored.enabled);
    assert_eq!(stored.secret, k1.secret, "disabling keeps the secret");
    e.iam.set_access_key_enabled(a, Some("alice"), &k1.id, true).await.unwrap();
    assert!(e.meta.get_access_key(&k1.id).await.unwrap().unwrap().enabled);

    // Another user's key, another account's key, and no key at all are not found.
    assert_eq!(
        err(e.iam.set_access_key_enabled(a, Some("bob"), &k1.id, false).await),
        "404 EntityNotExist.User.AccessKey"
    );
    assert_eq!(err(e.iam.delete_access_key(a, Some("alice"), &kb.id).await), "404 EntityNotExist.User.AccessKey");
    let (other, other_root) = e.iam.create_account("umbrella").await.unwrap();
    assert_eq!(
        err(e.iam.set_access_key_enabled(a, None, &other_root.id, false).await),
        "404 EntityNotExist.User.AccessKey"
    );
    assert_eq!(err(e.iam.delete_access_key(a, None, &other_root.id).await), "404 EntityNotExist.User.AccessKey");
    assert_eq!(
        err(e.iam.set_access_key_enabled(&other.id, None, &k1.id, false).await),
        "404 EntityNotExist.User.AccessKey"
    );
    assert_eq!(err(e.iam.delete_access_key(a, None, "LTAInosuchkey").await), "404 EntityNotExist.User.AccessKey");
    assert!(e.meta.get_access_key(&other_root.id).await.unwrap().unwrap().enabled);

    // Deleting makes room for a new one.
    e.iam.delete_access_key(a, Some("alice"), &k1.id).await.unwrap();
    assert_eq!(e.meta.get_access_key(&k1.id).await.unwrap(), None);
    assert_eq!(e.iam.list_access_keys(a, Some("alice")).await.unwrap().len(), 1);
    assert_eq!(err(e.iam.delete_access_key(a, Some("alice"), &k1.id).await), "404 EntityNotExist.User.AccessKey");
    e.iam.create_access_key(a, Some("alice")).await.unwrap();

    // Root keys: more are allowed, but not without bound.
    let mut created = 1;
    while e.iam.create_access_key(a, None).await.is_ok() {
        created += 1;
        assert!(created <= 100, "root keys are unbounded");
    }
    assert_eq!(err(e.iam.create_access_key(a, None).await), "409 LimitExceeded.User.AccessKey");
    assert_eq!(e.iam.list_access_keys(a, None).await.unwrap().len(), created);
}

// ---- groups -----------------------------------------------------------------------

#[tokio::test]
async fn groups_pass_their_policies_to_members() {
    let e = env().await;
    let a = &e.account;
    e.user("alice").await;
    e.user("bob").await;

    let devs = e.iam.create_group(a, "devs", "developers").await.unwrap();
    assert_eq!((devs.name.as_str(), devs.comments.as_str()), ("devs", "developers"));
    assert_eq!(err(e.iam.create_group(a, "devs", "").await), "409 EntityAlreadyExists.Group");
    assert_eq!(err(e.iam.create_group(a, "dev_s", "").await), "400 InvalidParameter.GroupName.InvalidChars");
    assert_eq!(err(e.iam.create_group(a, "", "").await), "400 InvalidParameter.GroupName.Length");
    assert_eq!(err(e.iam.create_group(a, &"g".repeat(65), "").await), "400 InvalidParameter.GroupName.Length");
    assert_eq!(e.iam.get_group(a, "devs").await.unwrap(), devs);
    assert_eq!(err(e.iam.get_group(a, "nope").await), "404 EntityNotExist.Group");

    e.iam.add_user_to_group(a, "alice", "devs").await.unwrap();
    e.iam.add_user_to_group(a, "bob", "devs").await.unwrap();
    assert_eq!(err(e.iam.add_user_to_group(a, "alice", "devs").await), "409 EntityAlreadyExists.User.Group");
    assert_eq!(err(e.iam.add_user_to_group(a, "alice", "nope").await), "404 EntityNotExist.Group");
    assert_eq!(err(e.iam.add_user_to_group(a, "nobody", "devs").await), "404 EntityNotExist.User");
    assert_eq!(e.iam.get_user(a, "alice").await.unwrap().groups, ["devs"]);
    let members: Vec<String> =
        e.iam.list_users_for_group(a, "devs").await.unwrap().into_iter().map(|u| u.name).collect();
    assert_eq!(members, ["alice", "bob"]);
    assert_eq!(err(e.iam.list_users_for_group(a, "nope").await), "404 EntityNotExist.Group");

    // Group policies reach members, after the user's own.
    e.policy("data-read", &allow(r#""oss:GetObject""#, "acs:oss:*:*:data/*")).await;
    e.iam.attach_policy(a, Target::Group("devs"), "Custom", "data-read").await.unwrap();
    e.iam.attach_policy(a, Target::User("alice"), "System", "AliyunKMSCryptoUserAccess").await.unwrap();
    assert_eq!(
        err(e.iam.attach_policy(a, Target::Group("devs"), "Custom", "data-read").await),
        "409 EntityAlreadyExists.Group.Policy"
    );
    assert_eq!(e.policy_names("alice").await, ["AliyunKMSCryptoUserAccess", "data-read"]);
    assert_eq!(e.policy_names("bob").await, ["data-read"]);
    assert_eq!(by(&e.sim(Some("bob"), "oss:GetObject", &e.obj("x")).await), "Allow data-read");
    assert_eq!(by(&e.sim(Some("bob"), "oss:PutObject", &e.obj("x")).await), "ImplicitDeny");
    let groups_policies = e.iam.list_policies_for(a, Target::Group("devs")).await.unwrap();
    assert_eq!(groups_policies.len(), 1);
    assert_eq!((groups_policies[0].policy_type.as_str(), groups_policies[0].name.as_str()), ("Custom", "data-read"));

    // A group with members or policies cannot be deleted.
    assert_eq!(err(e.iam.delete_group(a, "devs").await), "409 DeleteConflict.Group.User");
    e.iam.remove_user_from_group(a, "alice", "devs").await.unwrap();
    assert_eq!(err(e.iam.remove_user_from_group(a, "alice", "devs").await), "404 EntityNotExist.User.Group");
    // Leaving the group takes its policies away at once.
    assert_eq!(e.policy_names("alice").await, ["AliyunKMSCryptoUserAccess"]);
    assert_eq!(by(&e.sim(Some("alice"), "oss:GetObject", &e.obj("x")).await), "ImplicitDeny");
    assert_eq!(err(e.iam.delete_group(a, "devs").await), "409 DeleteConflict.Group.User");
    e.iam.remove_user_from_group(a, "bob", "devs").await.unwrap();
    assert_eq!(err(e.iam.delete_group(a, "devs").await), "409 DeleteConflict.Group.Policy");
    e.iam.detach_policy(a, Target::Group("devs"), "Custom", "data-read").await.unwrap();
    assert_eq!(
        err(e.iam.detach_policy(a, Target::Group("devs"), "Custom", "data-read").await),
        "404 EntityNotExist.Group.Policy"
    );
    e.iam.delete_group(a, "devs").await.unwrap();
    assert_eq!(err(e.iam.get_group(a, "devs").await), "404 EntityNotExist.Group");
    assert!(e.iam.list_groups(a).await.unwrap().is_empty());

    // At most five groups per user.
    for i in 1..=6 {
        e.iam.create_group(a, &format!("g{i}"), "").await.unwrap();
    }
    assert_eq!(e.iam.list_groups(a).await.unwrap().len(), 6);
    for i in 1..=5 {
        e.iam.add_user_to_group(a, "bob", &format!("g{i}")).await.unwrap();
    }
    assert_eq!(err(e.iam.add_user_to_group(a, "bob", "g6").await), "409 LimitExceeded.User.Group");
}

// ---- policies ---------------------------------------------------------------------

#[tokio::test]
async fn custom_policies_are_validated() {
    let e = env().await;
    let a = &e.account;
    let commented = r#"{
  "Version": "1",
  // reads
  "Statement": [{"Effect": "Allow", "Action": "oss:Get*", "Resource": "*"}]
}"#;
    let bad = e.iam.create_policy(a, "commented", commented, "").await.unwrap_err();
    assert_eq!((bad.status, bad.code.as_str()), (400, "MalformedPolicyDocument"));
    assert!(bad.message.contains("line 3"), "{bad}");
    assert!(bad.message.contains("comment"), "{bad}");
    let bad = e.iam.create_policy(a, "p", r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*"}]}"#, "").await;
    let bad = bad.unwrap_err();
    assert_eq!((bad.status, bad.code.as_str()), (400, "MalformedPolicyDocument"));
    assert!(bad.message.contains("line") && bad.message.contains("Resource"), "{bad}");
    // Identity policies name no Principal.
    let with_principal =
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Principal":["*"],"Action":"*","Resource":"*"}]}"#;
    assert_eq!(err(e.iam.create_policy(a, "p", with_principal, "").await), "400 MalformedPolicyDocument");
    assert_eq!(err(e.iam.create_policy(a, "p", "", "").await), "400 MalformedPolicyDocument");

    let long = format!(
        r#"{{"Version":"1","Statement":[{{"Sid":"{}","Effect":"Allow","Action":"*","Resource":"*"}}]}}"#,
        "s".repeat(MAX_POLICY_LEN)
    );
    assert_eq!(err(e.iam.create_policy(a, "p", &long, "").await), "400 InvalidParameter.PolicyDocument.Length");
    assert_eq!(
        err(e.iam.create_policy(a, "bad name", &numbered(1), "").await),
        "400 InvalidParameter.PolicyName.InvalidChars"
    );
    assert_eq!(err(e.iam.create_policy(a, "", &numbered(1), "").await), "400 InvalidParameter.PolicyName.Length");
    assert_eq!(
        err(e.iam.create_policy(a, "AdministratorAccess", &numbered(1), "").await),
        "409 EntityAlreadyExists.Policy"
    );
    // Nothing was stored by the failures.
    assert!(e.iam.list_policies(a, Some("Custom")).await.unwrap().is_empty());

    let p = e.iam.create_policy(a, "reader", &numbered(1), "reads objects").await.unwrap();
    assert_eq!(
        (p.name.as_str(), p.policy_type.as_str(), p.description.as_str()),
        ("reader", "Custom", "reads objects")
    );
    assert_eq!(p.default_version, "v1");
    assert_eq!(p.default_document(), numbered(1));
    assert_eq!(err(e.iam.create_policy(a, "reader", &numbered(2), "").await), "409 EntityAlreadyExists.Policy");
    assert_eq!(e.iam.get_policy(a, "Custom", "reader").await.unwrap(), p);
    assert_eq!(err(e.iam.get_policy(a, "Custom", "nope").await), "404 EntityNotExist.Policy");
    assert_eq!(err(e.iam.get_policy(a, "System", "nope").await), "404 EntityNotExist.Policy");
    assert_eq!(err(e.iam.get_policy(a, "Managed", "reader").await), "400 InvalidParameter.PolicyType");
    // Policies belong to their account.
    let (other, _) = e.iam.create_account("umbrella").await.unwrap();
    assert_eq!(err(e.iam.get_policy(&other.id, "Custom", "reader").await), "404 EntityNotExist.Policy");
}

#[tokio::test]
async fn policy_versions_rotate_and_the_default_is_protected() {
    let e = env().await;
    let a = &e.account;
    e.policy("p", &numbered(1)).await;
    for n in 2..=5 {
        let v = e.iam.create_policy_version(a, "p", &numbered(n), false, false).await.unwrap();
        assert_eq!(v.id, format!("v{n}"));
        assert_eq!(v.document, numbered(n));
    }
    let ids = |p: &arca_iam::StoredPolicy| p.versions.iter().map(|v| v.id.clone()).collect::<Vec<_>>();
    let p = e.iam.get_policy(a, "Custom", "p").await.unwrap();
    assert_eq!(ids(&p), ["v1", "v2", "v3", "v4", "v5"]);
    assert_eq!(p.default_version, "v1");
    assert_eq!(
        err(e.iam.create_policy_version(a, "p", &numbered(6), false, false).await),
        "409 LimitExceeded.Policy.Version"
    );
    assert_eq!(err(e.iam.create_policy_version(a, "p", "{", false, true).await), "400 MalformedPolicyDocument");
    assert_eq!(
        err(e.iam.create_policy_version(a, "nope", &numbered(6), false, false).await),
        "404 EntityNotExist.Policy"
    );

    // Rotation drops the oldest version that is not the default.
    let v6 = e.iam.create_policy_version(a, "p", &numbered(6), false, true).await.unwrap();
    assert_eq!(v6.id, "v6");
    let p = e.iam.get_policy(a, "Custom", "p").await.unwrap();
    assert_eq!(ids(&p), ["v1", "v3", "v4", "v5", "v6"]);
    assert_eq!(p.default_version, "v1");

    e.iam.set_default_policy_version(a, "p", "v4").await.unwrap();
    let p = e.iam.get_policy(a, "Custom", "p").await.unwrap();
    assert_eq!(p.default_version, "v4");
    assert_eq!(p.default_document(), numbered(4));
    assert_eq!(err(e.iam.set_default_policy_version(a, "p", "v2").await), "404 EntityNotExist.Policy.Version");

    // Now v1 is the oldest non-default; a rotating version can also become the default.
    let v7 = e.iam.create_policy_version(a, "p", &numbered(7), true, true).await.unwrap();
    assert_eq!(v7.id, "v7");
    let p = e.iam.get_policy(a, "Custom", "p").await.unwrap();
    assert_eq!(ids(&p), ["v3", "v4", "v5", "v6", "v7"]);
    assert_eq!(p.default_version, "v7");
    assert_eq!(p.default_document(), numbered(7));

    assert_eq!(err(e.iam.delete_policy_version(a, "p", "v7").await), "409 DeleteConflict.Policy.Version.Default");
    e.iam.delete_policy_version(a, "p", "v3").await.unwrap();
    assert_eq!(err(e.iam.delete_policy_version(a, "p", "v3").await), "404 EntityNotExist.Policy.Version");
    let p = e.iam.get_policy(a, "Custom", "p").await.unwrap();
    assert_eq!(ids(&p), ["v4", "v5", "v6", "v7"]);
    // Below the limit again: no rotation needed, numbering continues.
    let v8 = e.iam.create_policy_version(a, "p", &numbered(8), false, false).await.unwrap();
    assert_eq!(v8.id, "v8");
    assert_eq!(ids(&e.iam.get_policy(a, "Custom", "p").await.unwrap()), ["v4", "v5", "v6", "v7", "v8"]);
}

#[tokio::test]
async fn system_policies_are_listed_and_attachable() {
    let e = env().await;
    let a = &e.account;
    let system = e.iam.list_policies(a, Some("System")).await.unwrap();
    let names: Vec<&str> = system.iter().map(|p| p.name.as_str()).collect();
    let want: Vec<&str> = SYSTEM_POLICIES.iter().map(|(name, _, _)| *name).collect();
    assert_eq!(names, want);
    for required in ["AdministratorAccess", "AliyunOSSFullAccess", "AliyunOSSReadOnlyAccess", "AliyunKMSFullAccess"] {
        assert!(names.contains(&required), "{required}");
    }
    assert!(system.iter().all(|p| p.policy_type == "System" && p.default_version == "v1"));
    let read_only = e.iam.get_policy(a, "System", "AliyunOSSReadOnlyAccess").await.unwrap();
    assert!(read_only.default_document().contains("oss:Get*"));

    e.policy("custom-one", &numbered(1)).await;
    let all = e.iam.list_policies(a, None).await.unwrap();
    assert_eq!(all.len(), SYSTEM_POLICIES.len() + 1);
    assert!(all[..SYSTEM_POLICIES.len()].iter().all(|p| p.policy_type == "System"), "system first");
    assert_eq!(all.last().unwrap().name, "custom-one");
    let custom = e.iam.list_policies(a, Some("Custom")).await.unwrap();
    assert_eq!(custom.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["custom-one"]);

    e.user("alice").await;
    e.iam.create_group(a, "ops", "").await.unwrap();
    assert_eq!(e.iam.attachment_count(a, "System", "AliyunOSSReadOnlyAccess").await.unwrap(), 0);
    e.iam.attach_policy(a, Target::User("alice"), "System", "AliyunOSSReadOnlyAccess").await.unwrap();
    assert_eq!(
        err(e.iam.attach_policy(a, Target::User("alice"), "System", "AliyunOSSReadOnlyAccess").await),
        "409 EntityAlreadyExists.User.Policy"
    );
    assert_eq!(
        err(e.iam.attach_policy(a, Target::User("alice"), "System", "NoSuchPolicy").await),
        "404 EntityNotExist.Policy"
    );
    assert_eq!(
        err(e.iam.attach_policy(a, Target::User("alice"), "Custom", "AliyunOSSReadOnlyAccess").await),
        "404 EntityNotExist.Policy"
    );
    assert_eq!(
        err(e.iam.attach_policy(a, Target::User("nobody"), "System", "AliyunOSSReadOnlyAccess").await),
        "404 EntityNotExist.User"
    );
    assert_eq!(
        err(e.iam.attach_policy(a, Target::Group("nope"), "System", "AliyunOSSReadOnlyAccess").await),
        "404 EntityNotExist.Group"
    );
    e.iam.attach_policy(a, Target::Group("ops"), "System", "AliyunOSSReadOnlyAccess").await.unwrap();
    assert_eq!(e.iam.attachment_count(a, "System", "AliyunOSSReadOnlyAccess").await.unwrap(), 2);
    // The same name as another type does not count.
    assert_eq!(e.iam.attachment_count(a, "Custom", "AliyunOSSReadOnlyAccess").await.unwrap(), 0);

    let attached = e.iam.list_policies_for(a, Target::User("alice")).await.unwrap();
    assert_eq!(attached.len(), 1);
    assert_eq!((attached[0].policy_type.as_str(), attached[0].name.as_str()), ("System", "AliyunOSSReadOnlyAccess"));
    assert!(attached[0].attached > 0);
    assert_eq!(e.iam.get_user(a, "alice").await.unwrap().policies, attached);
    assert_eq!(err(e.iam.list_policies_for(a, Target::User("nobody")).await), "404 EntityNotExist.User");

    assert_eq!(by(&e.sim(Some("alice"), "oss:GetObject", &e.obj("k")).await), "Allow AliyunOSSReadOnlyAccess");
    let bucket = format!("acs:oss:cn-hangzhou:{a}:data");
    assert_eq!(by(&e.sim(Some("alice"), "oss:ListObjects", &bucket).await), "Allow AliyunOSSReadOnlyAccess");
    assert_eq!(by(&e.sim(Some("alice"), "oss:PutObject", &e.obj("k")).await), "ImplicitDeny");
    assert_eq!(
        err(e.iam.detach_policy(a, Target::User("alice"), "System", "AliyunOSSFullAccess").await),
        "404 EntityNotExist.User.Policy"
    );
}

#[tokio::test]
async fn attached_custom_policies_cannot_be_deleted() {
    let e = env().await;
    let a = &e.account;
    e.user("alice").await;
    e.iam.create_group(a, "ops", "").await.unwrap();
    e.policy("c1", &numbered(1)).await;
    e.iam.attach_policy(a, Target::User("alice"), "Custom", "c1").await.unwrap();
    e.iam.attach_policy(a, Target::Group("ops"), "Custom", "c1").await.unwrap();
    assert_eq!(e.iam.attachment_count(a, "Custom", "c1").await.unwrap(), 2);

    let conflict = e.iam.delete_policy(a, "c1").await.unwrap_err();
    assert_eq!(conflict.status, 409, "{conflict}");
    assert!(conflict.code.starts_with("DeleteConflict.Policy"), "{conflict}");
    e.iam.detach_policy(a, Target::User("alice"), "Custom", "c1").await.unwrap();
    let conflict = e.iam.delete_policy(a, "c1").await.unwrap_err();
    assert_eq!(conflict.status, 409, "attached to a group only: {conflict}");
    assert!(conflict.code.starts_with("DeleteConflict.Policy"), "{conflict}");
    e.iam.detach_policy(a, Target::Group("ops"), "Custom", "c1").await.unwrap();
    assert_eq!(e.iam.attachment_count(a, "Custom", "c1").await.unwrap(), 0);

    e.iam.delete_policy(a, "c1").await.unwrap();
    assert_eq!(err(e.iam.get_policy(a, "Custom", "c1").await), "404 EntityNotExist.Policy");
    assert_eq!(err(e.iam.delete_policy(a, "c1").await), "404 EntityNotExist.Policy");
    assert_eq!(err(e.iam.attach_policy(a, Target::User("alice"), "Custom", "c1").await), "404 EntityNotExist.Policy");
    // System policies are not deleted through delete_policy.
    assert_eq!(err(e.iam.delete_policy(a, "AdministratorAccess").await), "404 EntityNotExist.Policy");
}

// ---- authorization ----------------------------------------------------------------

#[tokio::test]
async fn simulate_names_the_deciding_policy() {
    let e = env().await;
    let a = &e.account;
    e.user("alice").await;
    e.policy(
        "no-delete",
        r#"{"Version":"1","Statement":[
            {"Sid":"NoDelete","Effect":"Deny","Action":"oss:DeleteObject","Resource":"*"}]}"#,
    )
    .await;
    e.policy(
        "intranet",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"oss:PutObject","Resource":"*",
            "Condition":{"IpAddress":{"acs:SourceIp":"10.0.0.0/8"}}}]}"#,
    )
    .await;
    e.iam.attach_policy(a, Target::User("alice"), "System", "AliyunOSSReadOnlyAccess").await.unwrap();
    e.iam.attach_policy(a, Target::User("alice"), "Custom", "no-delete").await.unwrap();
    e.iam.attach_policy(a, Target::User("alice"), "Custom", "intranet").await.unwrap();

    let read = e.sim(Some("alice"), "oss:GetObject", &e.obj("a")).await;
    assert_eq!(read, Decision::Allow(Matched { policy: "AliyunOSSReadOnlyAccess".into(), statement: 0, sid: None }));
    assert_eq!(by(&e.sim(Some("alice"), "oss:PutObject", &e.obj("a")).await), "ImplicitDeny");
    assert_eq!(by(&e.sim(Some("alice"), "kms:Decrypt", &e.obj("a")).await), "ImplicitDeny");

    // Full access does not override the explicit Deny.
    e.iam.attach_policy(a, Target::User("alice"), "System", "AliyunOSSFullAccess").await.unwrap();
    let delete = e.sim(Some("alice"), "oss:DeleteObject", &e.obj("a")).await;
    assert_eq!(
        delete,
        Decision::Deny(Matched { policy: "no-delete".into(), statement: 0, sid: Some("NoDelete".into()) })
    );
    assert_eq!(by(&e.sim(Some("alice"), "oss:PutObject", &e.obj("a")).await), "Allow AliyunOSSFullAccess");

    // Conditions see the simulated context.
    e.iam.detach_policy(a, Target::User("alice"), "System", "AliyunOSSFullAccess").await.unwrap();
    let inside = Context::new().with("acs:SourceIp", "10.1.2.3");
    let outside = Context::new().with("acs:SourceIp", "192.0.2.1");
    let object = e.obj("a");
    let d = e.iam.simulate(a, Some("alice"), "oss:PutObject", &object, &inside).await.unwrap();
    assert_eq!(by(&d), "Allow intranet");
    let d = e.iam.simulate(a, Some("alice"), "oss:PutObject", &object, &outside).await.unwrap();
    assert_eq!(by(&d), "ImplicitDeny");

    // Another account's resources take a resource policy.
    let theirs = "acs:oss:cn-hangzhou:1999999999999999:data/a";
    assert_eq!(by(&e.sim(Some("alice"), "oss:GetObject", theirs).await), "ImplicitDeny");
    // Root may do anything in its own account, and nothing in another.
    assert_eq!(by(&e.sim(None, "oss:DeleteObject", &e.obj("a")).await), "Allow account owner");
    assert_eq!(by(&e.sim(None, "oss:GetObject", theirs).await), "ImplicitDeny");
    assert_eq!(
        err(e.iam.simulate(a, Some("nobody"), "oss:GetObject", &e.obj("a"), &Context::new()).await),
        "404 EntityNotExist.User"
    );
}

#[tokio::test]
async fn policy_changes_take_effect_at_once() {
    let e = env().await;
    let a = &e.account;
    e.user("carol").await;
    e.policy("rw", &allow(r#""oss:GetObject""#, "*")).await;
    e.iam.attach_policy(a, Target::User("carol"), "Custom", "rw").await.unwrap();
    let object = e.obj("a");

    // Warm the cache.
    assert_eq!(e.policy_names("carol").await, ["rw"]);
    assert_eq!(by(&e.sim(Some("carol"), "oss:GetObject", &object).await), "Allow rw");
    assert_eq!(by(&e.sim(Some("carol"), "oss:PutObject", &object).await), "ImplicitDeny");

    // A new version that is not the default changes nothing.
    e.iam.create_policy_version(a, "rw", &allow(r#""oss:PutObject""#, "*"), false, false).await.unwrap();
    assert_eq!(by(&e.sim(Some("carol"), "oss:GetObject", &object).await), "Allow rw");
    assert_eq!(by(&e.sim(Some("carol"), "oss:PutObject", &object).await), "ImplicitDeny");

    // Making it the default does, immediately.
    e.iam.set_default_policy_version(a, "rw", "v2").await.unwrap();
    assert_eq!(by(&e.sim(Some("carol"), "oss:PutObject", &object).await), "Allow rw");
    assert_eq!(by(&e.sim(Some("carol"), "oss:GetObject", &object).await), "ImplicitDeny");
    let policies = e.iam.user_policies(a, "carol").await.unwrap();
    assert_eq!(policies.len(), 1);
    assert_eq!(policies[0].policy.statements[0].actions.values, ["oss:PutObject"]);

    // A new default version through create_policy_version.
    e.iam
        .create_policy_version(a, "rw", &allow(r#"["oss:GetObject","oss:PutObject"]"#, "*"), true, false)
        .await
        .unwrap();
    assert_eq!(by(&e.sim(Some("carol"), "oss:GetObject", &object).await), "Allow rw");
    assert_eq!(by(&e.sim(Some("carol"), "oss:PutObject", &object).await), "Allow rw");

    // Attaching and detaching.
    e.iam.attach_policy(a, Target::User("carol"), "System", "AliyunKMSFullAccess").await.unwrap();
    assert_eq!(e.policy_names("carol").await, ["rw", "AliyunKMSFullAccess"]);
    assert_eq!(by(&e.sim(Some("carol"), "kms:Decrypt", &object).await), "Allow AliyunKMSFullAccess");
    e.iam.detach_policy(a, Target::User("carol"), "Custom", "rw").await.unwrap();
    assert_eq!(e.policy_names("carol").await, ["AliyunKMSFullAccess"]);
    assert_eq!(by(&e.sim(Some("carol"), "oss:GetObject", &object).await), "ImplicitDeny");
    e.iam.detach_policy(a, Target::User("carol"), "System", "AliyunKMSFullAccess").await.unwrap();
    assert!(e.iam.user_policies(a, "carol").await.unwrap().is_empty());

    // A group gained later counts at once too.
    e.iam.create_group(a, "readers", "").await.unwrap();
    e.iam.attach_policy(a, Target::Group("readers"), "System", "AliyunOSSReadOnlyAccess").await.unwrap();
    assert_eq!(by(&e.sim(Some("carol"), "oss:GetObject", &object).await), "ImplicitDeny");
    e.iam.add_user_to_group(a, "carol", "readers").await.unwrap();
    assert_eq!(by(&e.sim(Some("carol"), "oss:GetObject", &object).await), "Allow AliyunOSSReadOnlyAccess");
}

#[tokio::test]
async fn changes_made_elsewhere_show_within_the_cache_ttl() {
    let e = env().await;
    let a = &e.account;
    // A second directory over the same store, as another process would have.
    let elsewhere = Iam::new(e.meta.clone());
    e.user("dave").await;
    e.policy("rw", &allow(r#""oss:GetObject""#, "*")).await;
    e.iam.attach_policy(a, Target::User("dave"), "Custom", "rw").await.unwrap();
    assert_eq!(elsewhere.user_policies(a, "dave").await.unwrap().len(), 1);

    e.iam.detach_policy(a, Target::User("dave"), "Custom", "rw").await.unwrap();
    assert!(e.iam.user_policies(a, "dave").await.unwrap().is_empty(), "local writes invalidate at once");
    tokio::time::sleep(POLICY_CACHE_TTL + std::time::Duration::from_millis(200)).await;
    assert!(elsewhere.user_policies(a, "dave").await.unwrap().is_empty(), "others see it after the TTL");
    let d = elsewhere.simulate(a, Some("dave"), "oss:GetObject", &e.obj("a"), &Context::new()).await.unwrap();
    assert_eq!(d, Decision::ImplicitDeny);
}

#[tokio::test]
async fn access_keys_resolve_to_identities() {
    let e = env().await;
    let a = &e.account;
    let alice = e.user("alice").await;
    e.iam.create_group(a, "devs", "").await.unwrap();
    e.iam.add_user_to_group(a, "alice", "devs").await.unwrap();
    e.iam.attach_policy(a, Target::Group("devs"), "System", "AliyunOSSReadOnlyAccess").await.unwrap();
    e.policy(
        "no-secrets",
        r#"{"Version":"1","Statement":[{"Effect":"Deny","Action":"oss:*","Resource":"acs:oss:*:*:data/secret/*"}]}"#,
    )
    .await;
    e.iam.attach_policy(a, Target::User("alice"), "Custom", "no-secrets").await.unwrap();
    let key = e.iam.create_access_key(a, Some("alice")).await.unwrap();

    let id = e.iam.identity(&key).await.unwrap();
    assert_eq!(
        id.principal,
        Principal::User { account: a.clone(), user_id: alice.user_id.clone(), name: "alice".into() }
    );
    assert_eq!(id.access_key_id.as_deref(), Some(key.id.as_str()));
    assert_eq!(id.principal.ids(), vec![alice.user_id.clone(), format!("acs:ram::{a}:user/alice")]);
    assert_eq!(id.principal.arn(), format!("acs:ram::{a}:user/alice"));
    let names: Vec<&str> = id.policies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["no-secrets", "AliyunOSSReadOnlyAccess"]);

    let ctx = Context::new();
    assert_eq!(by(&id.decide("oss:GetObject", &e.obj("a"), &ctx)), "Allow AliyunOSSReadOnlyAccess");
    assert_eq!(by(&id.decide("oss:GetObject", &e.obj("secret/a"), &ctx)), "Deny no-secrets");
    assert_eq!(by(&id.decide("oss:PutObject", &e.obj("a"), &ctx)), "ImplicitDeny");
    assert_eq!(by(&id.decide("oss:GetObject", "acs:oss:cn-hangzhou:1999999999999999:data/a", &ctx)), "ImplicitDeny");

    // The same key through the listing (secret blanked) resolves the same.
    let listed = e.iam.list_access_keys(a, Some("alice")).await.unwrap().remove(0);
    assert_eq!(e.iam.identity(&listed).await.unwrap().principal, id.principal);

    // A key naming a user that does not exist resolves to nothing.
    let ghost = AccessKey { user: Some("ghost".into()), id: "LTAIghost".into(), ..key.clone() };
    assert_eq!(err(e.iam.identity(&ghost).await), "404 EntityNotExist.User");
}

// ---- passwords --------------------------------------------------------------------

#[tokio::test]
async fn console_passwords() {
    let e = env().await;
    let a = &e.account;
    e.user("alice").await;
    e.user("bob").await;
    let password = "correct horse 42";

    // No password set: nothing verifies.
    assert_eq!(e.iam.verify_password(a, "alice", "").await.unwrap(), None);
    assert_eq!(e.iam.verify_password(a, "alice", password).await.unwrap(), None);

    assert_eq!(err(e.iam.set_password(a, "alice", Some("short")).await), "400 InvalidParameter.Password.Length");
    assert_eq!(
        err(e.iam.set_password(a, "alice", Some("p".repeat(33).as_str())).await),
        "400 InvalidParameter.Password.Length"
    );
    assert_eq!(err(e.iam.set_password(a, "nobody", Some(password)).await), "404 EntityNotExist.User");
    e.iam.set_password(a, "alice", Some(password)).await.unwrap();

    let user = e.iam.verify_password(a, "alice", password).await.unwrap().expect("the right password verifies");
    assert_eq!(user.name, "alice");
    assert!(user.has_password());
    assert_eq!(e.iam.verify_password(a, "alice", "correct horse 43").await.unwrap(), None);
    assert_eq!(e.iam.verify_password(a, "alice", "").await.unwrap(), None);
    assert_eq!(e.iam.verify_password(a, "bob", password).await.unwrap(), None, "bob has no password");
    assert_eq!(e.iam.verify_password(a, "nobody", password).await.unwrap(), None);
    let (other, _) = e.iam.create_account("umbrella").await.unwrap();
    assert_eq!(e.iam.verify_password(&other.id, "alice", password).await.unwrap(), None);

    // The stored form is a salted hash, never shown by Debug.
    let body = e.meta.iam_get(a, "user", "alice").await.unwrap().unwrap();
    let stored: serde_json::Value = serde_json::from_str(&body).unwrap();
    let hash = stored["password"].as_str().expect("a stored hash").to_owned();
    assert!(hash.starts_with("pbkdf2-sha256$"), "{hash}");
    assert!(!hash.contains(password));
    let user = e.iam.get_user(a, "alice").await.unwrap();
    for shown in [format!("{user:?}"), format!("{user:#?}"), format!("{:?}", Some(&user))] {
        assert!(!shown.contains(&hash), "{shown}");
        assert!(!shown.contains("pbkdf2"), "{shown}");
        assert!(!shown.contains(password), "{shown}");
        assert!(shown.contains("alice"), "{shown}");
    }
    // Setting the same password again uses a fresh salt.
    e.iam.set_password(a, "alice", Some(password)).await.unwrap();
    let body = e.meta.iam_get(a, "user", "alice").await.unwrap().unwrap();
    let again: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_ne!(again["password"].as_str().unwrap(), hash);
    assert!(e.iam.verify_password(a, "alice", password).await.unwrap().is_some());

    // Other updates keep the password.
    e.iam.update_user(a, "alice", Some("Alice"), None).await.unwrap();
    assert!(e.iam.verify_password(a, "alice", password).await.unwrap().is_some());

    // Removing it.
    e.iam.set_password(a, "alice", None).await.unwrap();
    assert_eq!(e.iam.verify_password(a, "alice", password).await.unwrap(), None);
    assert!(!e.iam.get_user(a, "alice").await.unwrap().has_password());
}
