//! Identities and authorization.
//!
//! - [`policy`]: the RAM policy language, parsed with positions for errors;
//! - [`eval`]: evaluation as a pure function returning the deciding statement;
//! - [`Iam`]: accounts, RAM users, groups, access keys, custom and system
//!   policies, stored through the metadata store;
//! - [`audit`]: the audit log.
//!
//! Dialects authenticate a request's signature with an [`AccessKey`]'s
//! secret, then turn the key into an [`Identity`] with [`Iam::identity`].

#![warn(missing_docs)]

pub mod audit;
pub mod eval;
pub mod policy;
mod system;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arca_meta::{AccessKey, Account, MetaError, MetaStore};
use serde::{Deserialize, Serialize};

pub use audit::{Audit, AuditEvent};
pub use eval::{Context, Decision, Matched, NamedPolicy, Request, evaluate};
pub use policy::{Policy, PolicyError, PolicyKind};
pub use system::SYSTEM_POLICIES;

/// How long a RAM user's resolved policies may be served from memory.
/// Changes made through this process invalidate at once; changes made by
/// another process (the `arca admin` CLI, another node) show within this bound.
pub const POLICY_CACHE_TTL: Duration = Duration::from_secs(1);
/// Access keys per RAM user (as in RAM).
pub const MAX_KEYS_PER_USER: usize = 2;
/// Versions kept per custom policy.
pub const MAX_POLICY_VERSIONS: usize = 5;
/// Largest custom policy document, in characters.
pub const MAX_POLICY_LEN: usize = 6144;

const PBKDF2_ITERATIONS: u32 = 100_000;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No signature.
    Anonymous,
    /// An account's root identity.
    Root {
        /// Account UID.
        account: String,
    },
    /// A RAM user.
    User {
        /// The user's account.
        account: String,
        /// The user's UID.
        user_id: String,
        /// The user's name.
        name: String,
    },
}

impl Principal {
    /// The account acted for; `None` for anonymous callers.
    pub fn account(&self) -> Option<&str> {
        match self {
            Principal::Anonymous => None,
            Principal::Root { account } | Principal::User { account, .. } => Some(account),
        }
    }

    /// `acs:ram::{account}:root`, `acs:ram::{account}:user/{name}` or `anonymous`.
    pub fn arn(&self) -> String {
        match self {
            Principal::Anonymous => "anonymous".into(),
            Principal::Root { account } => format!("acs:ram::{account}:root"),
            Principal::User { account, name, .. } => format!("acs:ram::{account}:user/{name}"),
        }
    }

    /// The ids a bucket policy's `Principal` may name this caller by: the
    /// account or user UID, or its RAM ARN.
    pub fn ids(&self) -> Vec<String> {
        match self {
            Principal::Anonymous => Vec::new(),
            Principal::Root { account } => vec![account.clone(), format!("acs:ram::{account}:root")],
            Principal::User { user_id, account, name } => {
                vec![user_id.clone(), format!("acs:ram::{account}:user/{name}")]
            }
        }
    }
}

/// An authenticated caller with its identity policies resolved.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Who.
    pub principal: Principal,
    /// The access key used, if any.
    pub access_key_id: Option<String>,
    /// Identity policies (a user's own and its groups'); empty for root and anonymous.
    pub policies: Arc<[NamedPolicy]>,
}

impl Identity {
    /// The anonymous caller.
    pub fn anonymous() -> Self {
        Identity { principal: Principal::Anonymous, access_key_id: None, policies: Arc::new([]) }
    }

    /// An account's root identity.
    pub fn root(account: impl Into<String>) -> Self {
        Identity { principal: Principal::Root { account: account.into() }, access_key_id: None, policies: Arc::new([]) }
    }

    /// Evaluates the caller's identity policies: root has every right on its
    /// own account's resources; a user what its policies allow on its own
    /// account's resources; nobody anything on another account's (that takes
    /// a resource policy, evaluated by the service that owns it).
    pub fn decide(&self, action: &str, resource: &str, context: &Context) -> Decision {
        let owner = resource.split(':').nth(3).unwrap_or("");
        match &self.principal {
            Principal::Root { account } if owner == account || owner == "*" || owner.is_empty() => {
                Decision::Allow(Matched { policy: "account owner".into(), statement: 0, sid: None })
            }
            Principal::User { account, .. } if owner == account || owner == "*" || owner.is_empty() => {
                evaluate(self.policies.iter(), &Request { action, resource, context, principal_ids: None })
            }
            // Another account's resource: the caller's own Deny still
            // applies, its Allow grants nothing (that takes the owner's policy).
            _ => match evaluate(self.policies.iter(), &Request { action, resource, context, principal_ids: None }) {
                Decision::Deny(m) => Decision::Deny(m),
                _ => Decision::ImplicitDeny,
            },
        }
    }
}

/// An identity-management error, in RAM's terms (spec C5).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct IamError {
    /// HTTP status.
    pub status: u16,
    /// RAM error code, e.g. `EntityNotExist.User`.
    pub code: String,
    /// Human-readable message.
    pub message: String,
}

impl IamError {
    fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        IamError { status, code: code.into(), message: message.into() }
    }

    fn not_found(what: &str, name: &str) -> Self {
        Self::new(
            404,
            &format!("EntityNotExist.{what}"),
            format!("The {} does not exist: {name}.", what.to_lowercase()),
        )
    }

    fn exists(what: &str, name: &str) -> Self {
        Self::new(
            409,
            &format!("EntityAlreadyExists.{what}"),
            format!("The {} already exists: {name}.", what.to_lowercase()),
        )
    }

    fn invalid(code: &str, message: impl Into<String>) -> Self {
        Self::new(400, &format!("InvalidParameter.{code}"), message)
    }
}

impl From<MetaError> for IamError {
    fn from(e: MetaError) -> Self {
        IamError::new(500, "InternalError", e.to_string())
    }
}

/// A policy attached to a user or group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// `System` or `Custom`.
    pub policy_type: String,
    /// The policy's name.
    pub name: String,
    /// When it was attached.
    pub attached: i64,
}

/// A RAM user. `Debug` never shows the password hash.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Numeric UID (bucket policies name users by it).
    pub user_id: String,
    /// Unique name in the account.
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// Free text.
    pub comments: String,
    /// Creation time.
    pub created: i64,
    /// Last change.
    pub updated: i64,
    /// Groups the user is in.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Policies attached to the user directly.
    #[serde(default)]
    pub policies: Vec<Attachment>,
    /// Console password: `pbkdf2-sha256$iterations$salt$hash` (base64).
    #[serde(default)]
    password: Option<String>,
}

impl User {
    /// Whether the user may sign in to the console with a password.
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// Changes whenever the password is set, changed or removed (the hash's
    /// random salt), so sessions signed in with an older password can end.
    pub fn password_stamp(&self) -> Option<&str> {
        self.password.as_deref().and_then(|h| h.split('$').nth(2))
    }
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("groups", &self.groups)
            .field("policies", &self.policies)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A user group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Unique name in the account.
    pub name: String,
    /// Free text.
    pub comments: String,
    /// Creation time.
    pub created: i64,
    /// Policies attached to the group (and so to its members).
    #[serde(default)]
    pub policies: Vec<Attachment>,
}

/// One version of a custom policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    /// `v1`, `v2`, …
    pub id: String,
    /// The document as written.
    pub document: String,
    /// Creation time.
    pub created: i64,
}

/// A policy (custom, or a system one rendered the same way).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPolicy {
    /// Name.
    pub name: String,
    /// `Custom` or `System`.
    pub policy_type: String,
    /// Description.
    pub description: String,
    /// Creation time.
    pub created: i64,
    /// Last change.
    pub updated: i64,
    /// The version in force.
    pub default_version: String,
    /// Versions, oldest first.
    pub versions: Vec<PolicyVersion>,
    /// Number for the next version.
    pub next_version: u32,
}

impl StoredPolicy {
    /// The version in force.
    pub fn default_document(&self) -> &str {
        self.versions.iter().find(|v| v.id == self.default_version).map(|v| v.document.as_str()).unwrap_or("")
    }
}

/// A user or a group, as a policy attachment target.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// A RAM user by name.
    User(&'a str),
    /// A group by name.
    Group(&'a str),
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn random_digits(first: char, len: usize) -> String {
    let mut s = String::with_capacity(len);
    s.push(first);
    while s.len() < len {
        s.push(char::from(b'0' + rand::random_range(0..10u8)));
    }
    s
}

/// Random alphanumeric text (access key ids and secrets).
pub fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect()
}

fn check_name(code: &str, name: &str, max: usize, extra: &[char]) -> Result<(), IamError> {
    if name.is_empty() || name.len() > max {
        return Err(IamError::invalid(&format!("{code}.Length"), format!("The name must be 1 to {max} characters.")));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(&c)) {
        return Err(IamError::invalid(
            &format!("{code}.InvalidChars"),
            format!("The name {name:?} may only contain letters, digits and {extra:?}."),
        ));
    }
    Ok(())
}

fn to_json<T: Serialize>(v: &T) -> Result<String, IamError> {
    serde_json::to_string(v).map_err(|e| IamError::new(500, "InternalError", e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, IamError> {
    serde_json::from_str(s).map_err(|e| IamError::new(500, "InternalError", e.to_string()))
}

/// Parses a custom policy document, mapping errors to RAM's code.
pub fn parse_identity_policy(document: &str) -> Result<Policy, IamError> {
    if document.chars().count() > MAX_POLICY_LEN {
        return Err(IamError::invalid(
            "PolicyDocument.Length",
            format!("The policy document must be at most {MAX_POLICY_LEN} characters."),
        ));
    }
    Policy::parse(document, PolicyKind::Identity)
        .map_err(|e| IamError::new(400, "MalformedPolicyDocument", format!("The policy document is malformed: {e}")))
}

type PolicyCache = HashMap<(String, String), (Instant, Arc<[NamedPolicy]>)>;

/// The identity directory.
pub struct Iam {
    meta: Arc<dyn MetaStore>,
    system: Vec<(StoredPolicy, NamedPolicy)>,
    cache: Mutex<PolicyCache>,
    /// Serializes read-modify-write of identity records in this process.
    write: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Iam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iam").finish_non_exhaustive()
    }
}

impl Iam {
    /// The directory over `meta`.
    pub fn new(meta: Arc<dyn MetaStore>) -> Self {
        let system = SYSTEM_POLICIES
            .iter()
            .map(|(name, description, document)| {
                let policy = Policy::parse(document, PolicyKind::Identity).expect("system policies are valid");
                let stored = StoredPolicy {
                    name: (*name).into(),
                    policy_type: "System".into(),
                    description: (*description).into(),
                    created: 0,
                    updated: 0,
                    default_version: "v1".into(),
                    versions: vec![PolicyVersion { id: "v1".into(), document: (*document).into(), created: 0 }],
                    next_version: 2,
                };
                (stored, NamedPolicy { name: (*name).into(), policy: Arc::new(policy) })
            })
            .collect();
        Iam { meta, system, cache: Mutex::default(), write: tokio::sync::Mutex::new(()) }
    }

    fn invalidate(&self) {
        if let Ok(mut c) = self.cache.lock() {
            c.clear();
        }
    }

    // ---- accounts ----------------------------------------------------------

    /// Creates an account (tenant) and its first root access key (the
    /// secret is in the returned key, and nowhere else readable).
    pub async fn create_account(&self, name: &str) -> Result<(Account, AccessKey), IamError> {
        check_name("AccountName", name, 64, &['-', '_', '.'])?;
        let _guard = self.write.lock().await;
        if self.meta.list_accounts().await?.iter().any(|a| a.name == name) {
            return Err(IamError::exists("Account", name));
        }
        let account = Account { id: random_digits('1', 16), name: name.into(), created: now() };
        self.meta.ensure_account(account.clone()).await?;
        let key = new_key(&account.id, None);
        self.meta.put_access_key(key.clone()).await?;
        Ok((account, key))
    }

    /// Every account.
    pub async fn list_accounts(&self) -> Result<Vec<Account>, IamError> {
        Ok(self.meta.list_accounts().await?)
    }

    // ---- users -------------------------------------------------------------

    async fn load<T: serde::de::DeserializeOwned>(&self, account: &str, kind: &str, name: &str) -> Result<T, IamError> {
        let what = match kind {
            "user" => "User",
            "group" => "Group",
            _ => "Policy",
        };
        let body = self.meta.iam_get(account, kind, name).await?.ok_or_else(|| IamError::not_found(what, name))?;
        from_json(&body)
    }

    async fn save<T: Serialize>(&self, account: &str, kind: &str, name: &str, v: &T) -> Result<(), IamError> {
        self.meta.iam_put(account, kind, name, &to_json(v)?, false).await?;
        self.invalidate();
        Ok(())
    }

    /// Creates a RAM user.
    pub async fn create_user(
        &self,
        account: &str,
        name: &str,
        display_name: &str,
        comments: &str,
    ) -> Result<User, IamError> {
        check_name("UserName", name, 64, &['.', '_', '-'])?;
        if display_name.chars().count() > 128 || comments.chars().count() > 128 {
            return Err(IamError::invalid(
                "DisplayName.Length",
                "Display name and comments are at most 128 characters.",
            ));
        }
        let t = now();
        let user = User {
            user_id: random_digits('2', 16),
            name: name.into(),
            display_name: if display_name.is_empty() { name.into() } else { display_name.into() },
            comments: comments.into(),
            created: t,
            updated: t,
            groups: Vec::new(),
            policies: Vec::new(),
            password: None,
        };
        let _guard = self.write.lock().await;
        if !self.meta.iam_put(account, "user", name, &to_json(&user)?, true).await? {
            return Err(IamError::exists("User", name));
        }
        Ok(user)
    }

    /// One user.
    pub async fn get_user(&self, account: &str, name: &str) -> Result<User, IamError> {
        self.load(account, "user", name).await
    }

    /// Every user, by name.
    pub async fn list_users(&self, account: &str) -> Result<Vec<User>, IamError> {
        self.meta.iam_list(account, "user").await?.iter().map(|b| from_json(b)).collect()
    }

    /// Changes a user's display name and comments.
    pub async fn update_user(
        &self,
        account: &str,
        name: &str,
        display_name: Option<&str>,
        comments: Option<&str>,
    ) -> Result<User, IamError> {
        if display_name.is_some_and(|d| d.chars().count() > 128) || comments.is_some_and(|c| c.chars().count() > 128) {
            return Err(IamError::invalid(
                "DisplayName.Length",
                "Display name and comments are at most 128 characters.",
            ));
        }
        let _guard = self.write.lock().await;
        let mut user: User = self.load(account, "user", name).await?;
        if let Some(d) = display_name {
            user.display_name = d.into();
        }
        if let Some(c) = comments {
            user.comments = c.into();
        }
        user.updated = now();
        self.save(account, "user", name, &user).await?;
        Ok(user)
    }

    /// Deletes a user that has no access keys, policies or groups left (as RAM does).
    pub async fn delete_user(&self, account: &str, name: &str) -> Result<(), IamError> {
        let _guard = self.write.lock().await;
        let user: User = self.load(account, "user", name).await?;
        if self.meta.list_access_keys(account).await?.iter().any(|k| k.user.as_deref() == Some(name)) {
            return Err(IamError::new(409, "DeleteConflict.User.AccessKey", "The user still has access keys."));
        }
        if !user.policies.is_empty() {
            return Err(IamError::new(409, "DeleteConflict.User.Policy", "The user still has policies attached."));
        }
        if !user.groups.is_empty() {
            return Err(IamError::new(409, "DeleteConflict.User.Group", "The user is still in groups."));
        }
        self.meta.iam_delete(account, "user", name).await?;
        self.invalidate();
        Ok(())
    }

    /// Sets (or with `None` removes) a user's console password.
    pub async fn set_password(&self, account: &str, name: &str, password: Option<&str>) -> Result<(), IamError> {
        if let Some(p) = password
            && !(8..=32).contains(&p.chars().count())
        {
            return Err(IamError::invalid("Password.Length", "A password has 8 to 32 characters."));
        }
        let _guard = self.write.lock().await;
        let mut user: User = self.load(account, "user", name).await?;
        user.password = password.map(hash_password);
        user.updated = now();
        self.save(account, "user", name, &user).await
    }

    /// Checks a user's console password (in constant time).
    pub async fn verify_password(&self, account: &str, name: &str, password: &str) -> Result<Option<User>, IamError> {
        let user: Option<User> = match self.load(account, "user", name).await {
            Ok(u) => Some(u),
            Err(e) if e.status == 404 => None,
            Err(e) => return Err(e),
        };
        // Unknown users and users without a password cost the same hashing
        // work as a wrong password, so timing does not tell them apart.
        let stored = user.as_ref().and_then(|u| u.password.clone()).unwrap_or_else(|| DUMMY_HASH.clone());
        let ok = verify_password(&stored, password) && user.as_ref().is_some_and(|u| u.password.is_some());
        Ok(user.filter(|_| ok))
    }

    // ---- groups ------------------------------------------------------------

    /// Creates a group.
    pub async fn create_group(&self, account: &str, name: &str, comments: &str) -> Result<Group, IamError> {
        check_name("GroupName", name, 64, &['-'])?;
        let group = Group { name: name.into(), comments: comments.into(), created: now(), policies: Vec::new() };
        let _guard = self.write.lock().await;
        if !self.meta.iam_put(account, "group", name, &to_json(&group)?, true).await? {
            return Err(IamError::exists("Group", name));
        }
        Ok(group)
    }

    /// One group.
    pub async fn get_group(&self, account: &str, name: &str) -> Result<Group, IamError> {
        self.load(account, "group", name).await
    }

    /// Every group.
    pub async fn list_groups(&self, account: &str) -> Result<Vec<Group>, IamError> {
        self.meta.iam_list(account, "group").await?.iter().map(|b| from_json(b)).collect()
    }

    /// Members of a group.
    pub async fn list_users_for_group(&self, account: &str, group: &str) -> Result<Vec<User>, IamError> {
        self.get_group(account, group).await?;
        Ok(self.list_users(account).await?.into_iter().filter(|u| u.groups.iter().any(|g| g == group)).collect())
    }

    /// Deletes an empty group with no policies.
    pub async fn delete_group(&self, account: &str, name: &str) -> Result<(), IamError> {
        let _guard = self.write.lock().await;
        let group: Group = self.load(account, "group", name).await?;
        if self.list_users(account).await?.iter().any(|u| u.groups.iter().any(|g| g == name)) {
            return Err(IamError::new(409, "DeleteConflict.Group.User", "The group still has members."));
        }
        if !group.policies.is_empty() {
            return Err(IamError::new(409, "DeleteConflict.Group.Policy", "The group still has policies attached."));
        }
        self.meta.iam_delete(account, "group", name).await?;
        self.invalidate();
        Ok(())
    }

    /// Adds a user to a group (at most 5 groups per user).
    pub async fn add_user_to_group(&self, account: &str, user: &str, group: &str) -> Result<(), IamError> {
        let _guard = self.write.lock().await;
        self.load::<Group>(account, "group", group).await?;
        let mut u: User = self.load(account, "user", user).await?;
        if u.groups.iter().any(|g| g == group) {
            return Err(IamError::exists("User.Group", &format!("{user} in {group}")));
        }
        if u.groups.len() >= 5 {
            return Err(IamError::new(409, "LimitExceeded.User.Group", "A user is in at most 5 groups."));
        }
        u.groups.push(group.into());
        self.save(account, "user", user, &u).await
    }

    /// Removes a user from a group.
    pub async fn remove_user_from_group(&self, account: &str, user: &str, group: &str) -> Result<(), IamError> {
        let _guard = self.write.lock().await;
        let mut u: User = self.load(account, "user", user).await?;
        let before = u.groups.len();
        u.groups.retain(|g| g != group);
        if u.groups.len() == before {
            return Err(IamError::not_found("User.Group", &format!("{user} in {group}")));
        }
        self.save(account, "user", user, &u).await
    }

    // ---- access keys -------------------------------------------------------

    /// Creates an access key for a user (or, with `None`, for the root
    /// identity). The secret is returned here only.
    pub async fn create_access_key(&self, account: &str, user: Option<&str>) -> Result<AccessKey, IamError> {
        let _guard = self.write.lock().await;
        if let Some(u) = user {
            self.load::<User>(account, "user", u).await?;
        }
        let existing = self.meta.list_access_keys(account).await?;
        let limit = if user.is_some() { MAX_KEYS_PER_USER } else { 5 };
        if existing.iter().filter(|k| k.user.as_deref() == user).count() >= limit {
            return Err(IamError::new(
                409,
                "LimitExceeded.User.AccessKey",
                format!("At most {limit} access keys per identity; delete one first."),
            ));
        }
        let key = new_key(account, user);
        self.meta.put_access_key(key.clone()).await?;
        Ok(key)
    }

    /// A user's (or root's) access keys; secrets are blanked.
    pub async fn list_access_keys(&self, account: &str, user: Option<&str>) -> Result<Vec<AccessKey>, IamError> {
        if let Some(u) = user {
            self.load::<User>(account, "user", u).await?;
        }
        Ok(self
            .meta
            .list_access_keys(account)
            .await?
            .into_iter()
            .filter(|k| k.user.as_deref() == user)
            .map(|k| AccessKey { secret: String::new(), ..k })
            .collect())
    }

    async fn owned_key(&self, account: &str, user: Option<&str>, id: &str) -> Result<AccessKey, IamError> {
        match self.meta.get_access_key(id).await? {
            Some(k) if k.account_id == account && (user.is_none() || k.user.as_deref() == user) => Ok(k),
            _ => Err(IamError::not_found("User.AccessKey", id)),
        }
    }

    /// Activates or deactivates an access key.
    pub async fn set_access_key_enabled(
        &self,
        account: &str,
        user: Option<&str>,
        id: &str,
        enabled: bool,
    ) -> Result<(), IamError> {
        let _guard = self.write.lock().await;
        let mut k = self.owned_key(account, user, id).await?;
        k.enabled = enabled;
        self.meta.put_access_key(k).await?;
        Ok(())
    }

    /// Deletes an access key.
    pub async fn delete_access_key(&self, account: &str, user: Option<&str>, id: &str) -> Result<(), IamError> {
        let _guard = self.write.lock().await;
        self.owned_key(account, user, id).await?;
        self.meta.delete_access_key(id).await?;
        Ok(())
    }

    // ---- policies ----------------------------------------------------------

    /// Creates a custom policy (its document becomes `v1`).
    pub async fn create_policy(
        &self,
        account: &str,
        name: &str,
        document: &str,
        description: &str,
    ) -> Result<StoredPolicy, IamError> {
        check_name("PolicyName", name, 128, &['-'])?;
        if self.system.iter().any(|(s, _)| s.name == name) {
            return Err(IamError::exists("Policy", name));
        }
        parse_identity_policy(document)?;
        let t = now();
        let policy = StoredPolicy {
            name: name.into(),
            policy_type: "Custom".into(),
            description: description.into(),
            created: t,
            updated: t,
            default_version: "v1".into(),
            versions: vec![PolicyVersion { id: "v1".into(), document: document.into(), created: t }],
            next_version: 2,
        };
        let _guard = self.write.lock().await;
        if !self.meta.iam_put(account, "policy", name, &to_json(&policy)?, true).await? {
            return Err(IamError::exists("Policy", name));
        }
        Ok(policy)
    }

    /// A policy by type (`System` or `Custom`) and name.
    pub async fn get_policy(&self, account: &str, policy_type: &str, name: &str) -> Result<StoredPolicy, IamError> {
        match policy_type {
            "System" => self
                .system
                .iter()
                .find(|(s, _)| s.name == name)
                .map(|(s, _)| s.clone())
                .ok_or_else(|| IamError::not_found("Policy", name)),
            "Custom" => self.load(account, "policy", name).await,
            other => {
                Err(IamError::invalid("PolicyType", format!("PolicyType must be System or Custom, not {other:?}.")))
            }
        }
    }

    /// Policies of a type (`None`: both), system first.
    pub async fn list_policies(&self, account: &str, policy_type: Option<&str>) -> Result<Vec<StoredPolicy>, IamError> {
        let mut out = Vec::new();
        if policy_type.is_none_or(|t| t == "System") {
            out.extend(self.system.iter().map(|(s, _)| s.clone()));
        }
        if policy_type.is_none_or(|t| t == "Custom") {
            for b in self.meta.iam_list(account, "policy").await? {
                out.push(from_json(&b)?);
            }
        }
        Ok(out)
    }

    /// How many users and groups a policy is attached to.
    pub async fn attachment_count(&self, account: &str, policy_type: &str, name: &str) -> Result<usize, IamError> {
        let hit = |a: &Attachment| a.policy_type == policy_type && a.name == name;
        let users = self.list_users(account).await?.iter().filter(|u| u.policies.iter().any(hit)).count();
        let groups = self.list_groups(account).await?.iter().filter(|g| g.policies.iter().any(hit)).count();
        Ok(users + groups)
    }

    /// Deletes a custom policy that is attached nowhere.
    pub async fn delete_policy(&self, account: &str, name: &str) -> Result<(), IamError> {
        let _guard = self.write.lock().await;
        self.load::<StoredPolicy>(account, "policy", name).await?;
        let hit = |a: &Attachment| a.policy_type == "Custom" && a.name == name;
        if self.list_users(account).await?.iter().any(|u| u.policies.iter().any(hit)) {
            return Err(IamError::new(409, "DeleteConflict.Policy.User", "The policy is still attached to users."));
        }
        if self.list_groups(account).await?.iter().any(|g| g.policies.iter().any(hit)) {
            return Err(IamError::new(409, "DeleteConflict.Policy.Group", "The policy is still attached to groups."));
        }
        self.meta.iam_delete(account, "policy", name).await?;
        self.invalidate();
        Ok(())
    }

    /// Adds a version to a custom policy, optionally making it the default.
    /// With `rotate`, the oldest non-default version makes room at the limit.
    pub async fn create_policy_version(
        &self,
        account: &str,
        name: &str,
        document: &str,
        set_default: bool,
        rotate: bool,
    ) -> Result<PolicyVersion, IamError> {
        parse_identity_policy(document)?;
        let _guard = self.write.lock().await;
        let mut p: StoredPolicy = self.load(account, "policy", name).await?;
        if p.versions.len() >= MAX_POLICY_VERSIONS {
            let oldest = p.versions.iter().position(|v| v.id != p.default_version);
            match (rotate, oldest) {
                (true, Some(i)) => {
                    p.versions.remove(i);
                }
                _ => {
                    return Err(IamError::new(
                        409,
                        "LimitExceeded.Policy.Version",
                        format!("A policy keeps at most {MAX_POLICY_VERSIONS} versions; delete one first."),
                    ));
                }
            }
        }
        let version = PolicyVersion { id: format!("v{}", p.next_version), document: document.into(), created: now() };
        p.next_version += 1;
        p.versions.push(version.clone());
        if set_default {
            p.default_version = version.id.clone();
        }
        p.updated = now();
        self.save(account, "policy", name, &p).await?;
        Ok(version)
    }

    /// Makes a version the one in force.
    pub async fn set_default_policy_version(&self, account: &str, name: &str, version: &str) -> Result<(), IamError> {
        let _guard = self.write.lock().await;
        let mut p: StoredPolicy = self.load(account, "policy", name).await?;
        if !p.versions.iter().any(|v| v.id == version) {
            return Err(IamError::not_found("Policy.Version", version));
        }
        p.default_version = version.into();
        p.updated = now();
        self.save(account, "policy", name, &p).await
    }

    /// Deletes a version that is not the default.
    pub async fn delete_policy_version(&self, account: &str, name: &str, version: &str) -> Result<(), IamError> {
        let _guard = self.write.lock().await;
        let mut p: StoredPolicy = self.load(account, "policy", name).await?;
        if p.default_version == version {
            return Err(IamError::new(
                409,
                "DeleteConflict.Policy.Version.Default",
                "The default version cannot be deleted.",
            ));
        }
        let before = p.versions.len();
        p.versions.retain(|v| v.id != version);
        if p.versions.len() == before {
            return Err(IamError::not_found("Policy.Version", version));
        }
        self.save(account, "policy", name, &p).await
    }

    /// Attaches a policy to a user or group.
    pub async fn attach_policy(
        &self,
        account: &str,
        target: Target<'_>,
        policy_type: &str,
        name: &str,
    ) -> Result<(), IamError> {
        self.get_policy(account, policy_type, name).await?;
        let _guard = self.write.lock().await;
        let attachment = Attachment { policy_type: policy_type.into(), name: name.into(), attached: now() };
        let duplicate = |list: &[Attachment]| list.iter().any(|a| a.policy_type == policy_type && a.name == name);
        match target {
            Target::User(u) => {
                let mut user: User = self.load(account, "user", u).await?;
                if duplicate(&user.policies) {
                    return Err(IamError::exists("User.Policy", name));
                }
                user.policies.push(attachment);
                self.save(account, "user", u, &user).await
            }
            Target::Group(g) => {
                let mut group: Group = self.load(account, "group", g).await?;
                if duplicate(&group.policies) {
                    return Err(IamError::exists("Group.Policy", name));
                }
                group.policies.push(attachment);
                self.save(account, "group", g, &group).await
            }
        }
    }

    /// Detaches a policy from a user or group.
    pub async fn detach_policy(
        &self,
        account: &str,
        target: Target<'_>,
        policy_type: &str,
        name: &str,
    ) -> Result<(), IamError> {
        let _guard = self.write.lock().await;
        let keep = |a: &Attachment| !(a.policy_type == policy_type && a.name == name);
        let (kind, key, body) = match target {
            Target::User(u) => {
                let mut user: User = self.load(account, "user", u).await?;
                let before = user.policies.len();
                user.policies.retain(keep);
                if before == user.policies.len() {
                    return Err(IamError::not_found("User.Policy", name));
                }
                ("user", u, to_json(&user)?)
            }
            Target::Group(g) => {
                let mut group: Group = self.load(account, "group", g).await?;
                let before = group.policies.len();
                group.policies.retain(keep);
                if before == group.policies.len() {
                    return Err(IamError::not_found("Group.Policy", name));
                }
                ("group", g, to_json(&group)?)
            }
        };
        self.meta.iam_put(account, kind, key, &body, false).await?;
        self.invalidate();
        Ok(())
    }

    /// Policies attached directly to a user or group.
    pub async fn list_policies_for(&self, account: &str, target: Target<'_>) -> Result<Vec<Attachment>, IamError> {
        Ok(match target {
            Target::User(u) => self.load::<User>(account, "user", u).await?.policies,
            Target::Group(g) => self.load::<Group>(account, "group", g).await?.policies,
        })
    }

    // ---- authorization -----------------------------------------------------

    /// The identity an access key acts as, with its policies resolved.
    pub async fn identity(&self, key: &AccessKey) -> Result<Identity, IamError> {
        let principal = match &key.user {
            None => Principal::Root { account: key.account_id.clone() },
            Some(name) => {
                let user: User = self.load(&key.account_id, "user", name).await?;
                Principal::User { account: key.account_id.clone(), user_id: user.user_id, name: user.name }
            }
        };
        let policies = match &key.user {
            None => Arc::from([]),
            Some(name) => self.user_policies(&key.account_id, name).await?,
        };
        Ok(Identity { principal, access_key_id: Some(key.id.clone()), policies })
    }

    /// The identity of a RAM user signed in without an access key (console password).
    pub async fn user_identity(&self, account: &str, name: &str) -> Result<Identity, IamError> {
        let u: User = self.load(account, "user", name).await?;
        Ok(Identity {
            principal: Principal::User { account: account.into(), user_id: u.user_id, name: u.name },
            access_key_id: None,
            policies: self.user_policies(account, name).await?,
        })
    }

    /// A user's identity policies (its own and its groups'), resolved to
    /// their default versions; served from memory for up to [`POLICY_CACHE_TTL`].
    pub async fn user_policies(&self, account: &str, user: &str) -> Result<Arc<[NamedPolicy]>, IamError> {
        let cache_key = (account.to_owned(), user.to_owned());
        if let Ok(cache) = self.cache.lock()
            && let Some((at, policies)) = cache.get(&cache_key)
            && at.elapsed() < POLICY_CACHE_TTL
        {
            return Ok(policies.clone());
        }
        let u: User = self.load(account, "user", user).await?;
        let mut attachments = u.policies.clone();
        for g in &u.groups {
            // A group deleted under the membership grants (and denies) nothing;
            // any other failure refuses rather than silently dropping a Deny.
            match self.load::<Group>(account, "group", g).await {
                Ok(group) => attachments.extend(group.policies),
                Err(e) if e.status == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let mut out = Vec::new();
        for a in attachments {
            if a.policy_type == "System" {
                if let Some((_, named)) = self.system.iter().find(|(s, _)| s.name == a.name) {
                    out.push(named.clone());
                }
                continue;
            }
            // A policy deleted under an attachment grants nothing; other
            // failures refuse the request rather than drop its Deny statements.
            let p = match self.load::<StoredPolicy>(account, "policy", &a.name).await {
                Ok(p) => p,
                Err(e) if e.status == 404 => continue,
                Err(e) => return Err(e),
            };
            let policy = Policy::parse(p.default_document(), PolicyKind::Identity).map_err(|e| {
                IamError::new(500, "InternalError", format!("stored policy {} does not parse: {e}", a.name))
            })?;
            out.push(NamedPolicy { name: a.name.clone(), policy: Arc::new(policy) });
        }
        let policies: Arc<[NamedPolicy]> = out.into();
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(cache_key, (Instant::now(), policies.clone()));
        }
        Ok(policies)
    }

    /// "May `user` (or root, with `None`) do `action` on `resource`?" —
    /// the identity-policy part of the decision, for tools.
    pub async fn simulate(
        &self,
        account: &str,
        user: Option<&str>,
        action: &str,
        resource: &str,
        context: &Context,
    ) -> Result<Decision, IamError> {
        let identity = match user {
            None => Identity::root(account),
            Some(name) => self.user_identity(account, name).await?,
        };
        Ok(identity.decide(action, resource, context))
    }
}

fn new_key(account: &str, user: Option<&str>) -> AccessKey {
    AccessKey {
        id: format!("LTAI{}", random_token(20)),
        secret: random_token(30),
        account_id: account.into(),
        enabled: true,
        created: now(),
        user: user.map(str::to_owned),
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD_NO_PAD
}

/// A hash no password matches in practice, verified when there is no real one.
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| hash_password(&random_token(32)));

fn hash_password(password: &str) -> String {
    use base64::Engine as _;
    let salt: [u8; 16] = rand::random();
    let mut out = [0u8; 32];
    let iterations = std::num::NonZeroU32::new(PBKDF2_ITERATIONS).expect("non-zero");
    aws_lc_rs::pbkdf2::derive(aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256, iterations, &salt, password.as_bytes(), &mut out);
    format!("pbkdf2-sha256${PBKDF2_ITERATIONS}${}${}", b64().encode(salt), b64().encode(out))
}

fn verify_password(stored: &str, password: &str) -> bool {
    use base64::Engine as _;
    let mut parts = stored.split('$');
    let (Some("pbkdf2-sha256"), Some(iter), Some(salt), Some(hash)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Some(iter), Ok(salt), Ok(hash)) =
        (iter.parse::<u32>().ok().and_then(std::num::NonZeroU32::new), b64().decode(salt), b64().decode(hash))
    else {
        return false;
    };
    // Constant-time comparison inside.
    aws_lc_rs::pbkdf2::verify(aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256, iter, &salt, password.as_bytes(), &hash).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_and_hide() {
        let h = hash_password("correct horse");
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "correct horsE"));
        assert!(!verify_password("garbage", "x"));
        assert!(!h.contains("correct"));
    }

    #[test]
    fn system_policies_parse() {
        for (name, _, doc) in SYSTEM_POLICIES {
            Policy::parse(doc, PolicyKind::Identity).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
