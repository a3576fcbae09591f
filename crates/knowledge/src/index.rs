//! The in-memory half of a knowledge base, rebuilt from the store at open: vectors scanned
//! exactly in int8 and re-scored in f32, and a tantivy index in RAM for BM25.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use tantivy::collector::{BytesFilterCollector, TopDocs};
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    BytesOptions, Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions,
    STRING,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{DocAddress, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::chunk::indexed_text;
use crate::shelf::StoredChunk;
use crate::KnowledgeError;

/// How a search ranks chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Reciprocal rank fusion of the vector and keyword rankings.
    #[default]
    Hybrid,
    /// Cosine similarity of the question's and the chunks' embeddings.
    Vector,
    /// BM25 over the chunks' words (stemmed, English stop words dropped).
    Keyword,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Hybrid => "hybrid",
            Mode::Vector => "vector",
            Mode::Keyword => "keyword",
        }
    }

    pub fn needs_vector(self) -> bool {
        self != Mode::Keyword
    }
}

/// A retrieved chunk.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hit {
    /// The document's path in its base.
    pub document: String,
    /// The chunk's position in its document, from 0.
    pub chunk: u32,
    pub heading: String,
    pub text: String,
    /// The mode's own score: RRF for hybrid, cosine similarity for vector, BM25 for keyword.
    pub score: f32,
    /// Cosine similarity of the question and the chunk, whatever the mode (none in keyword
    /// mode, which embeds nothing): the measure `min_score` compares against.
    #[serde(skip)]
    pub similarity: Option<f32>,
}

/// What to look for.
#[derive(Debug, Clone, Copy)]
pub struct Search<'a> {
    pub text: &'a str,
    pub k: usize,
    pub mode: Mode,
    /// Only documents whose path starts with this.
    pub prefix: Option<&'a str>,
}

/// Candidates each ranking hands to fusion, and int8 candidates re-scored in f32.
const CANDIDATES: usize = 50;
/// The constant of reciprocal rank fusion (Cormack et al., 2009).
const RRF_K: f32 = 60.0;
const ANALYZER: &str = "switchyard_en";

struct Entry {
    id: u64,
    path: Arc<str>,
    ordinal: u32,
    heading: String,
    text: String,
}

/// Rows of vectors, each in f32 and in int8 with its scale.
#[derive(Default)]
struct Vectors {
    entries: Vec<Entry>,
    by_id: HashMap<u64, usize>,
    f32s: Vec<f32>,
    codes: Vec<i8>,
    scales: Vec<f32>,
}

fn quantize(vector: &[f32], codes: &mut Vec<i8>) -> f32 {
    let max = vector.iter().fold(0f32, |m, v| m.max(v.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    codes.extend(vector.iter().map(|v| (v / scale).round() as i8));
    scale
}

fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(&x, &y)| x as i32 * y as i32).sum()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A score with a total order, for heaps.
#[derive(PartialEq)]
struct Scored(f32, usize);

impl Eq for Scored {}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(other.1.cmp(&self.1))
    }
}

impl Vectors {
    fn dims(&self) -> usize {
        self.codes
            .len()
            .checked_div(self.entries.len())
            .unwrap_or(0)
    }

    fn remove_path(&mut self, path: &str) {
        let dims = self.dims();
        if dims == 0 || !self.entries.iter().any(|e| &*e.path == path) {
            return;
        }
        let mut keep = 0;
        for row in 0..self.entries.len() {
            if &*self.entries[row].path == path {
                continue;
            }
            if keep != row {
                self.entries.swap(keep, row);
                self.f32s
                    .copy_within(row * dims..(row + 1) * dims, keep * dims);
                self.codes
                    .copy_within(row * dims..(row + 1) * dims, keep * dims);
                self.scales[keep] = self.scales[row];
            }
            keep += 1;
        }
        self.entries.truncate(keep);
        self.f32s.truncate(keep * dims);
        self.codes.truncate(keep * dims);
        self.scales.truncate(keep);
        self.by_id = self
            .entries
            .iter()
            .enumerate()
            .map(|(row, e)| (e.id, row))
            .collect();
    }

    fn push(&mut self, chunk: StoredChunk, path: Arc<str>) {
        self.by_id.insert(chunk.id, self.entries.len());
        self.scales.push(quantize(&chunk.vector, &mut self.codes));
        self.f32s.extend_from_slice(&chunk.vector);
        self.entries.push(Entry {
            id: chunk.id,
            path,
            ordinal: chunk.ordinal,
            heading: chunk.heading,
            text: chunk.text,
        });
    }

    /// The best `k` rows by cosine similarity: an exact int8 scan for candidates, re-scored in f32.
    fn nearest(&self, query: &[f32], k: usize, prefix: Option<&str>) -> Vec<(usize, f32)> {
        let dims = query.len();
        if self.dims() != dims || k == 0 {
            return Vec::new();
        }
        let mut q = Vec::with_capacity(dims);
        quantize(query, &mut q);
        let keep = k.max(CANDIDATES);
        let mut heap: BinaryHeap<std::cmp::Reverse<Scored>> = BinaryHeap::with_capacity(keep + 1);
        for (row, codes) in self.codes.chunks_exact(dims).enumerate() {
            if prefix.is_some_and(|p| !self.entries[row].path.starts_with(p)) {
                continue;
            }
            let score = dot_i8(&q, codes) as f32 * self.scales[row];
            if heap.len() < keep {
                heap.push(std::cmp::Reverse(Scored(score, row)));
            } else if heap.peek().is_some_and(|min| score > min.0 .0) {
                heap.pop();
                heap.push(std::cmp::Reverse(Scored(score, row)));
            }
        }
        let mut rescored: Vec<(usize, f32)> = heap
            .into_iter()
            .map(|std::cmp::Reverse(Scored(_, row))| (row, self.similarity(row, query)))
            .collect();
        rescored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        rescored.truncate(k);
        rescored
    }

    fn similarity(&self, row: usize, query: &[f32]) -> f32 {
        let dims = query.len();
        dot(&self.f32s[row * dims..(row + 1) * dims], query)
    }
}

struct Keyword {
    index: tantivy::Index,
    writer: Mutex<IndexWriter>,
    reader: IndexReader,
    id: Field,
    path: Field,
    path_bytes: Field,
    body: Field,
}

fn index_err(e: tantivy::TantivyError) -> KnowledgeError {
    KnowledgeError::Index(e.to_string())
}

impl Keyword {
    fn new() -> Result<Keyword, KnowledgeError> {
        let mut schema = Schema::builder();
        let id = schema.add_u64_field("id", NumericOptions::default().set_fast());
        let path = schema.add_text_field("path", STRING);
        let path_bytes = schema.add_bytes_field("path_bytes", BytesOptions::default().set_fast());
        let body = schema.add_text_field(
            "body",
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(ANALYZER)
                    .set_index_option(IndexRecordOption::WithFreqs),
            ),
        );
        let index = tantivy::Index::create_in_ram(schema.build());
        let analyzer =
            TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(RemoveLongFilter::limit(40))
                .filter(LowerCaser)
                .filter(StopWordFilter::new(Language::English).ok_or_else(|| {
                    KnowledgeError::Index("tantivy has no English stop words".into())
                })?)
                .filter(Stemmer::new(Language::English))
                .build();
        index.tokenizers().register(ANALYZER, analyzer);
        // One indexing thread: ingest is bounded by embedding, not by tantivy.
        let writer = index
            .writer_with_num_threads(1, 32_000_000)
            .map_err(index_err)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(index_err)?;
        Ok(Keyword {
            index,
            writer: Mutex::new(writer),
            reader,
            id,
            path,
            path_bytes,
            body,
        })
    }

    fn replace(&self, path: &str, chunks: &[StoredChunk]) -> Result<(), KnowledgeError> {
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        writer.delete_term(Term::from_field_text(self.path, path));
        for chunk in chunks {
            let mut doc = TantivyDocument::default();
            doc.add_u64(self.id, chunk.id);
            doc.add_text(self.path, path);
            doc.add_bytes(self.path_bytes, path.as_bytes());
            doc.add_text(self.body, indexed_text(&chunk.heading, &chunk.text));
            writer.add_document(doc).map_err(index_err)?;
        }
        writer.commit().map_err(index_err)?;
        self.reader.reload().map_err(index_err)
    }

    fn query(&self, text: &str) -> Option<BooleanQuery> {
        let mut analyzer = self.index.tokenizers().get(ANALYZER)?;
        let mut stream = analyzer.token_stream(text);
        let mut seen = HashSet::new();
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        while stream.advance() {
            let token = stream.token().text.clone();
            if seen.insert(token.clone()) {
                let term = Term::from_field_text(self.body, &token);
                clauses.push((
                    Occur::Should,
                    Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)),
                ));
            }
        }
        (!clauses.is_empty()).then(|| BooleanQuery::new(clauses))
    }

    /// Chunk ids by BM25, best first.
    fn search(
        &self,
        text: &str,
        k: usize,
        prefix: Option<&str>,
    ) -> Result<Vec<(u64, f32)>, KnowledgeError> {
        let Some(query) = self.query(text) else {
            return Ok(Vec::new());
        };
        let searcher = self.reader.searcher();
        let top = TopDocs::with_limit(k.max(1)).order_by_score();
        let found: Vec<(f32, DocAddress)> = match prefix {
            Some(prefix) => {
                let prefix = prefix.as_bytes().to_vec();
                let filter = BytesFilterCollector::new(
                    "path_bytes".to_owned(),
                    move |bytes: &[u8]| bytes.starts_with(&prefix),
                    top,
                );
                searcher.search(&query, &filter).map_err(index_err)?
            }
            None => searcher.search(&query, &top).map_err(index_err)?,
        };
        let mut out = Vec::with_capacity(found.len());
        for (score, address) in found {
            let ids = searcher
                .segment_reader(address.segment_ord)
                .fast_fields()
                .u64("id")
                .map_err(index_err)?;
            if let Some(id) = ids.first(address.doc_id) {
                out.push((id, score));
            }
        }
        Ok(out)
    }
}

/// A knowledge base's search index.
pub struct Index {
    vectors: RwLock<Vectors>,
    keyword: Keyword,
}

impl Index {
    /// An empty index.
    pub fn new() -> Result<Index, KnowledgeError> {
        Ok(Index {
            vectors: RwLock::new(Vectors::default()),
            keyword: Keyword::new()?,
        })
    }

    /// An index of `chunks`, grouped by document as the store returns them.
    pub fn build(chunks: Vec<StoredChunk>) -> Result<Index, KnowledgeError> {
        let index = Index::new()?;
        let mut by_path: Vec<(String, Vec<StoredChunk>)> = Vec::new();
        for chunk in chunks {
            match by_path.last_mut() {
                Some((path, group)) if *path == chunk.path => group.push(chunk),
                _ => by_path.push((chunk.path.clone(), vec![chunk])),
            }
        }
        {
            let mut writer = index
                .keyword
                .writer
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let mut vectors = index
                .vectors
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            for (path, group) in by_path {
                let path: Arc<str> = Arc::from(path);
                for chunk in group {
                    let mut doc = TantivyDocument::default();
                    doc.add_u64(index.keyword.id, chunk.id);
                    doc.add_text(index.keyword.path, &*path);
                    doc.add_bytes(index.keyword.path_bytes, path.as_bytes());
                    doc.add_text(
                        index.keyword.body,
                        indexed_text(&chunk.heading, &chunk.text),
                    );
                    writer.add_document(doc).map_err(index_err)?;
                    vectors.push(chunk, path.clone());
                }
            }
            writer.commit().map_err(index_err)?;
        }
        index.keyword.reader.reload().map_err(index_err)?;
        Ok(index)
    }

    /// Replace the chunks of the document at `path` (none: remove it).
    pub fn replace(&self, path: &str, chunks: Vec<StoredChunk>) -> Result<(), KnowledgeError> {
        self.keyword.replace(path, &chunks)?;
        let mut vectors = self.vectors.write().unwrap_or_else(PoisonError::into_inner);
        vectors.remove_path(path);
        let shared: Arc<str> = Arc::from(path);
        for chunk in chunks {
            vectors.push(chunk, shared.clone());
        }
        Ok(())
    }

    /// How many chunks the index holds.
    pub fn len(&self) -> usize {
        self.vectors
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The best `search.k` chunks; `vector` is the question's embedding, needed unless the mode
    /// is keyword.
    pub fn search(
        &self,
        search: &Search<'_>,
        vector: Option<&[f32]>,
    ) -> Result<Vec<Hit>, KnowledgeError> {
        let depth = search.k.max(CANDIDATES);
        let keyword = match search.mode {
            Mode::Vector => Vec::new(),
            Mode::Keyword => self.keyword.search(search.text, search.k, search.prefix)?,
            Mode::Hybrid => self.keyword.search(search.text, depth, search.prefix)?,
        };
        let vectors = self.vectors.read().unwrap_or_else(PoisonError::into_inner);
        let nearest = match (search.mode, vector) {
            (Mode::Keyword, _) | (_, None) => Vec::new(),
            (Mode::Vector, Some(v)) => vectors.nearest(v, search.k, search.prefix),
            (Mode::Hybrid, Some(v)) => vectors.nearest(v, depth, search.prefix),
        };
        let keyword_rows = keyword
            .iter()
            .filter_map(|(id, score)| vectors.by_id.get(id).map(|&row| (row, *score)));
        let ranked: Vec<(usize, f32)> = match search.mode {
            Mode::Vector => nearest,
            Mode::Keyword => keyword_rows.collect(),
            Mode::Hybrid => {
                let mut fused: HashMap<usize, f32> = HashMap::new();
                let keyword_rows: Vec<(usize, f32)> = keyword_rows.collect();
                for list in [&nearest, &keyword_rows] {
                    for (rank, (row, _)) in list.iter().enumerate() {
                        *fused.entry(*row).or_default() += 1.0 / (RRF_K + rank as f32 + 1.0);
                    }
                }
                let mut fused: Vec<(usize, f32)> = fused.into_iter().collect();
                fused.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                fused.truncate(search.k);
                fused
            }
        };
        Ok(ranked
            .into_iter()
            .map(|(row, score)| {
                let entry = &vectors.entries[row];
                Hit {
                    document: entry.path.to_string(),
                    chunk: entry.ordinal,
                    heading: entry.heading.clone(),
                    text: entry.text.clone(),
                    score,
                    similarity: vector.map(|v| vectors.similarity(row, v)),
                }
            })
            .collect())
    }
}
