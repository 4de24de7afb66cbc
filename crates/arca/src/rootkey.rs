//! The root key: seals every master key at rest. From `ARCA_ROOT_KEY` (64 hex
//! characters), or a key file (32 raw bytes or 64 hex characters); for the
//! embedded default, generated into the data dir on first start with a warning.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use arca_crypto::{DataKey, Suite};
use zeroize::Zeroizing;

fn parse(bytes: &[u8], origin: &str) -> anyhow::Result<DataKey> {
    let text = std::str::from_utf8(bytes).map(str::trim).unwrap_or("");
    let raw = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        Zeroizing::new(hex::decode(text).expect("checked hex"))
    } else if bytes.len() == 32 {
        Zeroizing::new(bytes.to_vec())
    } else {
        bail!("{origin}: the root key must be 32 bytes or 64 hex characters");
    };
    Ok(DataKey::from_bytes(Suite::Aes256Gcm, &raw).expect("32 bytes"))
}

pub fn load(file: Option<&Path>, data_dir: &Path) -> anyhow::Result<DataKey> {
    if let Ok(v) = std::env::var("ARCA_ROOT_KEY") {
        let v = Zeroizing::new(v);
        return parse(v.as_bytes(), "ARCA_ROOT_KEY");
    }
    if let Some(path) = file {
        let bytes =
            Zeroizing::new(std::fs::read(path).with_context(|| format!("reading root key {}", path.display()))?);
        return parse(&bytes, &path.display().to_string());
    }
    let path = data_dir.join("root.key");
    if path.exists() {
        let bytes = Zeroizing::new(std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?);
        return parse(&bytes, &path.display().to_string());
    }
    let key = DataKey::generate(Suite::Aes256Gcm);
    let mut f = std::fs::OpenOptions::new();
    f.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut f, 0o600);
    let mut file = f.open(&path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(hex::encode(key.expose()).as_bytes())?;
    file.sync_all()?;
    tracing::warn!(
        path = %path.display(),
        "generated a new root key next to the data: anyone who can read it can decrypt everything. \
         For production keep it elsewhere (root_key_file or ARCA_ROOT_KEY) and back it up: without it no object can be read"
    );
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_reloaded() {
        let dir = std::env::temp_dir().join(format!("arca-rootkey-{}-{}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = load(None, &dir).unwrap();
        let b = load(None, &dir).unwrap();
        assert_eq!(a.expose(), b.expose());
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(dir.join("root.key")).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(dir.join("bad.key"), b"short").unwrap();
        assert!(load(Some(&dir.join("bad.key")), &dir).is_err());
        std::fs::write(dir.join("raw.key"), [7u8; 32]).unwrap();
        assert_eq!(load(Some(&dir.join("raw.key")), &dir).unwrap().expose(), &[7u8; 32]);
    }
}
