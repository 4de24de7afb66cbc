//! Naming rules shared by every dialect.

/// Bucket names: 3–63 characters of `[a-z0-9-]`, starting and ending with a
/// letter or digit.
pub fn valid_bucket_name(name: &str) -> bool {
    let b = name.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Why an object key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyProblem {
    /// Empty key.
    Empty,
    /// Longer than 1023 bytes.
    TooLong,
    /// Starts with `/` or `\`.
    BadStart,
}

/// Object keys: 1–1023 bytes of UTF-8, not starting with `/` or `\`.
pub fn check_key(key: &str) -> Result<(), KeyProblem> {
    if key.is_empty() {
        Err(KeyProblem::Empty)
    } else if key.len() > 1023 {
        Err(KeyProblem::TooLong)
    } else if key.starts_with('/') || key.starts_with('\\') {
        Err(KeyProblem::BadStart)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        assert!(valid_bucket_name("abc"));
        assert!(valid_bucket_name("my-bucket-01"));
        assert!(!valid_bucket_name("ab"));
        assert!(!valid_bucket_name("-abc"));
        assert!(!valid_bucket_name("abc-"));
        assert!(!valid_bucket_name("ABC"));
        assert!(!valid_bucket_name("a_bc"));
        assert!(!valid_bucket_name(&"a".repeat(64)));
    }

    #[test]
    fn keys() {
        assert_eq!(check_key(""), Err(KeyProblem::Empty));
        assert_eq!(check_key(&"k".repeat(1024)), Err(KeyProblem::TooLong));
        assert_eq!(check_key(&"k".repeat(1023)), Ok(()));
        assert_eq!(check_key("\\x"), Err(KeyProblem::BadStart));
        assert_eq!(check_key("?123.txt"), Ok(()));
    }
}
