//! Listings with prefix, delimiter and paging. A common prefix counts as one
//! entry, and the next page starts after the whole prefix, so every prefix
//! is reported exactly once across pages.

use arca_meta::{ObjectRecord, Start, Upload, UploadStart, prefix_successor};

use crate::{Caller, CoreError, ObjectService, Op};

/// ListObjects parameters (v1 and v2 alike).
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    /// Only keys starting with this.
    pub prefix: String,
    /// Roll keys up to the first occurrence of this after the prefix.
    pub delimiter: String,
    /// Start strictly after this key (marker / start-after / token).
    pub after: Option<String>,
    /// Entries (objects + common prefixes) per page, 1–1000.
    pub max_keys: usize,
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Objects in key order.
    pub objects: Vec<ObjectRecord>,
    /// Common prefixes in order.
    pub prefixes: Vec<String>,
    /// Whether more entries follow.
    pub truncated: bool,
    /// The last key or prefix of this page (where the next page starts).
    pub next_marker: Option<String>,
    /// The bucket owner's account id (owner of every listed object).
    pub owner: String,
}

/// ListMultipartUploads parameters.
#[derive(Debug, Clone, Default)]
pub struct UploadListParams {
    /// Only keys starting with this.
    pub prefix: String,
    /// Roll keys up at this.
    pub delimiter: String,
    /// Key marker.
    pub key_marker: String,
    /// Upload id marker (with the key marker).
    pub upload_id_marker: String,
    /// Entries per page.
    pub max_uploads: usize,
}

/// One page of uploads.
#[derive(Debug, Clone, Default)]
pub struct UploadListing {
    /// Uploads in (key, upload id) order.
    pub uploads: Vec<Upload>,
    /// Common prefixes.
    pub prefixes: Vec<String>,
    /// Whether more follow.
    pub truncated: bool,
    /// Next key marker.
    pub next_key_marker: String,
    /// Next upload id marker.
    pub next_upload_id_marker: String,
}

/// The common prefix `key` rolls up to, if any.
fn common_prefix(key: &str, prefix: &str, delimiter: &str) -> Option<String> {
    if delimiter.is_empty() {
        return None;
    }
    let rest = key.strip_prefix(prefix)?;
    rest.find(delimiter).map(|i| format!("{prefix}{}", &rest[..i + delimiter.len()]))
}

/// Where to continue after a common prefix (or nowhere, if nothing sorts after it).
fn after_prefix(cp: &str) -> Option<Vec<u8>> {
    prefix_successor(cp.as_bytes())
}

impl ObjectService {
    /// Lists objects.
    pub async fn list_objects(
        &self,
        caller: &Caller,
        region: &str,
        bucket: &str,
        p: &ListParams,
    ) -> Result<Listing, CoreError> {
        let extra = [("oss:Prefix", p.prefix.as_str()), ("oss:Delimiter", p.delimiter.as_str())];
        let b = self.bucket(caller, region, bucket, Op { action: "oss:ListObjects", key: None, extra: &extra }).await?;
        let mut out = Listing { owner: b.owner, ..Listing::default() };
        let mut start = match &p.after {
            Some(a) if !a.is_empty() => Start::After(a.clone()),
            _ => Start::First,
        };
        // A marker inside a common prefix skips that whole prefix.
        if let Some(a) = &p.after
            && let Some(cp) = common_prefix(a, &p.prefix, &p.delimiter)
        {
            match after_prefix(&cp) {
                Some(next) => start = Start::AtOrAfter(next),
                None => return Ok(out),
            }
        }
        let batch = (p.max_keys + 1).min(1001);
        'pages: loop {
            let page = self.meta.list_objects(bucket, &p.prefix, &start, batch).await?;
            let exhausted = page.len() < batch;
            for rec in page {
                if out.objects.len() + out.prefixes.len() >= p.max_keys {
                    out.truncated = true;
                    break 'pages;
                }
                if let Some(cp) = common_prefix(&rec.key, &p.prefix, &p.delimiter) {
                    out.next_marker = Some(cp.clone());
                    out.prefixes.push(cp.clone());
                    match after_prefix(&cp) {
                        Some(next) => start = Start::AtOrAfter(next),
                        None => break 'pages,
                    }
                    continue 'pages;
                }
                out.next_marker = Some(rec.key.clone());
                start = Start::After(rec.key.clone());
                out.objects.push(rec);
            }
            if exhausted {
                break;
            }
        }
        Ok(out)
    }

    /// Lists unfinished multipart uploads.
    pub async fn list_uploads(
        &self,
        caller: &Caller,
        region: &str,
        bucket: &str,
        p: &UploadListParams,
    ) -> Result<UploadListing, CoreError> {
        self.bucket(caller, region, bucket, Op::bucket("oss:ListMultipartUploads")).await?;
        let mut out = UploadListing::default();
        let mut start = if p.key_marker.is_empty() {
            UploadStart::First
        } else {
            UploadStart::After { key: p.key_marker.clone(), upload_id: p.upload_id_marker.clone() }
        };
        if let Some(cp) = common_prefix(&p.key_marker, &p.prefix, &p.delimiter) {
            match after_prefix(&cp) {
                Some(next) => start = UploadStart::AtOrAfter(next),
                None => return Ok(out),
            }
        }
        let batch = (p.max_uploads + 1).min(1001);
        'pages: loop {
            let page = self.meta.list_uploads(bucket, &p.prefix, &start, batch).await?;
            let exhausted = page.len() < batch;
            for up in page {
                if out.uploads.len() + out.prefixes.len() >= p.max_uploads {
                    out.truncated = true;
                    break 'pages;
                }
                if let Some(cp) = common_prefix(&up.key, &p.prefix, &p.delimiter) {
                    out.next_key_marker = cp.clone();
                    out.next_upload_id_marker = String::new();
                    out.prefixes.push(cp.clone());
                    match after_prefix(&cp) {
                        Some(next) => start = UploadStart::AtOrAfter(next),
                        None => break 'pages,
                    }
                    continue 'pages;
                }
                out.next_key_marker = up.key.clone();
                out.next_upload_id_marker = up.upload_id.clone();
                start = UploadStart::After { key: up.key.clone(), upload_id: up.upload_id.clone() };
                out.uploads.push(up);
            }
            if exhausted {
                break;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::common_prefix;

    #[test]
    fn common_prefixes() {
        assert_eq!(common_prefix("a/b/c", "", "/").as_deref(), Some("a/"));
        assert_eq!(common_prefix("a/b/c", "a/", "/").as_deref(), Some("a/b/"));
        assert_eq!(common_prefix("a/b", "a/", "/"), None);
        assert_eq!(common_prefix("abc", "", ""), None);
        assert_eq!(common_prefix("x--y--z", "", "--").as_deref(), Some("x--"));
    }
}
