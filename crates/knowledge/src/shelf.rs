//! The durable half of knowledge bases: documents, chunks and vectors in SQLite, the same file as
//! the request log. Plain tables of plain types, so that PostgreSQL can hold them later.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use crate::KnowledgeError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kb_bases (
    kb TEXT PRIMARY KEY,
    embedder TEXT NOT NULL,
    dimensions INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS kb_documents (
    kb TEXT NOT NULL,
    path TEXT NOT NULL,
    format TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    ingested_at_ms INTEGER NOT NULL,
    PRIMARY KEY (kb, path)
);
CREATE TABLE IF NOT EXISTS kb_chunks (
    id INTEGER PRIMARY KEY,
    kb TEXT NOT NULL,
    path TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    heading TEXT NOT NULL,
    text TEXT NOT NULL,
    embedding BLOB NOT NULL,
    UNIQUE (kb, path, ordinal)
);
";

/// One document of a base, as listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DocumentInfo {
    pub path: String,
    pub format: String,
    pub sha256: String,
    pub bytes: u64,
    pub chunks: u64,
    pub ingested_at_ms: i64,
}

/// One base, as listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BaseInfo {
    pub name: String,
    pub documents: u64,
    pub chunks: u64,
}

/// A chunk as stored, with its vector.
#[derive(Debug, Clone)]
pub struct StoredChunk {
    pub id: u64,
    pub path: String,
    pub ordinal: u32,
    pub heading: String,
    pub text: String,
    pub vector: Vec<f32>,
}

/// A chunk to store.
pub struct NewChunk<'a> {
    pub heading: &'a str,
    pub text: &'a str,
    pub vector: &'a [f32],
}

pub struct NewDocument<'a> {
    pub path: &'a str,
    pub format: &'a str,
    pub sha256: &'a str,
    pub bytes: u64,
}

pub struct Shelf {
    path: PathBuf,
    conn: Connection,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Shelf {
    pub fn open(path: &Path) -> Result<Shelf, KnowledgeError> {
        let wrap = |source| KnowledgeError::Store {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| KnowledgeError::Io {
                path: dir.to_owned(),
                source: e,
            })?;
        }
        let conn = Connection::open(path).map_err(wrap)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(wrap)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(wrap)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(wrap)?;
        conn.execute_batch(SCHEMA).map_err(wrap)?;
        Ok(Shelf {
            path: path.to_owned(),
            conn,
        })
    }

    fn err(&self, source: rusqlite::Error) -> KnowledgeError {
        KnowledgeError::Store {
            path: self.path.clone(),
            source,
        }
    }

    /// Names of the bases, each with the embedder and dimensions its vectors were made with.
    pub fn bases(&self) -> Result<Vec<(String, String, usize)>, KnowledgeError> {
        let mut stmt = self
            .conn
            .prepare("SELECT kb, embedder, dimensions FROM kb_bases ORDER BY kb")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as usize))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>());
        rows.map_err(|e| self.err(e))
    }

    pub fn create_base(
        &self,
        kb: &str,
        embedder: &str,
        dimensions: usize,
    ) -> Result<(), KnowledgeError> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO kb_bases (kb, embedder, dimensions, created_at_ms) VALUES (?1, ?2, ?3, ?4)",
                params![kb, embedder, dimensions as i64, now_ms()],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    pub fn base_info(&self, kb: &str) -> Result<BaseInfo, KnowledgeError> {
        self.conn
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(chunks), 0) FROM kb_documents WHERE kb = ?1",
                [kb],
                |r| {
                    Ok(BaseInfo {
                        name: kb.to_owned(),
                        documents: r.get::<_, i64>(0)? as u64,
                        chunks: r.get::<_, i64>(1)? as u64,
                    })
                },
            )
            .map_err(|e| self.err(e))
    }

    pub fn documents(&self, kb: &str) -> Result<Vec<DocumentInfo>, KnowledgeError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT path, format, sha256, bytes, chunks, ingested_at_ms FROM kb_documents WHERE kb = ?1 ORDER BY path",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([kb], |r| {
                Ok(DocumentInfo {
                    path: r.get(0)?,
                    format: r.get(1)?,
                    sha256: r.get(2)?,
                    bytes: r.get::<_, i64>(3)? as u64,
                    chunks: r.get::<_, i64>(4)? as u64,
                    ingested_at_ms: r.get(5)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>());
        rows.map_err(|e| self.err(e))
    }

    pub fn sha256(&self, kb: &str, path: &str) -> Result<Option<String>, KnowledgeError> {
        self.conn
            .query_row(
                "SELECT sha256 FROM kb_documents WHERE kb = ?1 AND path = ?2",
                [kb, path],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Replace a document and its chunks in one transaction; the new chunks' ids, in order.
    pub fn put(
        &mut self,
        kb: &str,
        doc: &NewDocument<'_>,
        chunks: &[NewChunk<'_>],
    ) -> Result<Vec<u64>, KnowledgeError> {
        let path = self.path.clone();
        let err = |source| KnowledgeError::Store {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute(
            "DELETE FROM kb_chunks WHERE kb = ?1 AND path = ?2",
            [kb, doc.path],
        )
        .map_err(err)?;
        let mut ids = Vec::with_capacity(chunks.len());
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO kb_chunks (kb, path, ordinal, heading, text, embedding) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(err)?;
            for (ordinal, chunk) in chunks.iter().enumerate() {
                insert
                    .execute(params![
                        kb,
                        doc.path,
                        ordinal as i64,
                        chunk.heading,
                        chunk.text,
                        to_blob(chunk.vector)
                    ])
                    .map_err(err)?;
                ids.push(tx.last_insert_rowid() as u64);
            }
        }
        tx.execute(
            "INSERT INTO kb_documents (kb, path, format, sha256, bytes, chunks, ingested_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (kb, path) DO UPDATE SET format = excluded.format, sha256 = excluded.sha256,
               bytes = excluded.bytes, chunks = excluded.chunks, ingested_at_ms = excluded.ingested_at_ms",
            params![
                kb,
                doc.path,
                doc.format,
                doc.sha256,
                doc.bytes as i64,
                chunks.len() as i64,
                now_ms()
            ],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(ids)
    }

    /// Remove a document and its chunks; whether it was there.
    pub fn delete(&mut self, kb: &str, path: &str) -> Result<bool, KnowledgeError> {
        let file = self.path.clone();
        let err = |source| KnowledgeError::Store {
            path: file.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute(
            "DELETE FROM kb_chunks WHERE kb = ?1 AND path = ?2",
            [kb, path],
        )
        .map_err(err)?;
        let removed = tx
            .execute(
                "DELETE FROM kb_documents WHERE kb = ?1 AND path = ?2",
                [kb, path],
            )
            .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(removed > 0)
    }

    /// Every chunk of a base, with its vector.
    pub fn chunks(&self, kb: &str) -> Result<Vec<StoredChunk>, KnowledgeError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, path, ordinal, heading, text, embedding FROM kb_chunks WHERE kb = ?1 ORDER BY path, ordinal",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([kb], |r| {
                let blob: Vec<u8> = r.get(5)?;
                Ok(StoredChunk {
                    id: r.get::<_, i64>(0)? as u64,
                    path: r.get(1)?,
                    ordinal: r.get::<_, i64>(2)? as u32,
                    heading: r.get(3)?,
                    text: r.get(4)?,
                    vector: from_blob(&blob),
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>());
        rows.map_err(|e| self.err(e))
    }
}

/// f32 values as a little-endian BLOB.
fn to_blob(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn from_blob(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}
