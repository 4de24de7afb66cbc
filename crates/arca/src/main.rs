//! `arca`: the encrypted object store that speaks the Alibaba Cloud OSS API.

mod admin_cli;
mod bench;
mod config;
mod kms_cli;
mod rootkey;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arca_blob::LocalDisk;
use arca_console::Console;
use arca_core::{AccessKey, Account, Limits, ObjectService};
use arca_iam::{Audit, Iam};
use arca_kms::{KeyManager, Kms};
use arca_kms_api::{KmsApiConfig, KmsApiServer};
use arca_meta::{MetaStore, Sqlite};
use arca_oss::route::Addressing;
use arca_oss::{OssConfig, OssServer};
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{Config, Overrides};

#[derive(Parser)]
#[command(name = "arca", version, about = "An encrypted object store that speaks the Alibaba Cloud OSS API")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (embedded SQLite + local disk by default).
    Serve {
        /// TOML configuration file.
        #[arg(long, env = "ARCA_CONFIG")]
        config: Option<PathBuf>,
        /// Data directory (metadata database and blobs).
        #[arg(long, env = "ARCA_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// OSS API address of the default region.
        #[arg(long, env = "ARCA_LISTEN")]
        listen: Option<String>,
        /// Default region id.
        #[arg(long, env = "ARCA_REGION")]
        region: Option<String>,
        /// Domain of region host names (`oss-<region>.<domain>`).
        #[arg(long, env = "ARCA_DOMAIN")]
        domain: Option<String>,
        /// Address of the KMS API.
        #[arg(long, env = "ARCA_KMS_LISTEN")]
        kms_listen: Option<String>,
        /// Address of the web console.
        #[arg(long, env = "ARCA_CONSOLE_LISTEN")]
        console_listen: Option<String>,
    },
    /// Load-test an OSS endpoint (Arca or any OSS/S3 server via presigned URLs).
    Bench(bench::BenchArgs),
    /// Manage the built-in KMS of a data dir (keys, aliases, rotation, deletion, import, usage).
    Kms {
        /// TOML configuration file.
        #[arg(long, env = "ARCA_CONFIG")]
        config: Option<PathBuf>,
        /// Data directory.
        #[arg(long, env = "ARCA_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Region of the keys.
        #[arg(long, env = "ARCA_REGION")]
        region: Option<String>,
        #[command(subcommand)]
        command: kms_cli::KmsCommand,
    },
    /// Manage accounts, RAM users, groups, access keys and policies of a data dir.
    Admin {
        /// TOML configuration file.
        #[arg(long, env = "ARCA_CONFIG")]
        config: Option<PathBuf>,
        /// Data directory.
        #[arg(long, env = "ARCA_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Account to act in (default: the root account).
        #[arg(long)]
        account: Option<String>,
        #[command(subcommand)]
        command: admin_cli::AdminCommand,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, data_dir, listen, region, domain, kms_listen, console_listen } => {
            let overrides = Overrides { data_dir, listen, region, domain, kms_listen, console_listen };
            let cfg = Config::load(config.as_deref(), overrides)?;
            init_logging(&cfg.log);
            tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(serve(cfg))
        }
        Command::Bench(args) => {
            tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(bench::run(args))
        }
        Command::Kms { config, data_dir, region, command } => {
            let cfg = Config::load(config.as_deref(), Overrides { data_dir, region, ..Default::default() })?;
            init_logging("warn");
            tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(kms_cli::run(cfg, command))
        }
        Command::Admin { config, data_dir, account, command } => {
            let cfg = Config::load(config.as_deref(), Overrides { data_dir, ..Default::default() })?;
            init_logging("warn");
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(admin_cli::run(cfg, account, command))
        }
    }
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal as _;
    let ansi = std::io::stderr().is_terminal();
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.data_dir).with_context(|| format!("creating data dir {}", cfg.data_dir.display()))?;
    let meta: Arc<dyn MetaStore> = Arc::new(Sqlite::open(&cfg.data_dir.join("meta.sqlite"))?);
    let blobs = Arc::new(LocalDisk::open(&cfg.data_dir)?);
    let limits = Limits { garbage_delay: Duration::from_secs(cfg.garbage_delay_secs), ..Limits::default() };
    let root_key = rootkey::load(cfg.root_key_file.as_deref(), &cfg.data_dir)?;
    let keys = Arc::new(KeyManager::new(meta.clone(), root_key, Duration::from_secs(cfg.service_key_rotation_secs)));
    let audit = Arc::new(
        Audit::file(&cfg.audit_log).with_context(|| format!("opening the audit log {}", cfg.audit_log.display()))?,
    );
    let kms = Arc::new(Kms::new(meta.clone(), keys.clone(), cfg.kms_day_secs).with_audit(audit.clone()));
    let iam = Arc::new(Iam::new(meta.clone()));
    let svc = ObjectService::new(meta.clone(), blobs, keys, kms.clone(), limits).with_audit(audit.clone());
    let kms_for_shutdown = kms.clone();

    ensure_root_credentials(&*meta).await?;
    // Nothing is in flight yet: every unreferenced blob or partial write is an orphan.
    let orphans = svc.collect_orphans(Duration::ZERO).await?;
    if orphans > 0 {
        tracing::info!(count = orphans, "removed orphan blobs left by an earlier run");
    }
    svc.spawn_gc(Duration::from_secs(cfg.gc_interval_secs));
    // Automatic key rotation: keys also rotate lazily on use; this catches idle ones.
    let scheduler = kms.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            if let Err(e) = scheduler.rotate_due_keys().await {
                tracing::warn!(error = %e, "key rotation scheduler failed");
            }
        }
    });
    // KMS metering is counted in memory and written once a second.
    let meter = kms.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            if let Err(e) = meter.flush_usage().await {
                tracing::warn!(error = %e, "writing KMS metering failed; kept for the next try");
            }
        }
    });

    let regions = cfg.all_regions();
    let mut listeners = Vec::new();
    let mut endpoints = HashMap::new();
    for r in &regions {
        if let Some(addr) = &r.listen {
            let l = TcpListener::bind(addr).await.with_context(|| format!("binding {addr} for region {}", r.name))?;
            let local = l.local_addr()?;
            endpoints.insert(r.name.clone(), r.endpoint.clone().unwrap_or_else(|| local.to_string()));
            listeners.push((r.name.clone(), l, local));
        } else if let Some(e) = &r.endpoint {
            endpoints.insert(r.name.clone(), e.clone());
        }
    }
    let console_svc = svc.clone();
    let oss = OssServer::new(
        svc,
        iam.clone(),
        OssConfig {
            addressing: Addressing {
                domain: cfg.domain.clone(),
                regions: regions.iter().map(|r| r.name.clone()).collect(),
            },
            endpoints,
        },
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    for (region, listener, local) in listeners {
        tracing::info!(region = %region, address = %local, data_dir = %cfg.data_dir.display(), "OSS API listening");
        println!("arca: OSS API for region {region} on http://{local}");
        let mut rx = stop_rx.clone();
        let server = oss.clone();
        tasks.push(tokio::spawn(async move {
            server
                .serve(listener, region, async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                })
                .await
        }));
    }
    let kms_listener = TcpListener::bind(&cfg.kms_listen)
        .await
        .with_context(|| format!("binding the KMS API on {}", cfg.kms_listen))?;
    let kms_addr = kms_listener.local_addr()?;
    let kms_api = KmsApiServer::new(
        kms,
        meta.clone(),
        iam.clone(),
        audit,
        KmsApiConfig {
            default_region: cfg.region.clone(),
            regions: regions.iter().map(|r| r.name.clone()).collect(),
            domain: cfg.domain.clone(),
        },
    );
    tracing::info!(address = %kms_addr, "KMS API listening");
    println!("arca: KMS and RAM API on http://{kms_addr}");
    let console_listener = TcpListener::bind(&cfg.console_listen)
        .await
        .with_context(|| format!("binding the console on {}", cfg.console_listen))?;
    let console_addr = console_listener.local_addr()?;
    let console =
        Console::new(console_svc, iam, Arc::new(kms_api.clone()), regions.iter().map(|r| r.name.clone()).collect());
    println!("arca: web console on http://{console_addr}");
    let mut rx = stop_rx.clone();
    tasks.push(tokio::spawn(async move {
        console
            .serve(console_listener, async move {
                let _ = rx.wait_for(|stop| *stop).await;
            })
            .await
    }));
    let mut rx = stop_rx.clone();
    tasks.push(tokio::spawn(async move {
        kms_api
            .serve(kms_listener, async move {
                let _ = rx.wait_for(|stop| *stop).await;
            })
            .await
    }));
    shutdown_signal().await;
    tracing::info!("shutting down: finishing requests in flight");
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    if let Err(e) = kms_for_shutdown.flush_usage().await {
        tracing::error!(error = %e, "writing the last KMS metering failed");
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}

const ROOT_ACCOUNT: &str = "root_account_id";
const ROOT_KEY: &str = "root_access_key_id";

/// The root account and its access key: from `ARCA_ROOT_ACCESS_KEY_ID` /
/// `ARCA_ROOT_ACCESS_KEY_SECRET` when set, else the one generated on the
/// first start (printed once, then kept).
async fn ensure_root_credentials(meta: &dyn MetaStore) -> anyhow::Result<()> {
    let account_id = match meta.get_setting(ROOT_ACCOUNT).await? {
        Some(id) => id,
        None => {
            let id = format!("1{:015}", rand::random::<u64>() % 1_000_000_000_000_000);
            meta.ensure_account(Account { id: id.clone(), name: "root".into(), created: arca_core::now() }).await?;
            meta.put_setting(ROOT_ACCOUNT, &id).await?;
            id
        }
    };
    let previous = meta.get_setting(ROOT_KEY).await?;
    let env_id = std::env::var("ARCA_ROOT_ACCESS_KEY_ID").ok().filter(|s| !s.is_empty());
    let env_secret = std::env::var("ARCA_ROOT_ACCESS_KEY_SECRET").ok().filter(|s| !s.is_empty());
    let (id, secret, generated) = match (env_id, env_secret) {
        (Some(id), Some(secret)) => (id, secret, false),
        (Some(_), None) | (None, Some(_)) => {
            anyhow::bail!("set both ARCA_ROOT_ACCESS_KEY_ID and ARCA_ROOT_ACCESS_KEY_SECRET, or neither")
        }
        (None, None) if previous.is_some() => return Ok(()),
        (None, None) => (format!("LTAI{}", random_token(20)), random_token(30), true),
    };
    if let Some(old) = previous.filter(|old| *old != id)
        && let Some(mut k) = meta.get_access_key(&old).await?
    {
        k.enabled = false;
        meta.put_access_key(k).await?;
        tracing::info!(access_key_id = %old, "previous root access key disabled");
    }
    meta.put_access_key(AccessKey {
        id: id.clone(),
        secret: secret.clone(),
        account_id,
        enabled: true,
        created: arca_core::now(),
        user: None,
    })
    .await?;
    meta.put_setting(ROOT_KEY, &id).await?;
    if generated {
        println!("arca: generated the root access key (shown once; keep it):");
        println!("  AccessKeyId:     {id}");
        println!("  AccessKeySecret: {secret}");
    }
    Ok(())
}

fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect()
}
