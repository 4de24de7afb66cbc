//! Configuration: one TOML file (every field optional), then environment
//! variables and flags on top. Unknown fields are rejected so typos do not
//! silently fall back to defaults.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub domain: Option<String>,
    pub log: Option<String>,
    pub gc_interval_secs: Option<u64>,
    pub garbage_delay_secs: Option<u64>,
    pub root_key_file: Option<PathBuf>,
    pub service_key_rotation_secs: Option<u64>,
    pub kms_day_secs: Option<u64>,
    pub kms_listen: Option<String>,
    pub audit_log: Option<PathBuf>,
    pub console_listen: Option<String>,
    #[serde(default)]
    pub regions: Vec<RegionConfig>,
}

/// An additional region.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionConfig {
    /// Region id, e.g. `cn-shanghai`.
    pub name: String,
    /// Its own listener (optional: it is also served by host name).
    pub listen: Option<String>,
    /// Public endpoint reported to clients.
    pub endpoint: Option<String>,
}

/// Settings after defaults, file, env and flags.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub domain: String,
    pub log: String,
    pub gc_interval_secs: u64,
    pub garbage_delay_secs: u64,
    /// Where the 32-byte root key is (raw or 64 hex characters); `None`:
    /// `ARCA_ROOT_KEY`, else `<data_dir>/root.key`, generated on first start.
    pub root_key_file: Option<PathBuf>,
    /// Age at which a service master key gets a new version.
    pub service_key_rotation_secs: u64,
    /// Length of a day of the KMS deletion window, in seconds (86400; a test
    /// deployment may shorten it to see keys destroyed).
    pub kms_day_secs: u64,
    /// Address of the KMS API (Alibaba Cloud KMS RPC, `Version=2016-01-20`).
    pub kms_listen: String,
    /// Address of the web console.
    pub console_listen: String,
    /// Audit log file (denied requests, KMS key uses); default `<data_dir>/audit.log`.
    pub audit_log: PathBuf,
    pub regions: Vec<RegionConfig>,
}

/// Overrides from the command line / environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub region: Option<String>,
    pub domain: Option<String>,
    pub kms_listen: Option<String>,
    pub console_listen: Option<String>,
}

impl Config {
    pub fn load(path: Option<&Path>, o: Overrides) -> anyhow::Result<Config> {
        let file = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("reading config {}", p.display()))?;
                toml::from_str::<FileConfig>(&text).with_context(|| format!("parsing config {}", p.display()))?
            }
            None => FileConfig::default(),
        };
        let data_dir = o.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("./arca-data"));
        let cfg = Config {
            audit_log: file.audit_log.unwrap_or_else(|| data_dir.join("audit.log")),
            data_dir,
            listen: o.listen.or(file.listen).unwrap_or_else(|| "127.0.0.1:9000".into()),
            region: o.region.or(file.region).unwrap_or_else(|| "cn-hangzhou".into()),
            endpoint: file.endpoint,
            domain: o.domain.or(file.domain).unwrap_or_else(|| "aliyuncs.com".into()),
            log: file.log.unwrap_or_else(|| "info".into()),
            gc_interval_secs: file.gc_interval_secs.unwrap_or(60),
            garbage_delay_secs: file.garbage_delay_secs.unwrap_or(300),
            root_key_file: file.root_key_file,
            service_key_rotation_secs: file.service_key_rotation_secs.unwrap_or(30 * 24 * 3600),
            kms_day_secs: file.kms_day_secs.unwrap_or(86400),
            kms_listen: o.kms_listen.or(file.kms_listen).unwrap_or_else(|| "127.0.0.1:9100".into()),
            console_listen: o.console_listen.or(file.console_listen).unwrap_or_else(|| "127.0.0.1:9001".into()),
            regions: file.regions,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let valid =
            |r: &str| !r.is_empty() && r.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let mut seen = vec![self.region.as_str()];
        for r in self.regions.iter().map(|r| r.name.as_str()).chain([self.region.as_str()]) {
            if !valid(r) {
                bail!("invalid region name {r:?}: use lower-case letters, digits and '-'");
            }
        }
        for r in &self.regions {
            if seen.contains(&r.name.as_str()) {
                bail!("region {:?} is declared twice", r.name);
            }
            seen.push(&r.name);
        }
        if self.gc_interval_secs == 0 {
            bail!("gc_interval_secs must be at least 1");
        }
        if self.kms_day_secs == 0 {
            bail!("kms_day_secs must be at least 1");
        }
        if self.service_key_rotation_secs == 0 {
            bail!("service_key_rotation_secs must be at least 1");
        }
        Ok(())
    }

    /// Every served region with its listener (if any) and configured endpoint.
    pub fn all_regions(&self) -> Vec<RegionConfig> {
        let mut v = vec![RegionConfig {
            name: self.region.clone(),
            listen: Some(self.listen.clone()),
            endpoint: self.endpoint.clone(),
        }];
        v.extend(self.regions.iter().cloned());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = Config::load(None, Overrides::default()).unwrap();
        assert_eq!(c.listen, "127.0.0.1:9000");
        assert_eq!(c.region, "cn-hangzhou");
        assert_eq!(c.data_dir, PathBuf::from("./arca-data"));
        let dir = tempfile_path("cfg.toml");
        std::fs::write(&dir, "listen = \"127.0.0.1:1\"\nregion = \"cn-beijing\"\n[[regions]]\nname = \"cn-shanghai\"\nlisten = \"127.0.0.1:2\"\n").unwrap();
        let c =
            Config::load(Some(&dir), Overrides { listen: Some("127.0.0.1:3".into()), ..Default::default() }).unwrap();
        assert_eq!(c.listen, "127.0.0.1:3");
        assert_eq!(c.region, "cn-beijing");
        assert_eq!(c.all_regions().len(), 2);
    }

    #[test]
    fn rejects_unknown_fields_and_bad_regions() {
        let p = tempfile_path("bad.toml");
        std::fs::write(&p, "lisen = \"x\"\n").unwrap();
        assert!(Config::load(Some(&p), Overrides::default()).is_err());
        std::fs::write(&p, "region = \"CN Hangzhou\"\n").unwrap();
        assert!(Config::load(Some(&p), Overrides::default()).is_err());
        std::fs::write(&p, "[[regions]]\nname = \"cn-hangzhou\"\n").unwrap();
        assert!(Config::load(Some(&p), Overrides::default()).is_err());
    }

    fn tempfile_path(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("arca-config-test-{}-{}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }
}
