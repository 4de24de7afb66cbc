//! The embedded engine: one SQLite database file in WAL mode, one connection
//! behind a mutex (SQLite serializes writers anyway), calls run on the
//! blocking pool. Records are JSON in a `record` column next to the columns
//! that queries need (keys as BLOBs, so ordering is byte-wise).

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::{
    AccessKey, Account, Bucket, BucketStat, Cmk, Expect, KeyVersion, KmsUsage, MetaError, MetaStore, ObjectRecord,
    Part, Start, Upload, UploadStart, prefix_successor,
};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE accounts (id TEXT PRIMARY KEY, name TEXT NOT NULL, created INTEGER NOT NULL);
CREATE TABLE access_keys (
    id TEXT PRIMARY KEY, secret TEXT NOT NULL, account_id TEXT NOT NULL,
    enabled INTEGER NOT NULL, created INTEGER NOT NULL);
CREATE TABLE buckets (name TEXT PRIMARY KEY, owner TEXT NOT NULL, record TEXT NOT NULL);
CREATE TABLE objects (
    bucket TEXT NOT NULL, key BLOB NOT NULL, size INTEGER NOT NULL, last_modified INTEGER NOT NULL,
    record TEXT NOT NULL, PRIMARY KEY (bucket, key));
CREATE TABLE uploads (
    upload_id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key BLOB NOT NULL, record TEXT NOT NULL);
CREATE INDEX uploads_by_key ON uploads (bucket, key, upload_id);
CREATE TABLE parts (
    upload_id TEXT NOT NULL, number INTEGER NOT NULL, record TEXT NOT NULL,
    PRIMARY KEY (upload_id, number));
CREATE TABLE blob_garbage (blob TEXT PRIMARY KEY, queued INTEGER NOT NULL);
CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE key_versions (
    key_id TEXT NOT NULL, version INTEGER NOT NULL, sealed BLOB NOT NULL, created INTEGER NOT NULL,
    PRIMARY KEY (key_id, version));
"#,
    r#"
CREATE TABLE cmks (key_id TEXT PRIMARY KEY, account TEXT NOT NULL, region TEXT NOT NULL, created INTEGER NOT NULL,
    record TEXT NOT NULL);
CREATE INDEX cmks_by_owner ON cmks (account, region, created);
CREATE TABLE kms_aliases (account TEXT NOT NULL, region TEXT NOT NULL, alias TEXT NOT NULL, key_id TEXT NOT NULL,
    PRIMARY KEY (account, region, alias));
CREATE TABLE kms_versions (version_id TEXT PRIMARY KEY, key_id TEXT NOT NULL, version INTEGER NOT NULL);
CREATE TABLE kms_usage (account TEXT NOT NULL, key_id TEXT NOT NULL, action TEXT NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (account, key_id, action));
"#,
    r#"
ALTER TABLE access_keys ADD COLUMN user_name TEXT;
CREATE INDEX access_keys_by_owner ON access_keys (account_id, user_name);
CREATE TABLE iam_entities (account TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (account, kind, name));
"#,
];

/// The SQLite engine.
#[derive(Clone)]
pub struct Sqlite {
    conn: Arc<Mutex<Connection>>,
}

fn engine(e: impl std::fmt::Display) -> MetaError {
    MetaError::Engine(e.to_string())
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, MetaError> {
    serde_json::to_string(v).map_err(engine)
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, MetaError> {
    serde_json::from_str(s).map_err(engine)
}

impl Sqlite {
    /// Opens (creating and migrating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, MetaError> {
        let mut conn = Connection::open(path).map_err(engine)?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
            .map_err(engine)?;
        migrate(&mut conn)?;
        Ok(Sqlite { conn: Arc::new(Mutex::new(conn)) })
    }

    async fn run<T, F>(&self, f: F) -> Result<T, MetaError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, MetaError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| MetaError::Engine("connection lock poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(engine)?
    }
}

fn migrate(conn: &mut Connection) -> Result<(), MetaError> {
    let done: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(engine)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done as usize) {
        let tx = conn.transaction().map_err(engine)?;
        tx.execute_batch(sql).map_err(engine)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1)).map_err(engine)?;
        tx.commit().map_err(engine)?;
    }
    Ok(())
}

fn read_object(tx: &Transaction<'_>, bucket: &str, key: &str) -> Result<Option<ObjectRecord>, MetaError> {
    let json: Option<String> = tx
        .query_row("SELECT record FROM objects WHERE bucket = ?1 AND key = ?2", params![bucket, key.as_bytes()], |r| {
            r.get(0)
        })
        .optional()
        .map_err(engine)?;
    json.map(|j| from_json(&j)).transpose()
}

fn queue_garbage(tx: &Transaction<'_>, blobs: impl IntoIterator<Item = String>) -> Result<(), MetaError> {
    let t = now();
    for blob in blobs {
        tx.execute("INSERT OR IGNORE INTO blob_garbage (blob, queued) VALUES (?1, ?2)", params![blob, t])
            .map_err(engine)?;
    }
    Ok(())
}

fn bucket_exists(tx: &Transaction<'_>, bucket: &str) -> Result<bool, MetaError> {
    tx.query_row("SELECT 1 FROM buckets WHERE name = ?1", [bucket], |_| Ok(()))
        .optional()
        .map(|o| o.is_some())
        .map_err(engine)
}

/// Checks `expect`, writes `record`, and queues the blobs of the replaced
/// record that the new one no longer uses.
fn replace_object(tx: &Transaction<'_>, record: &ObjectRecord, expect: &Expect) -> Result<(), MetaError> {
    if !bucket_exists(tx, &record.bucket)? {
        return Err(MetaError::NoSuchBucket);
    }
    let current = read_object(tx, &record.bucket, &record.key)?;
    let ok = match (expect, &current) {
        (Expect::Any, _) | (Expect::Absent, None) => true,
        (Expect::Current { version_id, size }, Some(c)) => &c.version_id == version_id && c.size == *size,
        _ => false,
    };
    if !ok {
        return Err(MetaError::Conflict(current.map(Box::new)));
    }
    if let Some(old) = current {
        let keep: HashSet<&str> = record.extents.iter().map(|e| e.blob.as_str()).collect();
        queue_garbage(tx, old.extents.into_iter().map(|e| e.blob).filter(|b| !keep.contains(b.as_str())))?;
    }
    tx.execute(
        "INSERT OR REPLACE INTO objects (bucket, key, size, last_modified, record) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![record.bucket, record.key.as_bytes(), record.size as i64, record.last_modified, to_json(record)?],
    )
    .map_err(engine)?;
    Ok(())
}

fn part_rows(tx: &Transaction<'_>, upload_id: &str) -> Result<Vec<Part>, MetaError> {
    let mut stmt = tx.prepare("SELECT record FROM parts WHERE upload_id = ?1").map_err(engine)?;
    let rows = stmt.query_map([upload_id], |r| r.get::<_, String>(0)).map_err(engine)?;
    rows.map(|r| r.map_err(engine).and_then(|j| from_json(&j))).collect()
}

fn end_upload(tx: &Transaction<'_>, upload_id: &str, keep: &HashSet<&str>) -> Result<(), MetaError> {
    let parts = part_rows(tx, upload_id)?;
    queue_garbage(tx, parts.into_iter().map(|p| p.blob).filter(|b| !keep.contains(b.as_str())))?;
    tx.execute("DELETE FROM parts WHERE upload_id = ?1", [upload_id]).map_err(engine)?;
    let n = tx.execute("DELETE FROM uploads WHERE upload_id = ?1", [upload_id]).map_err(engine)?;
    if n == 0 { Err(MetaError::NoSuchUpload) } else { Ok(()) }
}

const ACCESS_KEY_COLUMNS: &str = "id, secret, account_id, enabled, created, user_name";

fn access_key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AccessKey> {
    Ok(AccessKey {
        id: r.get(0)?,
        secret: r.get(1)?,
        account_id: r.get(2)?,
        enabled: r.get(3)?,
        created: r.get(4)?,
        user: r.get(5)?,
    })
}

#[async_trait::async_trait]
impl MetaStore for Sqlite {
    async fn ensure_account(&self, account: Account) -> Result<(), MetaError> {
        self.run(move |c| {
            c.execute(
                "INSERT OR IGNORE INTO accounts (id, name, created) VALUES (?1, ?2, ?3)",
                params![account.id, account.name, account.created],
            )
            .map_err(engine)?;
            Ok(())
        })
        .await
    }

    async fn put_access_key(&self, key: AccessKey) -> Result<(), MetaError> {
        self.run(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO access_keys (id, secret, account_id, enabled, created, user_name)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![key.id, key.secret, key.account_id, key.enabled, key.created, key.user],
            )
            .map_err(engine)?;
            Ok(())
        })
        .await
    }

    async fn get_access_key(&self, id: &str) -> Result<Option<AccessKey>, MetaError> {
        let id = id.to_owned();
        self.run(move |c| {
            c.query_row(&format!("SELECT {ACCESS_KEY_COLUMNS} FROM access_keys WHERE id = ?1"), [id], access_key_row)
                .optional()
                .map_err(engine)
        })
        .await
    }

    async fn list_access_keys(&self, account: &str) -> Result<Vec<AccessKey>, MetaError> {
        let account = account.to_owned();
        self.run(move |c| {
            let mut stmt = c
                .prepare(&format!(
                    "SELECT {ACCESS_KEY_COLUMNS} FROM access_keys WHERE account_id = ?1 ORDER BY created, id"
                ))
                .map_err(engine)?;
            let rows = stmt.query_map([account], access_key_row).map_err(engine)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(engine)
        })
        .await
    }

    async fn delete_access_key(&self, id: &str) -> Result<bool, MetaError> {
        let id = id.to_owned();
        self.run(move |c| Ok(c.execute("DELETE FROM access_keys WHERE id = ?1", [id]).map_err(engine)? > 0)).await
    }

    async fn list_accounts(&self) -> Result<Vec<Account>, MetaError> {
        self.run(move |c| {
            let mut stmt = c.prepare("SELECT id, name, created FROM accounts ORDER BY created, id").map_err(engine)?;
            let rows = stmt
                .query_map([], |r| Ok(Account { id: r.get(0)?, name: r.get(1)?, created: r.get(2)? }))
                .map_err(engine)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(engine)
        })
        .await
    }

    async fn iam_get(&self, account: &str, kind: &str, name: &str) -> Result<Option<String>, MetaError> {
        let (account, kind, name) = (account.to_owned(), kind.to_owned(), name.to_owned());
        self.run(move |c| {
            c.query_row(
                "SELECT body FROM iam_entities WHERE account = ?1 AND kind = ?2 AND name = ?3",
                params![account, kind, name],
                |r| r.get(0),
            )
            .optional()
            .map_err(engine)
        })
        .await
    }

    async fn iam_list(&self, account: &str, kind: &str) -> Result<Vec<String>, MetaError> {
        let (account, kind) = (account.to_owned(), kind.to_owned());
        self.run(move |c| {
            let mut stmt = c
                .prepare("SELECT body FROM iam_entities WHERE account = ?1 AND kind = ?2 ORDER BY name")
                .map_err(engine)?;
            let rows = stmt.query_map(params![account, kind], |r| r.get(0)).map_err(engine)?;
            rows.collect::<Result<Vec<String>, _>>().map_err(engine)
        })
        .await
    }

    async fn iam_put(
        &self,
        account: &str,
        kind: &str,
        name: &str,
        body: &str,
        create: bool,
    ) -> Result<bool, MetaError> {
        let (account, kind, name, body) = (account.to_owned(), kind.to_owned(), name.to_owned(), body.to_owned());
        self.run(move |c| {
            let sql = if create {
                "INSERT OR IGNORE INTO iam_entities (account, kind, name, body) VALUES (?1, ?2, ?3, ?4)"
            } else {
                "INSERT OR REPLACE INTO iam_entities (account, kind, name, body) VALUES (?1, ?2, ?3, ?4)"
            };
            Ok(c.execute(sql, params![account, kind, name, body]).map_err(engine)? > 0)
        })
        .await
    }

    async fn iam_delete(&self, account: &str, kind: &str, name: &str) -> Result<bool, MetaError> {
        let (account, kind, name) = (account.to_owned(), kind.to_owned(), name.to_owned());
        self.run(move |c| {
            Ok(c.execute(
                "DELETE FROM iam_entities WHERE account = ?1 AND kind = ?2 AND name = ?3",
                params![account, kind, name],
            )
            .map_err(engine)?
                > 0)
        })
        .await
    }

    async fn get_setting(&self, name: &str) -> Result<Option<String>, MetaError> {
        let name = name.to_owned();
        self.run(move |c| {
            c.query_row("SELECT value FROM settings WHERE name = ?1", [name], |r| r.get(0)).optional().map_err(engine)
        })
        .await
    }

    async fn put_setting(&self, name: &str, value: &str) -> Result<(), MetaError> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.run(move |c| {
            c.execute("INSERT OR REPLACE INTO settings (name, value) VALUES (?1, ?2)", params![name, value])
                .map_err(engine)?;
            Ok(())
        })
        .await
    }

    async fn key_versions(&self, key_id: &str) -> Result<Vec<KeyVersion>, MetaError> {
        let key_id = key_id.to_owned();
        self.run(move |c| {
            let mut stmt = c
                .prepare("SELECT key_id, version, sealed, created FROM key_versions WHERE key_id = ?1 ORDER BY version")
                .map_err(engine)?;
            let rows = stmt
                .query_map([key_id], |r| {
                    Ok(KeyVersion { key_id: r.get(0)?, version: r.get(1)?, sealed: r.get(2)?, created: r.get(3)? })
                })
                .map_err(engine)?;
            rows.map(|r| r.map_err(engine)).collect()
        })
        .await
    }

    async fn delete_key_versions(&self, key_id: &str) -> Result<(), MetaError> {
        let key_id = key_id.to_owned();
        self.run(move |c| {
            c.execute("DELETE FROM key_versions WHERE key_id = ?1", [key_id]).map_err(engine)?;
            Ok(())
        })
        .await
    }

    async fn add_key_version(&self, v: KeyVersion) -> Result<bool, MetaError> {
        self.run(move |c| {
            let n = c
                .execute(
                    "INSERT OR IGNORE INTO key_versions (key_id, version, sealed, created) VALUES (?1, ?2, ?3, ?4)",
                    params![v.key_id, v.version, v.sealed, v.created],
                )
                .map_err(engine)?;
            Ok(n == 1)
        })
        .await
    }

    async fn put_kms_version(&self, version_id: &str, key_id: &str, version: u32) -> Result<(), MetaError> {
        let (v, k) = (version_id.to_owned(), key_id.to_owned());
        self.run(move |c| {
            c.execute(
                "INSERT INTO kms_versions (version_id, key_id, version) VALUES (?1, ?2, ?3)",
                params![v, k, version],
            )
            .map_err(engine)?;
            Ok(())
        })
        .await
    }

    async fn get_kms_version(&self, version_id: &str) -> Result<Option<(String, u32)>, MetaError> {
        let v = version_id.to_owned();
        self.run(move |c| {
            c.query_row("SELECT key_id, version FROM kms_versions WHERE version_id = ?1", [v], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(engine)
        })
        .await
    }

    async fn put_cmk(&self, cmk: Cmk) -> Result<(), MetaError> {
        self.run(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO cmks (key_id, account, region, created, record) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![cmk.key_id, cmk.account, cmk.region, cmk.created, to_json(&cmk)?],
            )
            .map_err(engine)?;
            Ok(())
        })
        .await
    }

    async fn get_cmk(&self, key_id: &str) -> Result<Option<Cmk>, MetaError> {
        let key_id = key_id.to_owned();
        self.run(move |c| {
            let json: Option<String> = c
                .query_row("SELECT record FROM cmks WHERE key_id = ?1", [key_id], |r| r.get(0))
                .optional()
                .map_err(engine)?;
            json.map(|j| from_json(&j)).transpose()
        })
        .await
    }

    async fn all_cmks(&self) -> Result<Vec<Cmk>, MetaError> {
        self.run(|c| {
            let mut stmt = c.prepare("SELECT record FROM cmks ORDER BY created, key_id").map_err(engine)?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(engine)?;
            rows.map(|r| r.map_err(engine).and_then(|j| from_json(&j))).collect()
        })
        .await
    }

    async fn list_cmks(&self, account: &str, region: &str) -> Result<Vec<Cmk>, MetaError> {
        let (account, region) = (account.to_owned(), region.to_owned());
        self.run(move |c| {
            let mut stmt = c
                .prepare("SELECT record FROM cmks WHERE account = ?1 AND region = ?2 ORDER BY created, key_id")
                .map_err(engine)?;
            let rows = stmt.query_map([account, region], |r| r.get::<_, String>(0)).map_err(engine)?;
            rows.map(|r| r.map_err(engine).and_then(|j| from_json(&j))).collect()
        })
        .await
    }

    async fn delete_cmk(&self, key_id: &str) -> Result<(), MetaError> {
        let key_id = key_id.to_owned();
        self.run(move |c| {
            let tx = c.transaction().map_err(engine)?;
            tx.execute("DELETE FROM kms_aliases WHERE key_id = ?1", [&key_id]).map_err(engine)?;
            tx.execute("DELETE FROM key_versions WHERE key_id = ?1", [&key_id]).map_err(engine)?;
            tx.execute("DELETE FROM kms_versions WHERE key_id = ?1", [&key_id]).map_err(engine)?;
            tx.execute("DELETE FROM cmks WHERE key_id = ?1", [&key_id]).map_err(engine)?;
            tx.commit().map_err(engine)
        })
        .await
    }

    async fn put_alias(
        &self,
        account: &str,
        region: &str,
        alias: &str,
        key_id: &str,
        replace: bool,
    ) -> Result<bool, MetaError> {
        let (a, r, al, k) = (account.to_owned(), region.to_owned(), alias.to_owned(), key_id.to_owned());
        self.run(move |c| {
            let verb = if replace { "INSERT OR REPLACE" } else { "INSERT OR IGNORE" };
            let sql = format!("{verb} INTO kms_aliases (account, region, alias, key_id) VALUES (?1, ?2, ?3, ?4)");
            let n = c.execute(&sql, params![a, r, al, k]).map_err(engine)?;
            Ok(n == 1)
        })
        .await
    }

    async fn get_alias(&self, account: &str, region: &str, alias: &str) -> Result<Option<String>, MetaError> {
        let (a, r, al) = (account.to_owned(), region.to_owned(), alias.to_owned());
        self.run(move |c| {
            c.query_row(
                "SELECT key_id FROM kms_aliases WHERE account = ?1 AND region = ?2 AND alias = ?3",
                [a, r, al],
                |r| r.get(0),
            )
            .optional()
            .map_err(engine)
        })
        .await
    }

    async fn delete_alias(&self, account: &str, region: &str, alias: &str) -> Result<bool, MetaError> {
        let (a, r, al) = (account.to_owned(), region.to_owned(), alias.to_owned());
        self.run(move |c| {
            let n = c
                .execute("DELETE FROM kms_aliases WHERE account = ?1 AND region = ?2 AND alias = ?3", [a, r, al])
                .map_err(engine)?;
            Ok(n == 1)
        })
        .await
    }

    async fn list_aliases(&self, account: &str, region: &str) -> Result<Vec<(String, String)>, MetaError> {
        let (a, r) = (account.to_owned(), region.to_owned());
        self.run(move |c| {
            let mut stmt = c
                .prepare("SELECT alias, key_id FROM kms_aliases WHERE account = ?1 AND region = ?2 ORDER BY alias")
                .map_err(engine)?;
            let rows = stmt.query_map([a, r], |r| Ok((r.get(0)?, r.get(1)?))).map_err(engine)?;
            rows.map(|r| r.map_err(engine)).collect()
        })
        .await
    }

    async fn add_kms_calls(&self, calls: Vec<(String, String, String, u64)>) -> Result<(), MetaError> {
        self.run(move |c| {
            let tx = c.transaction().map_err(engine)?;
            for (account, key_id, action, n) in &calls {
                tx.execute(
                    "INSERT INTO kms_usage (account, key_id, action, count) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (account, key_id, action) DO UPDATE SET count = count + ?4",
                    params![account, key_id, action, *n as i64],
                )
                .map_err(engine)?;
            }
            tx.commit().map_err(engine)
        })
        .await
    }

    async fn kms_usage(&self, account: &str) -> Result<Vec<KmsUsage>, MetaError> {
        let a = account.to_owned();
        self.run(move |c| {
            let mut stmt = c
                .prepare("SELECT key_id, action, count FROM kms_usage WHERE account = ?1 ORDER BY key_id, action")
                .map_err(engine)?;
            let rows = stmt
                .query_map([a], |r| {
                    Ok(KmsUsage { key_id: r.get(0)?, action: r.get(1)?, count: r.get::<_, i64>(2)? as u64 })
                })
                .map_err(engine)?;
            rows.map(|r| r.map_err(engine)).collect()
        })
        .await
    }

    async fn create_bucket(&self, bucket: Bucket) -> Result<(), MetaError> {
        self.run(move |c| {
            let tx = c.transaction().map_err(engine)?;
            let existing: Option<String> = tx
                .query_row("SELECT record FROM buckets WHERE name = ?1", [&bucket.name], |r| r.get(0))
                .optional()
                .map_err(engine)?;
            if let Some(json) = existing {
                return Err(MetaError::BucketExists(Box::new(from_json(&json)?)));
            }
            tx.execute(
                "INSERT INTO buckets (name, owner, record) VALUES (?1, ?2, ?3)",
                params![bucket.name, bucket.owner, to_json(&bucket)?],
            )
            .map_err(engine)?;
            tx.commit().map_err(engine)
        })
        .await
    }

    async fn get_bucket(&self, name: &str) -> Result<Option<Bucket>, MetaError> {
        let name = name.to_owned();
        self.run(move |c| {
            let json: Option<String> = c
                .query_row("SELECT record FROM buckets WHERE name = ?1", [name], |r| r.get(0))
                .optional()
                .map_err(engine)?;
            json.map(|j| from_json(&j)).transpose()
        })
        .await
    }

    async fn update_bucket(&self, bucket: Bucket) -> Result<(), MetaError> {
        self.run(move |c| {
            let n = c
                .execute("UPDATE buckets SET record = ?2 WHERE name = ?1", params![bucket.name, to_json(&bucket)?])
                .map_err(engine)?;
            if n == 0 { Err(MetaError::NoSuchBucket) } else { Ok(()) }
        })
        .await
    }

    async fn list_buckets(
        &self,
        owner: &str,
        prefix: &str,
        marker: &str,
        limit: usize,
    ) -> Result<Vec<Bucket>, MetaError> {
        let (owner, prefix, marker) = (owner.to_owned(), prefix.to_owned(), marker.to_owned());
        self.run(move |c| {
            let mut stmt = c
                .prepare(
                    "SELECT record FROM buckets WHERE owner = ?1 AND name > ?2 AND substr(name, 1, length(?3)) = ?3
                     ORDER BY name LIMIT ?4",
                )
                .map_err(engine)?;
            let rows = stmt
                .query_map(params![owner, marker, prefix, limit as i64], |r| r.get::<_, String>(0))
                .map_err(engine)?;
            rows.map(|r| r.map_err(engine).and_then(|j| from_json(&j))).collect()
        })
        .await
    }

    async fn delete_bucket(&self, name: &str) -> Result<(), MetaError> {
        let name = name.to_owned();
        self.run(move |c| {
            let tx = c.transaction().map_err(engine)?;
            if !bucket_exists(&tx, &name)? {
                return Err(MetaError::NoSuchBucket);
            }
            let busy: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM objects WHERE bucket = ?1) OR EXISTS (SELECT 1 FROM uploads WHERE bucket = ?1)",
                    [&name],
                    |r| r.get(0),
                )
                .map_err(engine)?;
            if busy {
                return Err(MetaError::BucketNotEmpty);
            }
            tx.execute("DELETE FROM buckets WHERE name = ?1", [&name]).map_err(engine)?;
            tx.commit().map_err(engine)
        })
        .await
    }

    async fn bucket_stat(&self, name: &str) -> Result<BucketStat, MetaError> {
        let name = name.to_owned();
        self.run(move |c| {
            let (storage, objects, last): (i64, i64, i64) = c
                .query_row(
                    "SELECT COALESCE(SUM(size), 0), COUNT(*), COALESCE(MAX(last_modified), 0) FROM objects WHERE bucket = ?1",
                    [&name],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .map_err(engine)?;
            let uploads: i64 = c
                .query_row("SELECT COUNT(*) FROM uploads WHERE bucket = ?1", [&name], |r| r.get(0))
                .map_err(engine)?;
            Ok(BucketStat { storage: storage as u64, objects: objects as u64, uploads: uploads as u64, last_modified: last })
        })
        .await
    }

    async fn get_object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>, MetaError> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.run(move |c| {
            let tx = c.transaction().map_err(engine)?;
            read_object(&tx, &bucket, &key)
        })
        .await
    }

    async fn put_object(&self, record: ObjectRecord, expect: Expect) -> Result<(), MetaError> {
        self.run(move |c| {
            let tx = c.transaction().map_err(engine)?;
            replace_object(&tx, &record, &expect)?;
            tx.commit().map_err(engine)
        })
        .await
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> Result<bool, MetaError> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.run(move |c| {
            let tx = c.transaction().map_err(engine)?;
            if !bucket_exists(&tx, &bucket)? {
                return Err(MetaError::NoSuchBucket);
            }
            let Some(old) = read_object(&tx, &bucket, &key)? else {
                return Ok(false);
            };
            queue_garbage(&tx, old.extents.into_iter().map(|e| e.blob))?;
            tx.execute("DELETE FROM objects WHERE bucket = ?1 AND key = ?2", params![bucket, key.as_bytes()])
                .map_err(engine)?;
            tx.commit().map_err(engine)?;
            Ok(true)
        })
        .await
    }

    async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        start: &Start,
        limit: usize,
    ) -> Result<Vec<ObjectRecord>, MetaError> {
        let (bucket, prefix, start) = (bucket.to_owned(), prefix.as_bytes().to_vec(), start.clone());
        self.run(move |c| {
            let (lower, inclusive) = match start {
                Start::After(k) if k.as_bytes() >= prefix.as_slice() => (k.into_bytes(), false),
                Start::AtOrAfter(k) if k.as_slice() >= prefix.as_slice() => (k, true),
                _ => (prefix.clone(), true),
            };
            let upper = prefix_successor(&prefix);
            let sql = format!(
                "SELECT record FROM objects WHERE bucket = ?1 AND key {} ?2 {} ORDER BY key LIMIT ?4",
                if inclusive { ">=" } else { ">" },
                if upper.is_some() { "AND key < ?3" } else { "AND ?3 IS NULL" }
            );
            let mut stmt = c.prepare(&sql).map_err(engine)?;
            let rows = stmt
                .query_map(params![bucket, lower, upper, limit as i64], |r| r.get::<_, String>(0))
                .map_err(engine)?;
            rows.map(|r| r.map_err(engine).and_then(|j| from_json(&j))).collect()
        })
        .await
    }

    async fn create_upload(&self, upload: Upload) -> Result<(), MetaError> {
        self.run(move |c| {
            let tx = c.transaction().map_err(engine)?;
            if !bucket_exists(&tx, &upload.bucket)? {
                return Err(MetaError::NoSuchBucket);
            }
            tx.execute(
                "INSERT INTO uploads (upload_id, bucket, key, record) VALUES (?1, ?2, ?3, ?4)",
                params![upload.upload_id, upload.bucket, upload.key.as_bytes(), to_json(&upload)?],
            )
            .map_err(engine)?;
            tx.commit().map_err(engine)
        })
        .await
    }

    async fn get_upload(&self, upload_id: &str) -> Result<Option<Upload>, MetaError> {
        let id = upload_id.to_owned();
        self.run(move |c| {
            let json: Option<String> = c
                .query_row("SELECT record FROM uploads WHERE upload_id = ?1", [id], |r| r.get(0))
                .optional()
                .map_err(engine)?;
            json.map(|j| from_json(&j)).transpose()
        })
        .await
    }

    async fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        start: &UploadStart,
        limit: usize,
    ) -> Result<Vec<Upload>, MetaError> {
        let (bucket, prefix, start) = (bucket.to_owned(), prefix.as_bytes().to_vec(), start.clone());
        self.run(move |c| {
            let upper = prefix_successor(&prefix);
            let (cond, key, id): (&str, Vec<u8>, String) = match start {
                UploadStart::First => ("key >= ?2", prefix.clone(), String::new()),
                UploadStart::After { key, upload_id } if upload_id.is_empty() => ("key > ?2", key.into_bytes(), String::new()),
                UploadStart::After { key, upload_id } => {
                    ("(key > ?2 OR (key = ?2 AND upload_id > ?3))", key.into_bytes(), upload_id)
                }
                UploadStart::AtOrAfter(k) => ("key >= ?2", k, String::new()),
            };
            let sql = format!(
                "SELECT record FROM uploads WHERE bucket = ?1 AND {cond} AND key >= ?5 {} ORDER BY key, upload_id LIMIT ?4",
                if upper.is_some() { "AND key < ?6" } else { "AND ?6 IS NULL" }
            );
            let mut stmt = c.prepare(&sql).map_err(engine)?;
            let rows = stmt
                .query_map(params![bucket, key, id, limit as i64, prefix, upper], |r| r.get::<_, String>(0))
                .map_err(engine)?;
            rows.map(|r| r.map_err(engine).and_then(|j| from_json(&j))).collect()
        })
        .await
    }

    async fn put_part(&self, upload_id: &str, part: Part) -> Result<(), MetaError> {
        let id = upload_id.to_owned();
        self.run(move |c| {
            let tx = c.transaction().map_err(engine)?;
            let exists = tx
                .query_row("SELECT 1 FROM uploads WHERE upload_id = ?1", [&id], |_| Ok(()))
                .optional()
                .map_err(engine)?
                .is_some();
            if !exists {
                return Err(MetaError::NoSuchUpload);
            }
            let old: Option<String> = tx
                .query_row(
                    "SELECT record FROM parts WHERE upload_id = ?1 AND number = ?2",
                    params![id, part.number],
                    |r| r.get(0),
                )
                .optional()
                .map_err(engine)?;
            if let Some(old) = old {
                let old: Part = from_json(&old)?;
                queue_garbage(&tx, [old.blob])?;
            }
            tx.execute(
                "INSERT OR REPLACE INTO parts (upload_id, number, record) VALUES (?1, ?2, ?3)",
                params![id, part.number, to_json(&part)?],
            )
            .map_err(engine)?;
            tx.commit().map_err(engine)
        })
        .await
    }

    async fn list_parts(&self, upload_id: &str, after: u32, limit: usize) -> Result<Vec<Part>, MetaError> {
        let id = upload_id.to_owned();
        self.run(move |c| {
            let mut stmt = c
                .prepare("SELECT record FROM parts WHERE upload_id = ?1 AND number > ?2 ORDER BY number LIMIT ?3")
                .map_err(engine)?;
            let rows = stmt.query_map(params![id, after, limit as i64], |r| r.get::<_, String>(0)).map_err(engine)?;
            rows.map(|r| r.map_err(engine).and_then(|j| from_json(&j))).collect()
        })
        .await
    }

    async fn complete_upload(&self, upload_id: &str, record: ObjectRecord, expect: Expect) -> Result<(), MetaError> {
        let id = upload_id.to_owned();
        self.run(move |c| {
            let tx = c.transaction().map_err(engine)?;
            let keep: HashSet<&str> = record.extents.iter().map(|e| e.blob.as_str()).collect();
            // The record was built from a snapshot of the parts; a part
            // re-uploaded since then replaced (and queued for deletion) a blob
            // the record names. Refuse rather than reference garbage.
            let current: HashSet<String> = part_rows(&tx, &id)?.into_iter().map(|p| p.blob).collect();
            if !keep.iter().all(|b| current.contains(*b)) {
                return Err(MetaError::PartsChanged);
            }
            end_upload(&tx, &id, &keep)?;
            replace_object(&tx, &record, &expect)?;
            tx.commit().map_err(engine)
        })
        .await
    }

    async fn abort_upload(&self, upload_id: &str) -> Result<(), MetaError> {
        let id = upload_id.to_owned();
        self.run(move |c| {
            let tx = c.transaction().map_err(engine)?;
            end_upload(&tx, &id, &HashSet::new())?;
            tx.commit().map_err(engine)
        })
        .await
    }

    async fn referenced_blobs(&self) -> Result<Vec<String>, MetaError> {
        self.run(|c| {
            let mut out = Vec::new();
            let mut stmt = c.prepare("SELECT record FROM objects").map_err(engine)?;
            for json in stmt.query_map([], |r| r.get::<_, String>(0)).map_err(engine)? {
                let rec: ObjectRecord = from_json(&json.map_err(engine)?)?;
                out.extend(rec.extents.into_iter().map(|e| e.blob));
            }
            let mut stmt = c.prepare("SELECT record FROM parts").map_err(engine)?;
            for json in stmt.query_map([], |r| r.get::<_, String>(0)).map_err(engine)? {
                let part: Part = from_json(&json.map_err(engine)?)?;
                out.push(part.blob);
            }
            Ok(out)
        })
        .await
    }

    async fn take_garbage(&self, queued_before: i64, limit: usize) -> Result<Vec<String>, MetaError> {
        self.run(move |c| {
            let mut stmt = c
                .prepare("SELECT blob FROM blob_garbage WHERE queued <= ?1 ORDER BY queued LIMIT ?2")
                .map_err(engine)?;
            let rows =
                stmt.query_map(params![queued_before, limit as i64], |r| r.get::<_, String>(0)).map_err(engine)?;
            rows.map(|r| r.map_err(engine)).collect()
        })
        .await
    }

    async fn forget_garbage(&self, blobs: &[String]) -> Result<(), MetaError> {
        let blobs = blobs.to_vec();
        self.run(move |c| {
            let tx = c.transaction().map_err(engine)?;
            for b in &blobs {
                tx.execute("DELETE FROM blob_garbage WHERE blob = ?1", [b]).map_err(engine)?;
            }
            tx.commit().map_err(engine)
        })
        .await
    }
}
