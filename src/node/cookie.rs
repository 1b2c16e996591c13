//! The admin cookie: a random token written to `<data-dir>/.cookie` when the node starts
//! (readable by its owner only) and removed when it stops, as Bitcoin Core does. State-changing
//! HTTP calls must carry it (`Authorization: Bearer <token>`); anyone who can read the data
//! directory can administer the node, and no one else can.
use std::io::Write;
use std::path::{Path, PathBuf};

/// The cookie's file name in the data directory.
pub const COOKIE_FILE: &str = ".cookie";

/// Why the cookie could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum CookieError {
    /// The system's random source failed.
    #[error("no randomness for the admin cookie: {0}")]
    Random(String),
    /// The file could not be written or read.
    #[error("admin cookie {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The file holds no token.
    #[error("admin cookie {0} is empty or damaged; restart the node to write a new one")]
    Empty(PathBuf),
}

/// A token proving the caller can read the data directory.
#[derive(Clone)]
pub struct AdminToken(String);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

impl AdminToken {
    /// Makes a fresh token and writes it to `<data_dir>/.cookie` (mode 0600).
    pub fn create(data_dir: &Path) -> Result<AdminToken, CookieError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| CookieError::Random(e.to_string()))?;
        let token = hex::encode(bytes);
        let path = data_dir.join(COOKIE_FILE);
        let io = |source| CookieError::Io {
            path: path.clone(),
            source,
        };
        let _ = std::fs::remove_file(&path);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(io)?;
        file.write_all(token.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(AdminToken(token))
    }

    /// Reads the token of a running node from `path`.
    pub fn read(path: &Path) -> Result<AdminToken, CookieError> {
        let text = std::fs::read_to_string(path).map_err(|source| CookieError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(CookieError::Empty(path.to_path_buf()));
        }
        Ok(AdminToken(token.to_string()))
    }

    /// The token text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `offered` is this token, compared in constant time.
    pub fn matches(&self, offered: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), offered.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// Removes the cookie file (at shutdown).
    pub fn remove(data_dir: &Path) {
        let _ = std::fs::remove_file(data_dir.join(COOKIE_FILE));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_is_private_random_and_matches_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let token = AdminToken::create(dir.path()).unwrap();
        let read = AdminToken::read(&dir.path().join(COOKIE_FILE)).unwrap();
        assert!(token.matches(read.as_str()));
        assert!(!token.matches("wrong"));
        assert!(!token.matches(&token.as_str()[1..]));
        assert_eq!(token.as_str().len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(COOKIE_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let second = AdminToken::create(dir.path()).unwrap();
        assert!(
            !second.matches(token.as_str()),
            "a restart makes a new token"
        );
        AdminToken::remove(dir.path());
        assert!(AdminToken::read(&dir.path().join(COOKIE_FILE)).is_err());
    }
}
