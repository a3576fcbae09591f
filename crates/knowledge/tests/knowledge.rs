//! Specifications for knowledge bases: ingest of each format, re-ingest, delete, durability and
//! retrieval, with the real all-MiniLM-L6-v2 embedder (scripts/fetch-models.sh) and SQLite.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use switchyard_embed::Embedder;
use switchyard_knowledge::{Format, Ingested, Knowledge, KnowledgeError, Mode, Search};

fn embedder() -> Arc<Embedder> {
    static EMBEDDER: OnceLock<Arc<Embedder>> = OnceLock::new();
    EMBEDDER
        .get_or_init(|| {
            let dir = switchyard_models::find("all-MiniLM-L6-v2")
                .unwrap_or_else(|missing| panic!("{missing}"));
            Arc::new(Embedder::load(&dir).expect("load all-MiniLM-L6-v2"))
        })
        .clone()
}

fn open(db: &Path) -> Knowledge {
    Knowledge::open(db, embedder()).expect("open the knowledge store")
}

fn search<'a>(text: &'a str, mode: Mode) -> Search<'a> {
    Search {
        text,
        k: 3,
        mode,
        prefix: None,
    }
}

const LATE_PAYMENT: &str = "# Billing\n\n## Late payment\n\nIf the amount due has not arrived 5 days after the due date we add a late payment fee of $9.50.\n\n## Refunds\n\nRefunds for overpaid bills reach your bank account within 7 business days.\n";

const ROAMING_HTML: &str = "<html><head><script>track()</script></head><body><nav>Home</nav><h1>Travel</h1><h2>Roaming passes</h2><p>A Travel Day Pass costs $6 for each day you use your phone abroad.</p><table><tr><th>Zone</th><th>Daily price</th></tr><tr><td>Europe</td><td>$6</td></tr></table></body></html>";

const RETURNS_TEXT: &str = "DEVICE RETURNS\n\nYou may return a phone within 14 days of delivery for a full refund.\n\nRestocking\n\nA restocking charge of $25 applies to opened boxes.\n";

/// A one-page PDF whose page shows `lines`, with a correct cross-reference table.
fn pdf(lines: &[&str]) -> Vec<u8> {
    let mut content = String::from("BT /F1 12 Tf 72 720 Td 16 TL\n");
    for line in lines {
        content.push_str(&format!("({line}) Tj T*\n"));
    }
    content.push_str("ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_string(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    let mut out = String::from("%PDF-1.4\n");
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.push_str(&format!("{} 0 obj\n{object}\nendobj\n", i + 1));
    }
    let xref = out.len();
    out.push_str(&format!(
        "xref\n0 {}\n0000000000 65535 f \n",
        objects.len() + 1
    ));
    for offset in offsets {
        out.push_str(&format!("{offset:010} 00000 n \n"));
    }
    out.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    ));
    out.into_bytes()
}

fn db(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("switchyard.db")
}

#[test]
fn each_format_is_ingested_and_found_by_its_content_with_its_heading_path() {
    let dir = tempfile::tempdir().unwrap();
    let kb = open(&db(&dir));
    let pdf = pdf(&[
        "Contract cancellation",
        "Ending a contract early costs a fee of $120.",
    ]);
    let docs: [(&str, Format, &[u8]); 4] = [
        ("billing/late.md", Format::Markdown, LATE_PAYMENT.as_bytes()),
        ("travel/roaming.html", Format::Html, ROAMING_HTML.as_bytes()),
        ("devices/returns.txt", Format::Text, RETURNS_TEXT.as_bytes()),
        ("legal/contract.pdf", Format::Pdf, &pdf),
    ];
    for (path, format, bytes) in docs {
        let got = kb.ingest("support", path, format, bytes).unwrap();
        assert!(
            matches!(got, Ingested::Stored { chunks } if chunks >= 1),
            "{path}: {got:?}"
        );
    }
    let cases = [
        (
            "how much is the fee when I pay my bill late",
            "billing/late.md",
            "Billing > Late payment",
        ),
        (
            "what does a day of roaming in Europe cost",
            "travel/roaming.html",
            "Travel > Roaming passes",
        ),
        (
            "restocking charge for an opened box",
            "devices/returns.txt",
            "DEVICE RETURNS > Restocking",
        ),
        ("fee for ending my contract early", "legal/contract.pdf", ""),
    ];
    for mode in [Mode::Hybrid, Mode::Vector, Mode::Keyword] {
        for (question, document, heading) in cases {
            let hits = kb.search("support", &search(question, mode)).unwrap();
            assert_eq!(hits[0].document, document, "{mode:?} {question}: {hits:?}");
            if !heading.is_empty() {
                assert_eq!(hits[0].heading, heading, "{mode:?} {question}");
            }
        }
    }
    let pdf_hit = &kb
        .search("support", &search("ending a contract early", Mode::Keyword))
        .unwrap()[0];
    assert!(pdf_hit.text.contains("$120"), "{pdf_hit:?}");
}

#[test]
fn reingesting_skips_an_unchanged_document_and_replaces_a_changed_one() {
    let dir = tempfile::tempdir().unwrap();
    let kb = open(&db(&dir));
    kb.ingest("kb", "late.md", Format::Markdown, LATE_PAYMENT.as_bytes())
        .unwrap();
    assert_eq!(
        kb.ingest("kb", "late.md", Format::Markdown, LATE_PAYMENT.as_bytes())
            .unwrap(),
        Ingested::Unchanged
    );
    // Searching builds the index; a later change must reach it too.
    let before = kb
        .search("kb", &search("late payment fee", Mode::Keyword))
        .unwrap();
    assert!(before[0].text.contains("$9.50"));
    let changed = LATE_PAYMENT.replace("$9.50", "$12.00");
    assert!(matches!(
        kb.ingest("kb", "late.md", Format::Markdown, changed.as_bytes())
            .unwrap(),
        Ingested::Stored { .. }
    ));
    let docs = kb.documents("kb").unwrap();
    assert_eq!(docs.len(), 1);
    for mode in [Mode::Keyword, Mode::Vector, Mode::Hybrid] {
        let hits = kb.search("kb", &search("late payment fee", mode)).unwrap();
        assert!(hits[0].text.contains("$12.00"), "{mode:?}: {hits:?}");
        assert!(
            hits.iter().all(|h| !h.text.contains("$9.50")),
            "{mode:?}: {hits:?}"
        );
    }
    assert_eq!(kb.bases().unwrap()[0].chunks, docs[0].chunks);
}

#[test]
fn a_deleted_document_is_gone_from_the_list_and_from_every_search_mode() {
    let dir = tempfile::tempdir().unwrap();
    let kb = open(&db(&dir));
    kb.ingest("kb", "late.md", Format::Markdown, LATE_PAYMENT.as_bytes())
        .unwrap();
    kb.ingest("kb", "returns.txt", Format::Text, RETURNS_TEXT.as_bytes())
        .unwrap();
    kb.search("kb", &search("fee", Mode::Hybrid)).unwrap();
    assert!(kb.delete("kb", "late.md").unwrap());
    assert!(
        !kb.delete("kb", "late.md").unwrap(),
        "a second delete finds nothing"
    );
    let paths: Vec<String> = kb
        .documents("kb")
        .unwrap()
        .into_iter()
        .map(|d| d.path)
        .collect();
    assert_eq!(paths, ["returns.txt"]);
    for mode in [Mode::Keyword, Mode::Vector, Mode::Hybrid] {
        let hits = kb.search("kb", &search("late payment fee", mode)).unwrap();
        assert!(
            hits.iter().all(|h| h.document == "returns.txt"),
            "{mode:?}: {hits:?}"
        );
    }
}

#[test]
fn a_corrupt_pdf_is_refused_by_name_and_the_base_keeps_what_it_had() {
    let dir = tempfile::tempdir().unwrap();
    let kb = open(&db(&dir));
    kb.ingest("kb", "late.md", Format::Markdown, LATE_PAYMENT.as_bytes())
        .unwrap();
    let mut broken = pdf(&["Some text"]);
    broken.truncate(40);
    broken.extend_from_slice(b"\x00\xff garbage");
    let err = kb
        .ingest("kb", "broken.pdf", Format::Pdf, &broken)
        .unwrap_err();
    assert!(
        matches!(err, KnowledgeError::Parse { ref path, .. } if path == "broken.pdf"),
        "{err}"
    );
    assert!(err.to_string().contains("broken.pdf"), "{err}");
    let paths: Vec<String> = kb
        .documents("kb")
        .unwrap()
        .into_iter()
        .map(|d| d.path)
        .collect();
    assert_eq!(paths, ["late.md"]);
}

#[test]
fn bases_survive_reopening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    {
        let kb = open(&db(&dir));
        kb.ingest(
            "support",
            "late.md",
            Format::Markdown,
            LATE_PAYMENT.as_bytes(),
        )
        .unwrap();
        kb.ingest(
            "travel",
            "roaming.html",
            Format::Html,
            ROAMING_HTML.as_bytes(),
        )
        .unwrap();
    }
    let kb = open(&db(&dir));
    let bases: Vec<(String, u64)> = kb
        .bases()
        .unwrap()
        .into_iter()
        .map(|b| (b.name, b.documents))
        .collect();
    assert_eq!(
        bases,
        [("support".to_string(), 1), ("travel".to_string(), 1)]
    );
    let hits = kb
        .search("support", &search("late payment fee", Mode::Hybrid))
        .unwrap();
    assert!(hits[0].text.contains("$9.50"));
    assert!(hits[0].similarity.is_some_and(|s| s > 0.3), "{hits:?}");
}

#[test]
fn an_unknown_base_is_an_error_naming_the_bases_that_exist() {
    let dir = tempfile::tempdir().unwrap();
    let kb = open(&db(&dir));
    let none = kb.search("nope", &search("x", Mode::Hybrid)).unwrap_err();
    assert!(none.to_string().contains("switchyard ingest"), "{none}");
    kb.ingest(
        "support",
        "late.md",
        Format::Markdown,
        LATE_PAYMENT.as_bytes(),
    )
    .unwrap();
    let err = kb.documents("nope").unwrap_err();
    assert!(err.to_string().contains("the bases are: support"), "{err}");
    let bad = kb
        .ingest("no spaces", "a.md", Format::Markdown, b"# A\n\ntext")
        .unwrap_err();
    assert!(matches!(bad, KnowledgeError::BadName(_)), "{bad}");
}

#[test]
fn a_path_prefix_keeps_the_search_inside_one_folder() {
    let dir = tempfile::tempdir().unwrap();
    let kb = open(&db(&dir));
    kb.ingest(
        "kb",
        "billing/late.md",
        Format::Markdown,
        LATE_PAYMENT.as_bytes(),
    )
    .unwrap();
    kb.ingest(
        "kb",
        "devices/returns.txt",
        Format::Text,
        RETURNS_TEXT.as_bytes(),
    )
    .unwrap();
    for mode in [Mode::Keyword, Mode::Vector, Mode::Hybrid] {
        let hits = kb
            .search(
                "kb",
                &Search {
                    text: "late payment fee",
                    k: 5,
                    mode,
                    prefix: Some("devices/"),
                },
            )
            .unwrap();
        assert!(!hits.is_empty() || mode == Mode::Keyword, "{mode:?}");
        assert!(
            hits.iter().all(|h| h.document.starts_with("devices/")),
            "{mode:?}: {hits:?}"
        );
    }
}
