//! Knowledge bases: company documents ingested into the store, chunked by headings and
//! paragraphs, embedded in-process, and retrieved by vector similarity, BM25, or both fused.
//!
//! Documents, chunks and vectors are durable in SQLite (the request log's file); each base's
//! search index lives in memory and is rebuilt from the store when it is first used.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use sha2::{Digest, Sha256};
use switchyard_embed::{EmbedError, Embedder};

mod chunk;
mod index;
mod parse;
mod shelf;

pub use chunk::{chunks, Budget, Chunk};
pub use index::{Hit, Index, Mode, Search};
pub use parse::{parse, Block, Format};
pub use shelf::{BaseInfo, DocumentInfo, StoredChunk};

use shelf::{NewChunk, NewDocument, Shelf};

/// The most chunks a search returns.
pub const MAX_K: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    #[error("no knowledge base named `{name}`; {}", known_bases(.known))]
    UnknownBase { name: String, known: Vec<String> },
    #[error("`{0}` is not a knowledge base name; use 1 to 64 letters, digits, `-` or `_`")]
    BadName(String),
    #[error("`{0}` is not a document path; give a non-empty path without `..` parts")]
    BadPath(String),
    #[error("cannot read {path}: {reason}")]
    Parse { path: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("knowledge store {path}: {source}")]
    Store {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("knowledge base `{kb}` was embedded with {stored}, and this embedder is {have}; ingest it again into a new base")]
    Mismatch {
        kb: String,
        stored: String,
        have: String,
    },
    #[error("keyword index: {0}")]
    Index(String),
    #[error(transparent)]
    Embed(#[from] EmbedError),
}

fn known_bases(known: &[String]) -> String {
    if known.is_empty() {
        "there are none yet; create one with `switchyard ingest --kb NAME PATH`".into()
    } else {
        format!("the bases are: {}", known.join(", "))
    }
}

/// What ingesting one document did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// The stored document has the same content hash: nothing was done.
    Unchanged,
    /// The document's chunks were (re)placed.
    Stored { chunks: usize },
}

/// Every knowledge base of one store.
pub struct Knowledge {
    shelf: Mutex<Shelf>,
    embedder: Arc<Embedder>,
    budget: Budget,
    indexes: RwLock<BTreeMap<String, Arc<Index>>>,
}

/// Texts embedded per call while ingesting.
const EMBED_BATCH: usize = 16;

fn valid_name(name: &str) -> Result<(), KnowledgeError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(KnowledgeError::BadName(name.to_owned()))
    }
}

fn valid_path(path: &str) -> Result<(), KnowledgeError> {
    let ok = !path.trim().is_empty()
        && !path.contains('\0')
        && !path.split(['/', '\\']).any(|part| part == "..");
    if ok {
        Ok(())
    } else {
        Err(KnowledgeError::BadPath(path.to_owned()))
    }
}

impl Knowledge {
    /// The knowledge bases kept in the SQLite file at `store` (created when missing).
    pub fn open(store: &Path, embedder: Arc<Embedder>) -> Result<Knowledge, KnowledgeError> {
        Ok(Knowledge {
            shelf: Mutex::new(Shelf::open(store)?),
            embedder,
            budget: Budget::default(),
            indexes: RwLock::new(BTreeMap::new()),
        })
    }

    /// Cut chunks to `budget` instead of the default.
    pub fn with_budget(mut self, budget: Budget) -> Knowledge {
        self.budget = budget;
        self
    }

    fn shelf(&self) -> std::sync::MutexGuard<'_, Shelf> {
        self.shelf.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The names of the bases.
    pub fn names(&self) -> Result<Vec<String>, KnowledgeError> {
        Ok(self
            .shelf()
            .bases()?
            .into_iter()
            .map(|(name, ..)| name)
            .collect())
    }

    fn known(&self, kb: &str) -> Result<(), KnowledgeError> {
        let names = self.names()?;
        if names.iter().any(|n| n == kb) {
            Ok(())
        } else {
            Err(KnowledgeError::UnknownBase {
                name: kb.to_owned(),
                known: names,
            })
        }
    }

    /// Every base with its counts of documents and chunks.
    pub fn bases(&self) -> Result<Vec<BaseInfo>, KnowledgeError> {
        let shelf = self.shelf();
        shelf
            .bases()?
            .into_iter()
            .map(|(name, ..)| shelf.base_info(&name))
            .collect()
    }

    /// The documents of a base.
    pub fn documents(&self, kb: &str) -> Result<Vec<DocumentInfo>, KnowledgeError> {
        self.known(kb)?;
        self.shelf().documents(kb)
    }

    /// Parse, chunk, embed and store one document as `path` in base `kb` (created when new),
    /// replacing what was stored under that path; a document whose content is unchanged is
    /// skipped. Either all of the document's chunks are stored or none are.
    pub fn ingest(
        &self,
        kb: &str,
        path: &str,
        format: Format,
        bytes: &[u8],
    ) -> Result<Ingested, KnowledgeError> {
        valid_name(kb)?;
        valid_path(path)?;
        let sha256 = format!("{:x}", Sha256::digest(bytes));
        {
            let shelf = self.shelf();
            self.check_embedder(&shelf, kb)?;
            if shelf.sha256(kb, path)?.as_deref() == Some(sha256.as_str()) {
                return Ok(Ingested::Unchanged);
            }
        }
        let blocks = parse(format, bytes).map_err(|reason| KnowledgeError::Parse {
            path: path.to_owned(),
            reason,
        })?;
        let count = |text: &str| {
            self.embedder
                .count_tokens(text)
                .unwrap_or_else(|_| text.split_whitespace().count())
        };
        let cut = chunks(&blocks, self.budget, &count);
        if cut.is_empty() {
            return Err(KnowledgeError::Parse {
                path: path.to_owned(),
                reason: "it has no text".into(),
            });
        }
        let texts: Vec<String> = cut.iter().map(Chunk::indexed_text).collect();
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(EMBED_BATCH) {
            let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
            vectors.extend(self.embedder.embed(&refs)?.vectors);
        }
        let new: Vec<NewChunk<'_>> = cut
            .iter()
            .zip(&vectors)
            .map(|(c, v)| NewChunk {
                heading: &c.heading,
                text: &c.text,
                vector: v,
            })
            .collect();
        let doc = NewDocument {
            path,
            format: format.name(),
            sha256: &sha256,
            bytes: bytes.len() as u64,
        };
        let stored_chunks = new.len();
        let ids = {
            let mut shelf = self.shelf();
            shelf.create_base(kb, self.embedder.model_name(), self.embedder.dimensions())?;
            shelf.put(kb, &doc, &new)?
        };
        drop(new);
        if let Some(index) = self.loaded(kb) {
            let stored = ids
                .into_iter()
                .zip(cut)
                .zip(vectors)
                .enumerate()
                .map(|(ordinal, ((id, chunk), vector))| StoredChunk {
                    id,
                    path: path.to_owned(),
                    ordinal: ordinal as u32,
                    heading: chunk.heading,
                    text: chunk.text,
                    vector,
                })
                .collect();
            index.replace(path, stored)?;
        }
        Ok(Ingested::Stored {
            chunks: stored_chunks,
        })
    }

    fn check_embedder(&self, shelf: &Shelf, kb: &str) -> Result<(), KnowledgeError> {
        let have = (self.embedder.model_name(), self.embedder.dimensions());
        match shelf.bases()?.into_iter().find(|(name, ..)| name == kb) {
            Some((_, model, dims)) if (model.as_str(), dims) != have => {
                Err(KnowledgeError::Mismatch {
                    kb: kb.to_owned(),
                    stored: format!("{model} ({dims} dimensions)"),
                    have: format!("{} ({} dimensions)", have.0, have.1),
                })
            }
            _ => Ok(()),
        }
    }

    /// Remove the document at `path` from base `kb`; whether it was there.
    pub fn delete(&self, kb: &str, path: &str) -> Result<bool, KnowledgeError> {
        self.known(kb)?;
        let removed = self.shelf().delete(kb, path)?;
        if let Some(index) = self.loaded(kb) {
            index.replace(path, Vec::new())?;
        }
        Ok(removed)
    }

    fn loaded(&self, kb: &str) -> Option<Arc<Index>> {
        self.indexes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(kb)
            .cloned()
    }

    /// The search index of base `kb`, built from the store on first use.
    fn index(&self, kb: &str) -> Result<Arc<Index>, KnowledgeError> {
        if let Some(index) = self.loaded(kb) {
            return Ok(index);
        }
        self.known(kb)?;
        let mut indexes = self.indexes.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(index) = indexes.get(kb) {
            return Ok(index.clone());
        }
        let chunks = self.shelf().chunks(kb)?;
        let index = Arc::new(Index::build(chunks)?);
        indexes.insert(kb.to_owned(), index.clone());
        Ok(index)
    }

    /// Build every base's search index now rather than at its first search.
    pub fn load(&self) -> Result<(), KnowledgeError> {
        for name in self.names()? {
            self.index(&name)?;
        }
        Ok(())
    }

    /// The best chunks of base `kb` for `search` (its `k` at most [`MAX_K`]).
    pub fn search(&self, kb: &str, search: &Search<'_>) -> Result<Vec<Hit>, KnowledgeError> {
        let index = self.index(kb)?;
        let search = Search {
            k: search.k.min(MAX_K),
            ..*search
        };
        let vector = if search.mode.needs_vector() {
            self.embedder.embed(&[search.text])?.vectors.pop()
        } else {
            None
        };
        index.search(&search, vector.as_deref())
    }

    /// The embedder the bases' vectors are made with.
    pub fn embedder(&self) -> &Arc<Embedder> {
        &self.embedder
    }
}

/// The instruction that comes before the passages in a model's prompt.
pub const INSTRUCTION: &str = "Answer the question using only the sources below. Cite each source you use by its number in brackets, like [1]. If the sources do not contain the answer, say that you do not know.";

/// The passages as they are put into a model's prompt: the instruction, then each hit numbered
/// from 1 (the marker the answer cites), with its document and heading.
pub fn prompt(hits: &[Hit]) -> String {
    let mut out = String::from(INSTRUCTION);
    if hits.is_empty() {
        out.push_str("\n\nNo source matches this question.");
    }
    for (i, hit) in hits.iter().enumerate() {
        out.push_str(&format!("\n\n[{}] {}", i + 1, hit.document));
        if !hit.heading.is_empty() {
            out.push_str(&format!(" ({})", hit.heading));
        }
        out.push('\n');
        out.push_str(&hit.text);
    }
    out
}
