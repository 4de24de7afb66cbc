//! `arca admin …`: accounts, RAM users, groups, access keys and policies of
//! a data dir, managed directly (the store the server uses). Acts in the
//! root account unless `--account` names another. A running server sees
//! changes within `arca_iam::POLICY_CACHE_TTL`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use arca_iam::{Context, Decision, Iam, Target};
use arca_meta::{MetaStore, Sqlite};
use clap::Subcommand;

use crate::config::Config;

/// Admin commands.
#[derive(Subcommand)]
pub enum AdminCommand {
    /// Accounts (tenants): each owns its buckets, keys, users and policies.
    #[command(subcommand)]
    Account(AccountCommand),
    /// RAM users.
    #[command(subcommand)]
    User(UserCommand),
    /// Access keys (of a user with `--user`, else of the account's root).
    #[command(subcommand)]
    Key(KeyCommand),
    /// User groups.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Custom and system policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// May a user (or root) do an action on a resource? Prints the decision
    /// and the deciding statement.
    Simulate {
        /// User name; omit for the account's root.
        #[arg(long)]
        user: Option<String>,
        /// e.g. `oss:GetObject`.
        #[arg(long)]
        action: String,
        /// e.g. `acs:oss:*:<account>:bucket/key`.
        #[arg(long)]
        resource: String,
        /// Condition values, `key=value` (e.g. `acs:SourceIp=10.0.0.1`).
        #[arg(long = "context", value_name = "KEY=VALUE")]
        context: Vec<String>,
    },
}

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Create an account; prints its id and root access key (shown once).
    Create { name: String },
    /// List accounts.
    List,
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Create {
        name: String,
        #[arg(long, default_value = "")]
        display_name: String,
        #[arg(long, default_value = "")]
        comments: String,
    },
    /// List users with their groups and policies.
    List,
    /// Delete a user (after its keys, policies and groups are gone).
    Delete { name: String },
    /// Set the console password (`--password P`, or `--password -` to read it
    /// from stdin), or remove it (`--remove`).
    Password {
        name: String,
        #[arg(long, conflicts_with = "remove", required_unless_present = "remove")]
        password: Option<String>,
        #[arg(long)]
        remove: bool,
    },
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Create an access key; the secret is shown once.
    Create {
        #[arg(long)]
        user: Option<String>,
    },
    /// List access keys.
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Deactivate a key.
    Disable {
        id: String,
        #[arg(long)]
        user: Option<String>,
    },
    /// Activate a key.
    Enable {
        id: String,
        #[arg(long)]
        user: Option<String>,
    },
    /// Delete a key.
    Delete {
        id: String,
        #[arg(long)]
        user: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum GroupCommand {
    /// Create a group.
    Create {
        name: String,
        #[arg(long, default_value = "")]
        comments: String,
    },
    /// List groups with their members.
    List,
    /// Delete an empty group.
    Delete { name: String },
    /// Add a user to a group.
    Add { group: String, user: String },
    /// Remove a user from a group.
    Remove { group: String, user: String },
}

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Create a custom policy from a JSON file (`-` for stdin).
    Create {
        name: String,
        file: PathBuf,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Add a version from a JSON file; `--default` puts it in force.
    Version {
        name: String,
        file: PathBuf,
        #[arg(long)]
        default: bool,
    },
    /// List system and custom policies.
    List,
    /// Print a policy's document in force.
    Show {
        name: String,
        #[arg(long)]
        system: bool,
    },
    /// Delete a custom policy attached nowhere.
    Delete { name: String },
    /// Attach a policy to a user or group.
    Attach {
        policy: String,
        #[arg(long, conflicts_with = "group", required_unless_present = "group")]
        user: Option<String>,
        #[arg(long)]
        group: Option<String>,
        /// The policy is a system policy (e.g. AliyunOSSFullAccess).
        #[arg(long)]
        system: bool,
    },
    /// Detach a policy from a user or group.
    Detach {
        policy: String,
        #[arg(long, conflicts_with = "group", required_unless_present = "group")]
        user: Option<String>,
        #[arg(long)]
        group: Option<String>,
        #[arg(long)]
        system: bool,
    },
}

fn read_document(path: &PathBuf) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        return std::io::read_to_string(std::io::stdin()).context("reading the policy from stdin");
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn target<'a>(user: &'a Option<String>, group: &'a Option<String>) -> Target<'a> {
    match (user, group) {
        (Some(u), _) => Target::User(u),
        (None, Some(g)) => Target::Group(g),
        (None, None) => unreachable!("clap requires one"),
    }
}

fn kind(system: bool) -> &'static str {
    if system { "System" } else { "Custom" }
}

pub async fn run(cfg: Config, account: Option<String>, cmd: AdminCommand) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.data_dir)?;
    let meta: Arc<dyn MetaStore> = Arc::new(Sqlite::open(&cfg.data_dir.join("meta.sqlite"))?);
    let iam = Iam::new(meta.clone());
    if let AdminCommand::Account(cmd) = &cmd {
        match cmd {
            AccountCommand::Create { name } => {
                let (account, key) = iam.create_account(name).await?;
                println!("account {} ({})", account.id, account.name);
                println!("  AccessKeyId:     {}", key.id);
                println!("  AccessKeySecret: {}", key.secret);
            }
            AccountCommand::List => {
                for a in iam.list_accounts().await? {
                    println!("{}  {}", a.id, a.name);
                }
            }
        }
        return Ok(());
    }
    let account = match account {
        Some(a) => a,
        None => meta.get_setting("root_account_id").await?.context("no root account yet: start `arca serve` once")?,
    };
    if !iam.list_accounts().await?.iter().any(|a| a.id == account) {
        bail!("no account {account}");
    }
    let acct = account.as_str();
    match cmd {
        AdminCommand::Account(_) => unreachable!("handled above"),
        AdminCommand::User(cmd) => match cmd {
            UserCommand::Create { name, display_name, comments } => {
                let u = iam.create_user(acct, &name, &display_name, &comments).await?;
                println!("user {} (id {})", u.name, u.user_id);
            }
            UserCommand::List => {
                for u in iam.list_users(acct).await? {
                    let policies: Vec<String> = u.policies.iter().map(|p| p.name.clone()).collect();
                    println!(
                        "{}  id={} groups=[{}] policies=[{}] console-password={}",
                        u.name,
                        u.user_id,
                        u.groups.join(","),
                        policies.join(","),
                        if u.has_password() { "set" } else { "none" }
                    );
                }
            }
            UserCommand::Delete { name } => {
                iam.delete_user(acct, &name).await?;
                println!("deleted user {name}");
            }
            UserCommand::Password { name, password, remove: _ } => {
                // `-` reads it from stdin, keeping it out of `ps` and shell history.
                let password = match password.as_deref() {
                    Some("-") => {
                        let mut line = String::new();
                        std::io::stdin().read_line(&mut line).context("reading the password from stdin")?;
                        Some(line.trim_end_matches(['\r', '\n']).to_owned())
                    }
                    other => other.map(str::to_owned),
                };
                iam.set_password(acct, &name, password.as_deref()).await?;
                println!("{} console password of {name}", if password.is_some() { "set" } else { "removed" });
            }
        },
        AdminCommand::Key(cmd) => match cmd {
            KeyCommand::Create { user } => {
                let k = iam.create_access_key(acct, user.as_deref()).await?;
                println!("access key for {} (the secret is shown once):", user.as_deref().unwrap_or("root"));
                println!("  AccessKeyId:     {}", k.id);
                println!("  AccessKeySecret: {}", k.secret);
            }
            KeyCommand::List { user } => {
                for k in iam.list_access_keys(acct, user.as_deref()).await? {
                    println!("{}  {}", k.id, if k.enabled { "Active" } else { "Inactive" });
                }
            }
            KeyCommand::Disable { id, user } => {
                iam.set_access_key_enabled(acct, user.as_deref(), &id, false).await?;
                println!("disabled {id}");
            }
            KeyCommand::Enable { id, user } => {
                iam.set_access_key_enabled(acct, user.as_deref(), &id, true).await?;
                println!("enabled {id}");
            }
            KeyCommand::Delete { id, user } => {
                iam.delete_access_key(acct, user.as_deref(), &id).await?;
                println!("deleted {id}");
            }
        },
        AdminCommand::Group(cmd) => match cmd {
            GroupCommand::Create { name, comments } => {
                iam.create_group(acct, &name, &comments).await?;
                println!("group {name}");
            }
            GroupCommand::List => {
                for g in iam.list_groups(acct).await? {
                    let members: Vec<String> =
                        iam.list_users_for_group(acct, &g.name).await?.into_iter().map(|u| u.name).collect();
                    let policies: Vec<String> = g.policies.iter().map(|p| p.name.clone()).collect();
                    println!("{}  members=[{}] policies=[{}]", g.name, members.join(","), policies.join(","));
                }
            }
            GroupCommand::Delete { name } => {
                iam.delete_group(acct, &name).await?;
                println!("deleted group {name}");
            }
            GroupCommand::Add { group, user } => {
                iam.add_user_to_group(acct, &user, &group).await?;
                println!("added {user} to {group}");
            }
            GroupCommand::Remove { group, user } => {
                iam.remove_user_from_group(acct, &user, &group).await?;
                println!("removed {user} from {group}");
            }
        },
        AdminCommand::Policy(cmd) => match cmd {
            PolicyCommand::Create { name, file, description } => {
                let p = iam.create_policy(acct, &name, &read_document(&file)?, &description).await?;
                println!("policy {} ({})", p.name, p.default_version);
            }
            PolicyCommand::Version { name, file, default } => {
                let v = iam.create_policy_version(acct, &name, &read_document(&file)?, default, false).await?;
                println!("policy {name} version {}{}", v.id, if default { " (default)" } else { "" });
            }
            PolicyCommand::List => {
                for p in iam.list_policies(acct, None).await? {
                    println!("{:<7} {:<32} {} {}", p.policy_type, p.name, p.default_version, p.description);
                }
            }
            PolicyCommand::Show { name, system } => {
                println!("{}", iam.get_policy(acct, kind(system), &name).await?.default_document());
            }
            PolicyCommand::Delete { name } => {
                iam.delete_policy(acct, &name).await?;
                println!("deleted policy {name}");
            }
            PolicyCommand::Attach { policy, user, group, system } => {
                iam.attach_policy(acct, target(&user, &group), kind(system), &policy).await?;
                println!("attached {policy}");
            }
            PolicyCommand::Detach { policy, user, group, system } => {
                iam.detach_policy(acct, target(&user, &group), kind(system), &policy).await?;
                println!("detached {policy}");
            }
        },
        AdminCommand::Simulate { user, action, resource, context } => {
            let mut ctx = Context::new();
            for kv in &context {
                let (k, v) = kv.split_once('=').with_context(|| format!("--context {kv:?}: write KEY=VALUE"))?;
                ctx.set(k, v);
            }
            match iam.simulate(acct, user.as_deref(), &action, &resource, &ctx).await? {
                Decision::Allow(m) => println!("Allow (by {m})"),
                Decision::Deny(m) => println!("Deny (explicitly, by {m})"),
                Decision::ImplicitDeny => println!("ImplicitDeny (no statement allows it)"),
            }
        }
    }
    Ok(())
}
