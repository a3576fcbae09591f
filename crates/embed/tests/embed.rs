//! Specifications for the all-MiniLM-L6-v2 embedder. Needs the model files (scripts/fetch-models.sh).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use switchyard_embed::{EmbedError, Embedder, Precision};

fn model_dir() -> PathBuf {
    switchyard_models::find("all-MiniLM-L6-v2").unwrap_or_else(|missing| panic!("{missing}"))
}

fn embedder() -> &'static Embedder {
    static EMBEDDER: OnceLock<Embedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| Embedder::load(&model_dir()).expect("load all-MiniLM-L6-v2"))
}

fn f32_embedder() -> &'static Embedder {
    static EMBEDDER: OnceLock<Embedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| Embedder::load_with(&model_dir(), Precision::F32).expect("load f32"))
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn one(text: &str) -> Vec<f32> {
    embedder().embed(&[text]).expect("embed").vectors.remove(0)
}

#[test]
fn reports_name_and_dimensions() {
    assert_eq!(embedder().model_name(), "all-MiniLM-L6-v2");
    assert_eq!(embedder().dimensions(), 384);
}

#[test]
fn vectors_are_384_dimensional_and_unit_length() {
    let out = embedder()
        .embed(&["Hello world.", "Where is my refund?", ""])
        .expect("embed");
    assert_eq!(out.vectors.len(), 3);
    for v in &out.vectors {
        assert_eq!(v.len(), 384);
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
}

#[test]
fn similar_sentences_are_closer() {
    let food = one("A man is eating food.");
    let bread = one("A man is eating a piece of bread.");
    let horse = one("A man is riding a horse.");
    let near = cosine(&food, &bread);
    let far = cosine(&food, &horse);
    assert!(near > far + 0.3, "near {near}, far {far}");
}

#[test]
fn batch_matches_one_by_one() {
    let texts = [
        "A man is eating food.",
        "",
        "The quarterly report shows that billing errors dropped sharply.",
        "Short.",
    ];
    let batch = embedder().embed(&texts).expect("embed batch");
    for (text, got) in texts.iter().zip(&batch.vectors) {
        let alone = one(text);
        for (a, b) in got.iter().zip(&alone) {
            assert!((a - b).abs() < 1e-4, "{text:?}: {a} vs {b}");
        }
    }
}

#[test]
fn empty_input_and_empty_string() {
    let none = embedder().embed(&[]).expect("embed nothing");
    assert!(none.vectors.is_empty());
    assert_eq!(none.tokens, 0);
    let empty = embedder().embed(&[""]).expect("embed empty string");
    assert_eq!(empty.vectors[0].len(), 384);
    assert_eq!(empty.tokens, 2, "[CLS] and [SEP]");
}

#[test]
fn counts_tokens_and_truncates_to_256() {
    let out = embedder().embed(&["hello world"]).expect("embed");
    assert_eq!(out.tokens, 4);
    let long = "word ".repeat(1000);
    let out = embedder().embed(&[&long]).expect("embed long text");
    assert_eq!(out.tokens, 256);
    assert_eq!(out.vectors[0].len(), 384);
}

/// Leading values computed once with candle-transformers' `BertModel` (an independent
/// implementation) on the same weights, mean-pooled and normalised.
#[test]
fn matches_reference_implementation() {
    let cases: [(&str, [f32; 4]); 2] = [
        (
            "A man is eating food.",
            [0.033_241_548, 0.004_406_076, -0.006_276_969, 0.048_378_62],
        ),
        (
            "",
            [
                -0.118_838_33,
                0.048_298_56,
                -0.002_548_152_6,
                -0.011_011_228,
            ],
        ),
    ];
    for (text, want) in cases {
        let got = f32_embedder()
            .embed(&[text])
            .expect("embed")
            .vectors
            .remove(0);
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-4, "{text:?}: {g} vs {w}");
        }
    }
}

#[test]
fn int8_vectors_stay_close_to_f32_ones() {
    if Precision::fastest() != Precision::Int8 {
        eprintln!("skipped: this CPU has no AVX-512 VNNI, so int8 is never used");
        return;
    }
    assert_eq!(embedder().precision(), Precision::Int8);
    let texts = [
        "A man is eating food.",
        "How do I reset my password if I no longer have access to my email?",
        "The quarterly report shows that customer support tickets about billing errors dropped \
         sharply after the new invoice system launched.",
        "fn main() { println!(\"hello\"); }",
        "Quelle est la capitale de la France ?",
    ];
    let int8 = embedder().embed(&texts).expect("int8").vectors;
    let f32 = f32_embedder().embed(&texts).expect("f32").vectors;
    for ((text, a), b) in texts.iter().zip(&int8).zip(&f32) {
        let c = cosine(a, b);
        assert!(c > 0.99, "{text:?}: cosine(int8, f32) = {c}");
    }
}

#[test]
fn shareable_across_threads() {
    let shared = Arc::new(Embedder::load(&model_dir()).expect("load"));
    let handles: Vec<_> = (0..2)
        .map(|i| {
            let e = Arc::clone(&shared);
            std::thread::spawn(move || e.embed(&[&format!("thread {i}")]).map(|o| o.vectors))
        })
        .collect();
    for h in handles {
        let vectors = h.join().expect("thread").expect("embed");
        assert_eq!(vectors[0].len(), 384);
    }
}

#[test]
fn missing_dir_is_a_clear_error() {
    let err = Embedder::load(std::path::Path::new("/nonexistent/all-MiniLM-L6-v2"))
        .err()
        .expect("must fail");
    assert!(matches!(err, EmbedError::MissingFile { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("config.json"), "{msg}");
    assert!(msg.contains("scripts/fetch-models.sh"), "{msg}");
}

#[test]
fn corrupt_weights_are_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("switchyard-embed-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tempdir");
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(model_dir().join(f), dir.join(f)).expect("copy");
    }
    std::fs::write(dir.join("model.safetensors"), b"not a safetensors file").expect("write");
    let err = Embedder::load(&dir).err().expect("must fail");
    std::fs::remove_dir_all(&dir).ok();
    let msg = err.to_string();
    assert!(matches!(err, EmbedError::CorruptFile { .. }), "{err:?}");
    assert!(msg.contains("model.safetensors"), "{msg}");
    assert!(msg.contains("scripts/fetch-models.sh"), "{msg}");
}
