//! Virtual API keys: a name, a secret shown once at creation, and only a keyed hash of the
//! secret in the store (HMAC-SHA256 under a random key kept in the store's `settings` table, so
//! a leaked `api_keys` table alone cannot be checked against guesses).
//!
//! A rotated key keeps its old secret valid until its grace period ends; a revoked or expired
//! key opens nothing. The gateway reads [`active_keys`] every second, so a change made by the
//! CLI against the same store reaches a running server within about a second.

use std::path::Path;

use hmac::{Hmac, Mac};
use rand::Rng;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use sha2::Sha256;

use crate::StoreError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
    name TEXT PRIMARY KEY,
    hash BLOB NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER,
    revoked_at_ms INTEGER,
    previous_hash BLOB,
    previous_until_ms INTEGER
);
";

/// What a key can do besides its name, as listed (never its secret or hash).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyInfo {
    pub name: String,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
    /// Until when the secret from before the last rotation still opens the gateway.
    pub previous_until_ms: Option<i64>,
}

/// A hash that opens the gateway now, and the key it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveKey {
    pub hash: [u8; 32],
    pub name: String,
}

/// The store's virtual keys.
pub struct Keys {
    conn: Connection,
    pepper: Vec<u8>,
}

/// Hashes presented secrets the way the store does, without a connection.
#[derive(Clone)]
pub struct KeyHasher(Vec<u8>);

impl KeyHasher {
    pub fn hash(&self, secret: &[u8]) -> [u8; 32] {
        // HMAC accepts a key of any length: this cannot fail.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(secret);
        mac.finalize().into_bytes().into()
    }
}

fn new_secret() -> String {
    let bytes: [u8; 24] = rand::rng().random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sk-sy-{hex}")
}

impl Keys {
    /// Opens the store's key tables, creating them (and the hashing key) on first use.
    pub fn open(path: &Path) -> Result<Keys, StoreError> {
        let conn = crate::open(path)?;
        conn.execute_batch(SCHEMA)?;
        let pepper: Option<Vec<u8>> = conn
            .query_row(
                "SELECT value FROM settings WHERE name = 'key_hash_key'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let pepper = match pepper {
            Some(p) => p,
            None => {
                let fresh: [u8; 32] = rand::rng().random();
                // Two processes creating it at once: the first one's key stands.
                conn.execute(
                    "INSERT OR IGNORE INTO settings (name, value) VALUES ('key_hash_key', ?1)",
                    [&fresh[..]],
                )?;
                conn.query_row(
                    "SELECT value FROM settings WHERE name = 'key_hash_key'",
                    [],
                    |r| r.get(0),
                )?
            }
        };
        Ok(Keys { conn, pepper })
    }

    pub fn hasher(&self) -> KeyHasher {
        KeyHasher(self.pepper.clone())
    }

    /// Creates the key `name`; returns its secret, which the store does not keep.
    pub fn create(&self, name: &str, expires_at_ms: Option<i64>) -> Result<String, StoreError> {
        check_name(name)?;
        let secret = new_secret();
        let hash = self.hasher().hash(secret.as_bytes());
        let inserted = self.conn.execute(
            "INSERT OR IGNORE INTO api_keys (name, hash, created_at_ms, expires_at_ms) VALUES (?1, ?2, ?3, ?4)",
            params![name, &hash[..], crate::RequestRecord::now_ms(), expires_at_ms],
        )?;
        if inserted == 0 {
            return Err(StoreError::Key(format!(
                "a key named `{name}` exists already; pick another name, or `switchyard keys rotate {name}` for a new secret"
            )));
        }
        Ok(secret)
    }

    /// Every key, oldest first.
    pub fn list(&self) -> Result<Vec<KeyInfo>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT name, created_at_ms, expires_at_ms, revoked_at_ms, previous_until_ms FROM api_keys ORDER BY created_at_ms, name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(KeyInfo {
                name: r.get(0)?,
                created_at_ms: r.get(1)?,
                expires_at_ms: r.get(2)?,
                revoked_at_ms: r.get(3)?,
                previous_until_ms: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Revokes `name`: neither its secret nor a rotated one opens anything from now on.
    pub fn revoke(&self, name: &str) -> Result<(), StoreError> {
        let changed = self.conn.execute(
            "UPDATE api_keys SET revoked_at_ms = COALESCE(revoked_at_ms, ?2), previous_until_ms = NULL WHERE name = ?1",
            params![name, crate::RequestRecord::now_ms()],
        )?;
        self.found(name, changed)
    }

    /// A new secret for `name`; the old one keeps working for `grace_ms`.
    pub fn rotate(&self, name: &str, grace_ms: i64) -> Result<String, StoreError> {
        let revoked: Option<Option<i64>> = self
            .conn
            .query_row(
                "SELECT revoked_at_ms FROM api_keys WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()?;
        match revoked {
            None => self.found(name, 0)?,
            Some(Some(_)) => {
                return Err(StoreError::Key(format!(
                    "key `{name}` is revoked; create a new key instead"
                )))
            }
            Some(None) => {}
        }
        let secret = new_secret();
        let hash = self.hasher().hash(secret.as_bytes());
        self.conn.execute(
            "UPDATE api_keys SET previous_hash = hash, previous_until_ms = ?3, hash = ?2 WHERE name = ?1",
            params![name, &hash[..], crate::RequestRecord::now_ms().saturating_add(grace_ms)],
        )?;
        Ok(secret)
    }

    /// Whether any key was ever created: then the gateway asks every request for one.
    pub fn any(&self) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT EXISTS (SELECT 1 FROM api_keys)", [], |r| r.get(0))?)
    }

    /// The hashes that open the gateway at `now_ms`: each live key's, and a rotated key's old
    /// one within its grace.
    pub fn active(&self, now_ms: i64) -> Result<Vec<ActiveKey>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT name, hash, previous_hash, previous_until_ms FROM api_keys
             WHERE revoked_at_ms IS NULL AND (expires_at_ms IS NULL OR expires_at_ms > ?1)",
        )?;
        let mut rows = stmt.query([now_ms])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let name: String = r.get(0)?;
            let hashes = [
                Some(r.get::<_, Vec<u8>>(1)?),
                r.get::<_, Option<i64>>(3)?
                    .filter(|until| *until > now_ms)
                    .and(r.get::<_, Option<Vec<u8>>>(2)?),
            ];
            for hash in hashes.into_iter().flatten() {
                if let Ok(hash) = <[u8; 32]>::try_from(hash.as_slice()) {
                    out.push(ActiveKey {
                        hash,
                        name: name.clone(),
                    });
                }
            }
        }
        Ok(out)
    }

    fn found(&self, name: &str, changed: usize) -> Result<(), StoreError> {
        if changed > 0 {
            return Ok(());
        }
        let names: Vec<String> = self.list()?.into_iter().map(|k| k.name).collect();
        Err(StoreError::Key(format!(
            "no key named `{name}`; the keys are: {}",
            if names.is_empty() {
                "(none)".to_owned()
            } else {
                names.join(", ")
            }
        )))
    }
}

fn check_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Key(format!(
            "key name `{name}` must be 1 to 64 letters, digits, '-', '_' or '.' (it shows in metrics and usage)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (tempfile::TempDir, Keys) {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::open(&dir.path().join("log.db")).unwrap();
        (dir, keys)
    }

    fn opens(keys: &Keys, secret: &str, now_ms: i64) -> Option<String> {
        let hash = keys.hasher().hash(secret.as_bytes());
        keys.active(now_ms)
            .unwrap()
            .into_iter()
            .find(|k| k.hash == hash)
            .map(|k| k.name)
    }

    #[test]
    fn a_created_key_opens_until_revoked_and_only_its_hash_is_stored() {
        let (dir, keys) = keys();
        assert!(!keys.any().unwrap());
        let secret = keys.create("team-a", None).unwrap();
        assert!(secret.starts_with("sk-sy-") && secret.len() > 40);
        let now = crate::RequestRecord::now_ms();
        assert_eq!(opens(&keys, &secret, now).as_deref(), Some("team-a"));
        assert_eq!(opens(&keys, "sk-sy-guess", now), None);
        assert!(keys.any().unwrap());
        let file = std::fs::read(dir.path().join("log.db")).unwrap();
        assert!(!file.windows(secret.len()).any(|w| w == secret.as_bytes()));
        keys.revoke("team-a").unwrap();
        assert_eq!(opens(&keys, &secret, now), None);
        assert_eq!(keys.list().unwrap()[0].name, "team-a");
        assert!(keys.list().unwrap()[0].revoked_at_ms.is_some());
    }

    #[test]
    fn a_rotated_key_keeps_its_old_secret_for_the_grace_only() {
        let (_dir, keys) = keys();
        let old = keys.create("svc", None).unwrap();
        let new = keys.rotate("svc", 60_000).unwrap();
        let now = crate::RequestRecord::now_ms();
        assert_eq!(opens(&keys, &new, now).as_deref(), Some("svc"));
        assert_eq!(opens(&keys, &old, now).as_deref(), Some("svc"));
        assert_eq!(opens(&keys, &old, now + 61_000), None);
        assert_eq!(opens(&keys, &new, now + 61_000).as_deref(), Some("svc"));
        keys.revoke("svc").unwrap();
        assert_eq!(opens(&keys, &old, now), None, "revoking ends the grace too");
        assert!(keys
            .rotate("svc", 0)
            .unwrap_err()
            .to_string()
            .contains("revoked"));
    }

    #[test]
    fn an_expired_key_opens_nothing() {
        let (_dir, keys) = keys();
        let now = crate::RequestRecord::now_ms();
        let secret = keys.create("trial", Some(now + 1_000)).unwrap();
        assert!(opens(&keys, &secret, now).is_some());
        assert_eq!(opens(&keys, &secret, now + 1_000), None);
    }

    #[test]
    fn names_are_checked_and_mistakes_name_the_keys() {
        let (_dir, keys) = keys();
        keys.create("a", None).unwrap();
        let dup = keys.create("a", None).unwrap_err().to_string();
        assert!(dup.contains("exists already"), "{dup}");
        let bad = keys.create("has space", None).unwrap_err().to_string();
        assert!(bad.contains("has space"), "{bad}");
        let missing = keys.revoke("b").unwrap_err().to_string();
        assert!(
            missing.contains("no key named `b`") && missing.contains(": a"),
            "{missing}"
        );
    }

    #[test]
    fn two_openers_of_one_store_hash_alike() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let first = Keys::open(&path).unwrap();
        let secret = first.create("x", None).unwrap();
        let second = Keys::open(&path).unwrap();
        assert_eq!(
            second.hasher().hash(secret.as_bytes()),
            first.hasher().hash(secret.as_bytes())
        );
    }
}
