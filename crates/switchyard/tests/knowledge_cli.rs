//! `switchyard ingest` and `switchyard kb` as a user meets them: the real binary, a config whose
//! `[store] path` is in a temporary folder, and a folder of tiny documents.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A temporary folder holding a config, its store and a folder of documents.
struct Workspace {
    dir: tempfile::TempDir,
    config: PathBuf,
}

/// What one run of the binary did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// One row of `kb show`: the path, format, bytes and chunks of a stored document.
#[derive(Debug, PartialEq, Eq)]
struct Shown {
    path: String,
    format: String,
    bytes: u64,
    chunks: u64,
}

const GUIDE_MD: &str = "# Roaming\n\nA daily roaming pass costs $5 in the EU.\n\n## Data\n\nThe pass includes 2 GB of mobile data per day.\n";
const NOTES_TXT: &str =
    "LATE PAYMENT\n\nA late payment fee of $9.50 applies when a bill is paid after 14 days.\n";
const PAGE_HTML: &str = "<html><head><title>Refunds</title></head><body><h1>Refunds</h1><p>Refunds reach your card within 5 working days.</p></body></html>";

impl Workspace {
    /// A config whose store is `store/kb.db` in a fresh temporary folder (the one model is an
    /// upstream that no command here calls), and a `docs` folder with a Markdown guide, a text
    /// note, an HTML page in a subfolder, an image, a hidden draft and a PDF that is no PDF.
    fn new() -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("switchyard.toml");
        let store = dir.path().join("store").join("kb.db");
        std::fs::write(
            &config,
            format!(
                "[store]\npath = {:?}\n\n[models.large]\nprovider = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n",
                store.display().to_string()
            ),
        )
        .unwrap();
        let ws = Workspace { dir, config };
        ws.write("guide.md", GUIDE_MD.as_bytes());
        ws.write("notes.txt", NOTES_TXT.as_bytes());
        ws.write("web/page.html", PAGE_HTML.as_bytes());
        ws.write("photo.png", b"\x89PNG\r\n\x1a\n not text");
        ws.write(".draft.md", b"# Draft\n\nNot ready to be searched.\n");
        ws.write("broken.pdf", b"%PDF-1.4\nthis is not really a PDF\n");
        ws
    }

    fn docs(&self) -> PathBuf {
        self.dir.path().join("docs")
    }

    /// Write `bytes` to `docs/<path>`.
    fn write(&self, path: &str, bytes: &[u8]) {
        let file = self.docs().join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, bytes).unwrap();
    }

    fn remove(&self, path: &str) {
        std::fs::remove_file(self.docs().join(path)).unwrap();
    }

    /// `switchyard ARGS… --config CONFIG`, run in the temporary folder.
    fn run(&self, args: &[&str]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .current_dir(self.dir.path())
            .env(switchyard_models::ENV, switchyard_models::dir())
            .env("RUST_LOG", "warn")
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()
            .unwrap();
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `switchyard ingest --kb docs docs/` (the folder, with whatever is in it now).
    fn ingest(&self) -> Run {
        let docs = self.docs();
        self.run(&["ingest", "--kb", "docs", path_str(&docs)])
    }

    /// Ingest with the broken PDF removed first, so that the run succeeds.
    fn ingest_readable(&self) -> Run {
        self.remove("broken.pdf");
        let run = self.ingest();
        assert_eq!(run.code, Some(0), "{run}");
        run
    }

    /// The documents `kb show docs` lists.
    fn show(&self) -> Vec<Shown> {
        let run = self.run(&["kb", "show", "docs"]);
        assert_eq!(run.code, Some(0), "{run}");
        let mut lines = run.stdout.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(
            header,
            ["path", "format", "bytes", "chunks", "ingested"],
            "{run}"
        );
        lines
            .take_while(|l| !l.starts_with("kb docs:"))
            .map(|line| {
                let cells: Vec<&str> = line.split_whitespace().collect();
                assert!(
                    cells.len() == 7 && cells[6] == "UTC",
                    "not a document row: {line:?}\n{run}"
                );
                Shown {
                    path: cells[0].to_owned(),
                    format: cells[1].to_owned(),
                    bytes: cells[2].parse().unwrap(),
                    chunks: cells[3].parse().unwrap(),
                }
            })
            .collect()
    }

    /// The rows of `kb list`: base, documents, chunks.
    fn list(&self) -> Vec<(String, u64, u64)> {
        let run = self.run(&["kb", "list"]);
        assert_eq!(run.code, Some(0), "{run}");
        let mut lines = run.stdout.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(header, ["base", "documents", "chunks"], "{run}");
        lines
            .map(
                |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                    [base, documents, chunks] => (
                        base.to_owned(),
                        documents.parse().unwrap(),
                        chunks.parse().unwrap(),
                    ),
                    _ => panic!("not a base row: {line:?}\n{run}"),
                },
            )
            .collect()
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

fn shown(path: &str, format: &str, bytes: usize, chunks: u64) -> Shown {
    Shown {
        path: path.to_owned(),
        format: format.to_owned(),
        bytes: bytes as u64,
        chunks,
    }
}

/// The three readable documents as first ingested: the guide has two sections, so two chunks.
fn first_three() -> Vec<Shown> {
    vec![
        shown("guide.md", "markdown", GUIDE_MD.len(), 2),
        shown("notes.txt", "text", NOTES_TXT.len(), 1),
        shown("web/page.html", "html", PAGE_HTML.len(), 1),
    ]
}

#[test]
fn ingest_stores_each_readable_file_counts_the_others_and_names_the_one_that_failed() {
    let ws = Workspace::new();
    let run = ws.ingest();

    // The unreadable PDF fails the run (exit code 1), but only after the rest went in.
    assert_eq!(run.code, Some(1), "{run}");
    let failed: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("failed:"))
        .collect();
    assert_eq!(failed.len(), 1, "{run}");
    assert!(
        failed[0].contains("broken.pdf") && failed[0].contains("pdftotext"),
        "{run}"
    );
    assert!(
        run.stderr
            .contains("1 of 5 files could not be ingested (each is named above)"),
        "{run}"
    );
    // The image is skipped and counted; the hidden draft is not even looked at.
    assert!(
        run.stdout.contains(
            "kb docs: 3 documents (3 stored, 0 unchanged), 4 chunks, 1 skipped (not Markdown, text, HTML or PDF), 1 failed"
        ),
        "{run}"
    );
    assert!(
        run.stdout
            .contains("kb docs now holds 3 documents, 4 chunks"),
        "{run}"
    );

    // Stored under their paths below the folder given; neither the image, the draft nor the
    // broken PDF is there.
    assert_eq!(ws.show(), first_three());
    assert_eq!(ws.list(), vec![("docs".to_owned(), 3, 4)]);
}

#[test]
fn ingest_again_skips_unchanged_files_and_stores_only_the_one_that_changed() {
    let ws = Workspace::new();
    let first = ws.ingest_readable();
    assert!(
        first
            .stdout
            .contains("kb docs: 3 documents (3 stored, 0 unchanged), 4 chunks"),
        "{first}"
    );

    let again = ws.ingest();
    assert_eq!(again.code, Some(0), "{again}");
    assert!(
        again
            .stdout
            .contains("kb docs: 3 documents (0 stored, 3 unchanged), 0 chunks"),
        "{again}"
    );
    assert_eq!(ws.show(), first_three());

    let notes = "LATE PAYMENT\n\nThe late payment fee is now $12 after 14 days.\n\nPAYMENT PLANS\n\nA bill can be split into three monthly payments.\n";
    ws.write("notes.txt", notes.as_bytes());
    let changed = ws.ingest();
    assert_eq!(changed.code, Some(0), "{changed}");
    assert!(
        changed
            .stdout
            .contains("kb docs: 3 documents (1 stored, 2 unchanged), 2 chunks"),
        "{changed}"
    );
    assert!(
        changed
            .stdout
            .contains("kb docs now holds 3 documents, 5 chunks"),
        "{changed}"
    );
    assert_eq!(
        ws.show(),
        vec![
            shown("guide.md", "markdown", GUIDE_MD.len(), 2),
            shown("notes.txt", "text", notes.len(), 2),
            shown("web/page.html", "html", PAGE_HTML.len(), 1),
        ]
    );
}

#[test]
fn delete_removes_a_stored_document_and_says_when_there_is_none() {
    let ws = Workspace::new();
    ws.ingest_readable();

    let run = ws.run(&["ingest", "--kb", "docs", "--delete", "notes.txt"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(run.stdout.trim(), "kb docs: deleted notes.txt", "{run}");
    assert_eq!(
        ws.show(),
        vec![
            shown("guide.md", "markdown", GUIDE_MD.len(), 2),
            shown("web/page.html", "html", PAGE_HTML.len(), 1),
        ]
    );
    assert_eq!(ws.list(), vec![("docs".to_owned(), 2, 3)]);

    let again = ws.run(&["ingest", "--kb", "docs", "--delete", "notes.txt"]);
    assert_eq!(again.code, Some(0), "{again}");
    assert!(
        again
            .stdout
            .contains("kb docs: notes.txt is not there; nothing deleted"),
        "{again}"
    );
    // The file itself is still in the folder: ingesting the folder stores it again.
    let back = ws.ingest();
    assert!(
        back.stdout
            .contains("kb docs: 3 documents (1 stored, 2 unchanged)"),
        "{back}"
    );
}

#[test]
fn kb_list_shows_every_base_with_its_documents_and_chunks() {
    let ws = Workspace::new();
    let empty = ws.run(&["kb", "list"]);
    assert_eq!(empty.code, Some(0), "{empty}");
    assert!(
        empty.stdout.starts_with("no knowledge bases in ")
            && empty
                .stdout
                .contains("create one with `switchyard ingest --kb NAME PATH`"),
        "{empty}"
    );

    ws.ingest_readable();
    let guide = ws.docs().join("guide.md");
    let run = ws.run(&["ingest", "--kb", "guides", path_str(&guide)]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(
        ws.list(),
        vec![("docs".to_owned(), 3, 4), ("guides".to_owned(), 1, 2)]
    );
}

#[test]
fn kb_show_of_an_unknown_base_is_an_error_naming_the_bases() {
    let ws = Workspace::new();
    ws.ingest_readable();
    let run = ws.run(&["kb", "show", "nope"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr.contains("no knowledge base named `nope`")
            && run.stderr.contains("the bases are: docs"),
        "{run}"
    );
    assert!(run.stdout.is_empty(), "{run}");
}

#[test]
fn kb_eval_retrieval_only_prints_recall_for_vector_keyword_and_hybrid() {
    let ws = Workspace::new();
    ws.ingest_readable();
    let questions = ws.dir.path().join("questions.jsonl");
    std::fs::write(
        &questions,
        concat!(
            r#"{"id": 1, "split": "test", "question": "How much does a daily roaming pass cost in the EU?", "document": "guide.md", "answer": "$5"}"#,
            "\n",
            r#"{"id": 2, "split": "test", "question": "How long do refunds take to reach my card?", "document": "page.html", "answer": "5 working days"}"#,
            "\n",
            r#"{"id": 3, "split": "test", "question": "Can I bring my dog into the shop?", "document": null, "answer": null}"#,
            "\n",
        ),
    )
    .unwrap();
    let run = ws.run(&[
        "kb",
        "eval",
        "--kb",
        "docs",
        "--questions",
        path_str(&questions),
        "--retrieval-only",
    ]);
    assert_eq!(run.code, Some(0), "{run}");
    // `page.html` is resolved to the stored `web/page.html`: no warning about it.
    assert!(!run.stderr.contains("warning"), "{run}");
    assert!(
        run.stdout
            .contains("kb docs, split all: 3 questions (2 answerable, 1 unanswerable)"),
        "{run}"
    );
    let mut lines = run
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("retrieval"));
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["retrieval", "recall@1", "recall@5", "MRR@10", "ms/query"],
        "{run}"
    );
    let rows: Vec<Vec<&str>> = lines
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    // Each question's words and meaning point at one document of three: every mode ranks it
    // first.
    let modes: Vec<&str> = rows.iter().map(|r| r[0]).collect();
    assert_eq!(modes, ["vector", "keyword", "hybrid"], "{run}");
    for row in &rows {
        assert_eq!(row[1..4], ["1.000", "1.000", "1.000"], "{run}");
        assert!(row[4].parse::<f64>().is_ok(), "{run}");
    }
    // Retrieval only: no model is asked.
    assert!(!run.stdout.contains("answers ("), "{run}");
}

#[test]
fn ingest_refuses_a_bad_base_name_before_reading_anything() {
    let ws = Workspace::new();
    let docs = ws.docs();
    let run = ws.run(&["ingest", "--kb", "my docs", path_str(&docs)]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr.contains("'my docs'") && run.stderr.contains("1 to 64 letters, digits"),
        "{run}"
    );
    assert!(
        !ws.dir.path().join("store").exists(),
        "no store was created\n{run}"
    );
}
