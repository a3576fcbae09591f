//! Sentence embeddings of the training and evaluation texts, through a cache on disk: a text
//! is embedded once per embedder and precision, whatever command asks for it next.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use switchyard_embed::{Embedder, Precision};
use switchyard_router::data::Example;
use switchyard_router::learned;

use crate::OfflineError;

/// all-MiniLM-L6-v2's width, checked against the model when it has to be loaded (only when the
/// cache lacks something).
pub const DIMS: usize = 384;

/// Texts embedded per call of the embedder (and per write to the cache).
const BATCH: usize = 64;

const CACHE_MAGIC: &[u8; 8] = b"SYEMB01\n";

/// The embedding cache's usual place: `embeddings.cache` in the folder of a router model file.
pub fn cache_next_to(model: &Path) -> PathBuf {
    model
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join("embeddings.cache")
}

/// Where embeddings come from.
#[derive(Debug, Clone)]
pub struct Source {
    /// The all-MiniLM-L6-v2 folder.
    pub embedder: PathBuf,
    /// The cache file; `None` reads and writes none.
    pub cache: Option<PathBuf>,
}

/// Embeddings, in the order asked for, and how many came from the cache.
#[derive(Debug)]
pub struct Embedded {
    pub vectors: Vec<Vec<f32>>,
    pub cached: usize,
    pub computed: usize,
    /// Why the cache file was not read, when it exists but was unusable (it is then rewritten).
    pub cache_ignored: Option<String>,
}

/// Embeddings keyed by SHA-256 of (embedder name, precision, text), in a file of fixed-size
/// records (hand-written: a flat append-only file is all this needs).
struct Cache {
    path: Option<PathBuf>,
    known: HashMap<[u8; 32], Vec<f32>>,
}

fn cache_key(text: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(learned::EMBEDDER.as_bytes());
    // The vectors differ slightly between precisions: never mix them in one training set.
    h.update(format!("{:?}", Precision::fastest()).as_bytes());
    h.update([0]);
    h.update(text.as_bytes());
    h.finalize().into()
}

impl Cache {
    fn open(path: Option<PathBuf>) -> (Self, Option<String>) {
        let mut known = HashMap::new();
        let mut ignored = None;
        if let Some(p) = &path {
            match Self::read(p) {
                Ok(k) => known = k,
                Err(e) if p.exists() => ignored = Some(e),
                Err(_) => {}
            }
        }
        (Cache { path, known }, ignored)
    }

    fn read(path: &Path) -> Result<HashMap<[u8; 32], Vec<f32>>, String> {
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| e.to_string())?;
        let header = 8 + 4;
        if bytes.len() < header || &bytes[..8] != CACHE_MAGIC {
            return Err("not an embedding cache".into());
        }
        let stored = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
        if stored != DIMS {
            return Err(format!("it holds {stored}-dimensional vectors, not {DIMS}"));
        }
        let record = 32 + 4 * DIMS;
        Ok(bytes[header..]
            .chunks_exact(record)
            .map(|r| {
                let mut key = [0u8; 32];
                key.copy_from_slice(&r[..32]);
                let v = r[32..]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                (key, v)
            })
            .collect())
    }

    fn append(&self, new: &[([u8; 32], Vec<f32>)], rewrite: bool) -> Result<(), OfflineError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if new.is_empty() {
            return Ok(());
        }
        let wrap = |source| OfflineError::Cache {
            path: path.clone(),
            source,
        };
        let fresh = rewrite || !path.is_file();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(!fresh)
            .truncate(fresh)
            .open(path)
            .map_err(wrap)?;
        let mut buf = Vec::new();
        if fresh {
            buf.extend_from_slice(CACHE_MAGIC);
            buf.extend_from_slice(&(DIMS as u32).to_le_bytes());
        }
        for (key, v) in new {
            buf.extend_from_slice(key);
            v.iter()
                .for_each(|x| buf.extend_from_slice(&x.to_le_bytes()));
        }
        file.write_all(&buf).map_err(wrap)
    }
}

/// Embed every text, from the cache where possible; `progress(done, of)` is told after each
/// batch the embedder computes.
pub fn embed_texts(
    source: &Source,
    texts: &[&str],
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Embedded, OfflineError> {
    let (cache, cache_ignored) = Cache::open(source.cache.clone());
    let keys: Vec<[u8; 32]> = texts.iter().map(|t| cache_key(t)).collect();
    let missing: Vec<usize> = (0..texts.len())
        .filter(|&i| !cache.known.contains_key(&keys[i]))
        .collect();
    let mut fresh: HashMap<[u8; 32], Vec<f32>> = HashMap::new();
    if !missing.is_empty() {
        let dir = &source.embedder;
        let embedder = Embedder::load(dir).map_err(|source| OfflineError::Embedder {
            dir: dir.clone(),
            source,
        })?;
        if embedder.dimensions() != DIMS {
            return Err(OfflineError::EmbedderWidth {
                dir: dir.clone(),
                got: embedder.dimensions(),
                want: DIMS,
            });
        }
        // An unusable cache file is replaced by the first batch written.
        let mut rewrite = cache_ignored.is_some();
        for chunk in missing.chunks(BATCH) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
            let out = embedder.embed(&batch)?;
            let new: Vec<([u8; 32], Vec<f32>)> = chunk
                .iter()
                .zip(out.vectors)
                .map(|(&i, v)| (keys[i], v))
                .collect();
            // Written as we go, so an interrupted run keeps what it paid for.
            cache.append(&new, rewrite)?;
            rewrite = false;
            fresh.extend(new);
            progress(fresh.len(), missing.len());
        }
    }
    let vectors = keys
        .iter()
        .map(|k| {
            cache
                .known
                .get(k)
                .or_else(|| fresh.get(k))
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    Ok(Embedded {
        vectors,
        cached: texts.len() - missing.len(),
        computed: missing.len(),
        cache_ignored,
    })
}

/// Every example's embedding: the one it carries (request-log rows), else its text embedded
/// through [`embed_texts`].
pub fn of_examples(
    source: &Source,
    examples: &[Example],
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Embedded, OfflineError> {
    let texts: Vec<&str> = examples
        .iter()
        .filter(|e| e.features.is_none())
        .map(|e| e.text.as_str())
        .collect();
    let computed = if texts.is_empty() {
        Embedded {
            vectors: Vec::new(),
            cached: 0,
            computed: 0,
            cache_ignored: None,
        }
    } else {
        embed_texts(source, &texts, progress)?
    };
    let mut fresh = computed.vectors.into_iter();
    let vectors = examples
        .iter()
        .map(|e| match &e.features {
            Some(f) => f.embedding.clone(),
            None => fresh.next().unwrap_or_default(),
        })
        .collect();
    Ok(Embedded {
        vectors,
        cached: computed.cached,
        computed: computed.computed,
        cache_ignored: computed.cache_ignored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(dir: &Path) -> Source {
        Source {
            // No embedder there: any text missing from the cache fails to load it.
            embedder: dir.join("no-embedder"),
            cache: Some(dir.join("embeddings.cache")),
        }
    }

    #[test]
    fn cached_texts_need_no_embedder() {
        let dir = tempfile::tempdir().unwrap();
        let src = source(dir.path());
        let (cache, _) = Cache::open(src.cache.clone());
        let v: Vec<f32> = (0..DIMS).map(|i| i as f32).collect();
        cache
            .append(&[(cache_key("hello"), v.clone())], false)
            .unwrap();
        let got = embed_texts(&src, &["hello", "hello"], &mut |_, _| {}).unwrap();
        assert_eq!(got.vectors, vec![v.clone(), v]);
        assert_eq!((got.cached, got.computed), (2, 0));
    }

    #[test]
    fn a_text_missing_from_the_cache_loads_the_embedder_and_says_where_it_looked() {
        let dir = tempfile::tempdir().unwrap();
        let err = embed_texts(&source(dir.path()), &["new"], &mut |_, _| {}).unwrap_err();
        assert!(
            matches!(&err, OfflineError::Embedder { dir: d, .. } if d.ends_with("no-embedder")),
            "{err}"
        );
    }

    #[test]
    fn a_foreign_cache_file_is_reported_and_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let src = source(dir.path());
        std::fs::write(src.cache.as_ref().unwrap(), b"something else entirely").unwrap();
        let (cache, ignored) = Cache::open(src.cache.clone());
        assert!(cache.known.is_empty());
        assert_eq!(ignored.as_deref(), Some("not an embedding cache"));
    }
}
