//! The request log and other state, in SQLite.
//!
//! Rows are written off the hot path: handlers hand a [`RequestRecord`] to a bounded channel
//! and a writer thread commits them in batches (one transaction per batch, WAL mode), so a
//! request never waits on the disk. [`RequestLog::close`] drains the channel before it returns:
//! a clean stop loses no row.
//!
//! Two tables: `requests`, one row per request (with, when `[router] record_features` is on,
//! the router's features of the conversation: never its text), and `feedback`, the scores
//! clients send for answers through `POST /v1/feedback`. [`usage`] sums the requests' costs
//! against their counterfactual on the baseline model.

mod keys;
mod usage;

pub use keys::{ActiveKey, KeyHasher, KeyInfo, Keys};
pub use usage::{parse_time, usage, GroupBy, Usage, UsageQuery, UsageRow};

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection};
use tokio::sync::{mpsc, oneshot};

/// How many records may wait for the writer before handlers are slowed down (back-pressure,
/// never dropping a row).
const QUEUE: usize = 16_384;
/// The most rows committed in one transaction.
const BATCH: usize = 1_024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store at {path}: {source}; check that its folder exists and is writable, or set [store] path")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("store query failed: {0}")]
    Query(#[from] rusqlite::Error),
    #[error("cannot start the request-log writer: {0}")]
    Spawn(std::io::Error),
    #[error("{0}")]
    Key(String),
}

/// One row of the `requests` table: one request, successful or not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestRecord {
    pub id: String,
    /// Milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// The model the client asked for (a name, or "auto").
    pub requested_model: String,
    /// The model the decision chose to answer first (none for a request that never reached
    /// a decision); `model` differs from it when a fallback or a later cascade rung answered.
    pub chosen: Option<String>,
    /// The model that answered (empty when none did).
    pub model: String,
    /// Why that model: the decision's reason.
    pub route: String,
    pub status: u16,
    pub stream: bool,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub cost_usd: f64,
    pub latency_ms: f64,
    pub upstream_latency_ms: Option<f64>,
    pub ttft_ms: Option<f64>,
    pub error: Option<String>,
    /// The decision's numbers (similarities, learned score, cascade confidences) as a JSON
    /// object.
    pub scores: Option<String>,
    /// The cascade's rungs, each with its model, verdict, confidence, threshold and cost, as
    /// a JSON array (`switchyard_router::logged::Rung`); none when the request was no cascade.
    pub cascade: Option<String>,
    /// The conversation's sentence embedding as the learned router sees it (only when
    /// `[router] record_features` is on); stored as a little-endian f32 BLOB.
    pub embedding: Option<Vec<f32>>,
    /// The learned router's cheap text features of the conversation (same condition).
    pub cheap_features: Option<Vec<f32>>,
    /// What the privacy guard redacted from the request the answering model got, by type:
    /// `EMAIL=2,PHONE=1` (never the values).
    pub redacted: Option<String>,
    /// The request's messages as JSON with every value the guard found replaced by a
    /// placeholder; only with `[store] log_text = "redacted"`, never the raw text.
    pub text: Option<String>,
    /// The knowledge base passages put into the prompt, as JSON:
    /// `{"kb": "support", "chunks": ["billing/late.md#2"]}` (ids, never the passages' text).
    pub sources: Option<String>,
    /// What the request would have cost on the accounting baseline model: its price on this
    /// request's prompt tokens and the answering model's completion tokens (none in rows
    /// written before accounting existed).
    pub baseline_cost_usd: Option<f64>,
    /// The name of the API key the request came with (never the secret).
    pub key_name: Option<String>,
    /// The decision's short label (the route's name, `explicit`, `default`, …), by which
    /// usage is grouped; `route` holds the whole reason.
    pub route_name: Option<String>,
}

/// One row of the `feedback` table: a client's verdict on an answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedbackRecord {
    /// The `x-switchyard-request-id` of the answer rated. Not checked against `requests`
    /// when written (rows are written in batches, off the request path).
    pub request_id: String,
    /// Milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// 0 (bad) … 1 (good).
    pub score: f64,
    pub comment: Option<String>,
}

impl RequestRecord {
    pub fn now_ms() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    requested_model TEXT NOT NULL,
    model TEXT NOT NULL,
    route TEXT NOT NULL,
    status INTEGER NOT NULL,
    stream INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    latency_ms REAL NOT NULL,
    upstream_latency_ms REAL,
    ttft_ms REAL,
    error TEXT,
    scores TEXT,
    embedding BLOB,
    cheap_features BLOB,
    cascade TEXT,
    chosen TEXT,
    redacted TEXT,
    text TEXT,
    sources TEXT,
    baseline_cost_usd REAL,
    key_name TEXT,
    route_name TEXT
);
CREATE INDEX IF NOT EXISTS requests_created_at ON requests(created_at_ms);
CREATE TABLE IF NOT EXISTS feedback (
    request_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    score REAL NOT NULL,
    comment TEXT
);
CREATE INDEX IF NOT EXISTS feedback_request ON feedback(request_id);
";

pub(crate) fn open(path: &Path) -> Result<Connection, StoreError> {
    let wrap = |source| StoreError::Open {
        path: path.to_owned(),
        source,
    };
    let conn = Connection::open(path).map_err(wrap)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(wrap)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(wrap)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(wrap)?;
    conn.execute_batch(SCHEMA).map_err(wrap)?;
    migrate(&conn).map_err(wrap)?;
    Ok(conn)
}

/// Columns added after the first release, for logs written by an older version.
const ADDED_COLUMNS: [(&str, &str); 11] = [
    ("scores", "TEXT"),
    ("embedding", "BLOB"),
    ("cheap_features", "BLOB"),
    ("cascade", "TEXT"),
    ("chosen", "TEXT"),
    ("redacted", "TEXT"),
    ("text", "TEXT"),
    ("sources", "TEXT"),
    ("baseline_cost_usd", "REAL"),
    ("key_name", "TEXT"),
    ("route_name", "TEXT"),
];

/// f32 values as a little-endian BLOB.
fn to_blob(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A BLOB written by [`to_blob`]; none when its length is not a whole number of f32s.
fn from_blob(bytes: &[u8]) -> Option<Vec<f32>> {
    bytes.len().is_multiple_of(4).then(|| {
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    })
}

fn migrate(conn: &Connection) -> Result<(), rusqlite::Error> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('requests')")?;
    let have: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for (name, kind) in ADDED_COLUMNS {
        if !have.iter().any(|h| h == name) {
            conn.execute_batch(&format!("ALTER TABLE requests ADD COLUMN {name} {kind}"))?;
        }
    }
    Ok(())
}

enum Msg {
    Record(Box<RequestRecord>),
    Feedback(Box<FeedbackRecord>),
    /// Answered once every row queued before it is committed.
    Flush(oneshot::Sender<()>),
    Close(oneshot::Sender<()>),
}

/// The request log's writing end. Cheap to share behind an `Arc`.
pub struct RequestLog {
    tx: mpsc::Sender<Msg>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl RequestLog {
    /// Opens (creating if needed) the SQLite file and starts the writer thread.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = open(path)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let worker = std::thread::Builder::new()
            .name("request-log".into())
            .spawn(move || write_loop(conn, rx))
            .map_err(StoreError::Spawn)?;
        Ok(RequestLog {
            tx,
            worker: Mutex::new(Some(worker)),
        })
    }

    /// Queues one row. Waits only when the writer is a full queue behind.
    pub async fn record(&self, record: RequestRecord) {
        if self.tx.send(Msg::Record(Box::new(record))).await.is_err() {
            tracing::error!("request log is closed; a row was not written");
        }
    }

    /// Queues one feedback row, like [`RequestLog::record`].
    pub async fn feedback(&self, feedback: FeedbackRecord) {
        if self
            .tx
            .send(Msg::Feedback(Box::new(feedback)))
            .await
            .is_err()
        {
            tracing::error!("request log is closed; a feedback row was not written");
        }
    }

    /// Queues one row without waiting: for places that cannot await, such as a response body
    /// being dropped. When the queue is full the row is handed to a task that waits for room.
    pub fn record_now(&self, record: RequestRecord) {
        match self.tx.try_send(Msg::Record(Box::new(record))) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(msg)) => {
                let tx = self.tx.clone();
                match tokio::runtime::Handle::try_current() {
                    Ok(rt) => {
                        rt.spawn(async move {
                            let _ = tx.send(msg).await;
                        });
                    }
                    Err(_) => {
                        let _ = tx.blocking_send(msg);
                    }
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("request log is closed; a row was not written");
            }
        }
    }

    /// Returns once every row queued before the call is committed: a reader that flushes
    /// first sees its own requests.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Writes every queued row, then stops the writer. Later records are refused (and logged).
    pub async fn close(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Close(done)).await.is_ok() {
            let _ = wait.await;
        }
        let worker = self.worker.lock().ok().and_then(|mut w| w.take());
        if let Some(worker) = worker {
            let _ = tokio::task::spawn_blocking(move || worker.join()).await;
        }
    }
}

fn write_loop(mut conn: Connection, mut rx: mpsc::Receiver<Msg>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut feedback = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        // Who waits for this batch to be committed, and whether the writer stops after it.
        let mut reply = None;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Record(r) => batch.push(r),
                Msg::Feedback(f) => feedback.push(f),
                Msg::Flush(done) => {
                    reply = Some((done, false));
                    break;
                }
                Msg::Close(done) => {
                    reply = Some((done, true));
                    break;
                }
            }
            if batch.len() + feedback.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if let Err(e) = insert(&mut conn, &batch, &feedback) {
            tracing::error!(rows = batch.len() + feedback.len(), error = %e, "request log: writing a batch failed");
        }
        batch.clear();
        feedback.clear();
        match reply {
            Some((done, true)) => {
                rx.close();
                let _ = done.send(());
                return;
            }
            Some((done, false)) => {
                let _ = done.send(());
            }
            None => {}
        }
    }
}

fn insert(
    conn: &mut Connection,
    rows: &[Box<RequestRecord>],
    feedback: &[Box<FeedbackRecord>],
) -> Result<(), rusqlite::Error> {
    if rows.is_empty() && feedback.is_empty() {
        return Ok(());
    }
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT OR REPLACE INTO requests (id, created_at, created_at_ms, requested_model, model, route, status, stream,
                prompt_tokens, completion_tokens, cost_usd, latency_ms, upstream_latency_ms, ttft_ms, error, scores,
                embedding, cheap_features, cascade, chosen, redacted, text, sources, baseline_cost_usd, key_name, route_name)
             VALUES (?1, strftime('%Y-%m-%d %H:%M:%f', ?2 / 1000.0, 'unixepoch'), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)",
        )?;
        for r in rows {
            stmt.execute(params![
                r.id,
                r.created_at_ms,
                r.requested_model,
                r.model,
                r.route,
                r.status,
                r.stream,
                r.prompt_tokens,
                r.completion_tokens,
                r.cost_usd,
                r.latency_ms,
                r.upstream_latency_ms,
                r.ttft_ms,
                r.error,
                r.scores,
                r.embedding.as_deref().map(to_blob),
                r.cheap_features.as_deref().map(to_blob),
                r.cascade,
                r.chosen,
                r.redacted,
                r.text,
                r.sources,
                r.baseline_cost_usd,
                r.key_name,
                r.route_name,
            ])?;
        }
        let mut stmt = tx.prepare_cached(
            "INSERT INTO feedback (request_id, created_at, created_at_ms, score, comment)
             VALUES (?1, strftime('%Y-%m-%d %H:%M:%f', ?2 / 1000.0, 'unixepoch'), ?2, ?3, ?4)",
        )?;
        for f in feedback {
            stmt.execute(params![f.request_id, f.created_at_ms, f.score, f.comment])?;
        }
    }
    tx.commit()
}

/// Reads the request log, oldest first: for tools, reports and tests.
pub fn read_requests(path: &Path) -> Result<Vec<RequestRecord>, StoreError> {
    let mut out = Vec::new();
    scan_requests(path, |r| out.push(r))?;
    Ok(out)
}

/// Hands every row of the request log to `each`, oldest first, one at a time (a log with
/// features holds about 1.5 kB per row: no need to hold them all).
pub fn scan_requests(path: &Path, mut each: impl FnMut(RequestRecord)) -> Result<(), StoreError> {
    let conn = open(path)?;
    let mut stmt = conn.prepare(
        "SELECT id, created_at_ms, requested_model, model, route, status, stream, prompt_tokens, completion_tokens,
                cost_usd, latency_ms, upstream_latency_ms, ttft_ms, error, scores, embedding, cheap_features,
                cascade, chosen, redacted, text, sources, baseline_cost_usd, key_name, route_name
         FROM requests ORDER BY created_at_ms, rowid",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let blob = |i: usize| -> Result<Option<Vec<f32>>, rusqlite::Error> {
            Ok(row
                .get::<_, Option<Vec<u8>>>(i)?
                .and_then(|b| from_blob(&b)))
        };
        each(RequestRecord {
            id: row.get(0)?,
            created_at_ms: row.get(1)?,
            requested_model: row.get(2)?,
            model: row.get(3)?,
            route: row.get(4)?,
            status: row.get(5)?,
            stream: row.get(6)?,
            prompt_tokens: row.get(7)?,
            completion_tokens: row.get(8)?,
            cost_usd: row.get(9)?,
            latency_ms: row.get(10)?,
            upstream_latency_ms: row.get(11)?,
            ttft_ms: row.get(12)?,
            error: row.get(13)?,
            scores: row.get(14)?,
            embedding: blob(15)?,
            cheap_features: blob(16)?,
            cascade: row.get(17)?,
            chosen: row.get(18)?,
            redacted: row.get(19)?,
            text: row.get(20)?,
            sources: row.get(21)?,
            baseline_cost_usd: row.get(22)?,
            key_name: row.get(23)?,
            route_name: row.get(24)?,
        });
    }
    Ok(())
}

/// Reads the feedback table, oldest first.
pub fn read_feedback(path: &Path) -> Result<Vec<FeedbackRecord>, StoreError> {
    let conn = open(path)?;
    let mut stmt = conn.prepare(
        "SELECT request_id, created_at_ms, score, comment FROM feedback ORDER BY created_at_ms, rowid",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok(FeedbackRecord {
            request_id: row.get(0)?,
            created_at_ms: row.get(1)?,
            score: row.get(2)?,
            comment: row.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> RequestRecord {
        RequestRecord {
            id: format!("req-{i}"),
            created_at_ms: RequestRecord::now_ms(),
            requested_model: "auto".into(),
            model: "small".into(),
            route: "default".into(),
            status: 200,
            prompt_tokens: 10,
            completion_tokens: 5,
            cost_usd: 0.001,
            latency_ms: 1.5,
            ..Default::default()
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn close_writes_every_queued_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let log = RequestLog::open(&path).unwrap();
        for i in 0..5_000 {
            log.record(record(i)).await;
        }
        log.close().await;
        let rows = read_requests(&path).unwrap();
        assert_eq!(rows.len(), 5_000);
        assert_eq!(rows[0], record(0).clone_with_time(rows[0].created_at_ms));
    }

    #[tokio::test]
    async fn records_after_close_are_refused_not_panicking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let log = RequestLog::open(&path).unwrap();
        log.close().await;
        log.record(record(1)).await;
        log.close().await;
        assert!(read_requests(&path).unwrap().is_empty());
    }

    #[test]
    fn a_log_from_before_the_scores_column_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let old = SCHEMA.replace(",\n    scores TEXT", "");
        Connection::open(&path)
            .unwrap()
            .execute_batch(&old)
            .unwrap();
        let log = RequestLog::open(&path).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            log.record(RequestRecord {
                scores: Some("{\"learned\":0.7}".into()),
                ..record(1)
            })
            .await;
            log.close().await;
        });
        assert_eq!(
            read_requests(&path).unwrap()[0].scores.as_deref(),
            Some("{\"learned\":0.7}")
        );
    }

    /// The schema of the first release: no `scores`, no features, no `feedback` table.
    const FIRST_SCHEMA: &str = "
CREATE TABLE requests (
    id TEXT PRIMARY KEY, created_at TEXT NOT NULL, created_at_ms INTEGER NOT NULL,
    requested_model TEXT NOT NULL, model TEXT NOT NULL, route TEXT NOT NULL,
    status INTEGER NOT NULL, stream INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL, cost_usd REAL NOT NULL, latency_ms REAL NOT NULL,
    upstream_latency_ms REAL, ttft_ms REAL, error TEXT
);";

    #[test]
    fn features_and_feedback_round_trip_in_a_log_from_the_first_release() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("first.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(FIRST_SCHEMA).unwrap();
        conn.execute(
            "INSERT INTO requests VALUES ('old', '2024-01-01', 1, 'auto', 'small', 'default', 200, 0, 1, 1, 0.0, 1.0, NULL, NULL, NULL)",
            [],
        )
        .unwrap();
        drop(conn);
        let log = RequestLog::open(&path).unwrap();
        let embedding = vec![0.25f32, -1.5, 3.0e-7, f32::MAX];
        let cheap = vec![1.0f32, 0.0, 0.5, 0.0, 2.0, 0.69];
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            log.record(RequestRecord {
                embedding: Some(embedding.clone()),
                cheap_features: Some(cheap.clone()),
                scores: Some("{\"confidence.small\":0.3}".into()),
                cascade: Some("[{\"model\":\"small\",\"step\":\"failed\"}]".into()),
                ..record(1)
            })
            .await;
            log.feedback(FeedbackRecord {
                request_id: "req-1".into(),
                created_at_ms: 5,
                score: 0.25,
                comment: Some("wrong year".into()),
            })
            .await;
            log.feedback(FeedbackRecord {
                request_id: "no-such-request".into(),
                created_at_ms: 6,
                score: 1.0,
                comment: None,
            })
            .await;
            log.close().await;
        });
        let rows = read_requests(&path).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].id, "old");
        assert_eq!(
            (rows[0].embedding.as_ref(), rows[0].scores.as_ref()),
            (None, None)
        );
        assert_eq!(rows[1].embedding.as_ref(), Some(&embedding));
        assert_eq!(rows[1].cheap_features.as_ref(), Some(&cheap));
        assert_eq!(
            (rows[0].cascade.as_deref(), rows[1].cascade.as_deref()),
            (None, Some("[{\"model\":\"small\",\"step\":\"failed\"}]"))
        );
        let feedback = read_feedback(&path).unwrap();
        assert_eq!(
            feedback,
            vec![
                FeedbackRecord {
                    request_id: "req-1".into(),
                    created_at_ms: 5,
                    score: 0.25,
                    comment: Some("wrong year".into()),
                },
                FeedbackRecord {
                    request_id: "no-such-request".into(),
                    created_at_ms: 6,
                    score: 1.0,
                    comment: None,
                },
            ]
        );
    }

    #[test]
    fn a_blob_that_is_not_whole_f32s_reads_as_none() {
        assert_eq!(from_blob(&to_blob(&[1.0, 2.0])), Some(vec![1.0, 2.0]));
        assert_eq!(from_blob(&[0, 0, 128]), None);
    }

    #[test]
    fn unwritable_path_is_a_clear_error() {
        let err = RequestLog::open(Path::new("/nonexistent-dir/x/log.db"))
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("/nonexistent-dir/x/log.db"),
            "{err}"
        );
    }

    impl RequestRecord {
        fn clone_with_time(mut self, t: i64) -> Self {
            self.created_at_ms = t;
            self
        }
    }
}
