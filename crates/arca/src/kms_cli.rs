//! `arca kms …`: manage the built-in KMS of a data dir directly (the same
//! store the server uses; SQLite lets both work at once). Acts for the root
//! account in the configured (or given) region.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use arca_kms::{KeyManager, Kms, KmsContext, NewKey};
use arca_meta::{Cmk, MetaStore, Sqlite};
use clap::Subcommand;

use crate::config::Config;

/// KMS commands.
#[derive(Subcommand)]
pub enum KmsCommand {
    /// Create a key.
    Create {
        /// `Aliyun_AES_256` or `Aliyun_SM4`.
        #[arg(long, default_value = "Aliyun_AES_256")]
        spec: String,
        /// `Aliyun_KMS`, or `EXTERNAL` to import material (BYOK).
        #[arg(long, default_value = "Aliyun_KMS")]
        origin: String,
        /// Description.
        #[arg(long, default_value = "")]
        description: String,
        /// Automatic rotation every N days (7–730).
        #[arg(long)]
        rotation_days: Option<u64>,
        /// Give it an alias (`alias/…`).
        #[arg(long)]
        alias: Option<String>,
    },
    /// List keys with state, spec and aliases.
    List,
    /// Show one key (id, alias or ARN).
    Describe { key: String },
    /// Point an alias at a key (creating or moving it).
    Alias { alias: String, key: String },
    /// Remove an alias.
    Unalias { alias: String },
    /// Enable a key.
    Enable { key: String },
    /// Disable a key: what it protects is unreadable until it is enabled again.
    Disable { key: String },
    /// Add a new primary version now (old versions keep decrypting).
    Rotate { key: String },
    /// Set (`--days N`) or turn off (`--off`) automatic rotation.
    RotationPolicy {
        key: String,
        #[arg(long, conflicts_with = "off")]
        days: Option<u64>,
        #[arg(long)]
        off: bool,
    },
    /// Schedule deletion after a window of 7–366 days.
    ScheduleDeletion {
        key: String,
        #[arg(long, default_value_t = 30)]
        days: u64,
        /// Even if bucket default encryption rules still name the key.
        #[arg(long)]
        force: bool,
    },
    /// Switch KMS on or off for the account (off: SSE-KMS writes and reads fail).
    Service {
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Cancel a scheduled deletion.
    CancelDeletion { key: String },
    /// Import raw key material (32 bytes for AES-256, 16 for SM4) into an EXTERNAL key.
    Import { key: String, material_file: PathBuf },
    /// KMS call counts (the billable calls) per key and action.
    Usage,
}

fn describe(cmk: &Cmk, aliases: &[(String, String)]) -> String {
    let names: Vec<&str> = aliases.iter().filter(|(_, k)| *k == cmk.key_id).map(|(a, _)| a.as_str()).collect();
    format!(
        "{}  {:<15} {:<14} {:<10} versions={} rotation={} aliases={}",
        cmk.key_id,
        cmk.state,
        cmk.spec,
        cmk.origin,
        cmk.versions.len(),
        cmk.rotation_secs.map_or("off".to_string(), |s| format!("{}d", s / 86400)),
        if names.is_empty() { "-".to_string() } else { names.join(",") },
    )
}

pub async fn run(cfg: Config, cmd: KmsCommand) -> anyhow::Result<()> {
    let meta: Arc<dyn MetaStore> = Arc::new(Sqlite::open(&cfg.data_dir.join("meta.sqlite"))?);
    let root_key = crate::rootkey::load(cfg.root_key_file.as_deref(), &cfg.data_dir)?;
    let keys = Arc::new(KeyManager::new(meta.clone(), root_key, Duration::from_secs(cfg.service_key_rotation_secs)));
    let kms = Kms::new(meta.clone(), keys, cfg.kms_day_secs);
    let account = meta.get_setting("root_account_id").await?.context("no root account yet: start `arca serve` once")?;
    let ctx = KmsContext::new(account, cfg.region.clone());
    match cmd {
        KmsCommand::Create { spec, origin, description, rotation_days, alias } => {
            let req = NewKey {
                spec: Some(spec),
                origin: Some(origin),
                description,
                rotation_secs: rotation_days.map(|d| d * 86400),
            };
            let cmk = kms.create_key(&ctx, req).await?;
            if let Some(a) = alias {
                kms.put_alias(&ctx, &a, &cmk.key_id, false).await?;
            }
            println!("{}", cmk.key_id);
        }
        KmsCommand::List => {
            let aliases = kms.list_aliases(&ctx, None).await?;
            for cmk in kms.list_keys(&ctx).await? {
                println!("{}", describe(&cmk, &aliases));
            }
        }
        KmsCommand::Describe { key } => {
            let cmk = kms.resolve(&ctx, &key).await?;
            let aliases = kms.list_aliases(&ctx, Some(&cmk.key_id)).await?;
            println!("{}", describe(&cmk, &aliases));
            println!("arn: {}", Kms::arn(&cmk));
            for (id, created) in kms.versions(&cmk).await? {
                println!("version {id} created {created}");
            }
        }
        KmsCommand::Alias { alias, key } => {
            let exists = kms.resolve(&ctx, &alias).await.is_ok();
            kms.put_alias(&ctx, &alias, &key, exists).await?;
        }
        KmsCommand::Unalias { alias } => kms.delete_alias(&ctx, &alias).await?,
        KmsCommand::Enable { key } => drop(kms.enable_key(&ctx, &key).await?),
        KmsCommand::Disable { key } => drop(kms.disable_key(&ctx, &key).await?),
        KmsCommand::Rotate { key } => {
            let cmk = kms.create_key_version(&ctx, &key).await?;
            println!("{}", cmk.versions.last().cloned().unwrap_or_default());
        }
        KmsCommand::RotationPolicy { key, days, off } => {
            if days.is_none() && !off {
                bail!("give --days N or --off");
            }
            kms.update_rotation(&ctx, &key, days.map(|d| d * 86400)).await?;
        }
        KmsCommand::Service { state } => kms.set_service(&ctx.account, state == "on").await?,
        KmsCommand::ScheduleDeletion { key, days, force } => {
            let cmk = kms.schedule_deletion(&ctx, &key, days, force).await?;
            println!("deletion at unix time {}", cmk.delete_at.unwrap_or_default());
        }
        KmsCommand::CancelDeletion { key } => drop(kms.cancel_deletion(&ctx, &key).await?),
        KmsCommand::Import { key, material_file } => {
            use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey};
            let material = zeroize::Zeroizing::new(std::fs::read(&material_file)?);
            let params = kms.get_parameters_for_import(&ctx, &key, "RSA_2048", "RSAES_OAEP_SHA_256").await?;
            let public = OaepPublicEncryptingKey::new(PublicEncryptingKey::from_der(&params.public_key_der)?)?;
            let mut wrapped = vec![0u8; public.ciphertext_size()];
            let wrapped = public.encrypt(&OAEP_SHA256_MGF1SHA256, &material, &mut wrapped, None)?.to_vec();
            kms.import_key_material(&ctx, &key, &wrapped, &params.token, None).await?;
            println!("imported into {}", params.key_id);
        }
        KmsCommand::Usage => {
            for u in kms.usage(&ctx.account).await? {
                println!("{:<38} {:<32} {}", if u.key_id.is_empty() { "-" } else { &u.key_id }, u.action, u.count);
            }
        }
    }
    Ok(())
}
