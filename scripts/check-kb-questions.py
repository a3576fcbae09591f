#!/usr/bin/env python3
# Checks the labelled questions of the sample knowledge base (python3 stdlib only).
#
#   python3 scripts/check-kb-questions.py [QUESTIONS.jsonl]
#
# Each line of the questions file (default examples/knowledge/questions.jsonl) must be a JSON
# object with "id", "split", "question", "document" and "answer"; ids are unique, split is "dev"
# or "test". An answerable question names a document (a path under the docs folder next to the
# questions file) that exists and whose text holds the answer: case-insensitive, whitespace
# normalised, and for HTML with <head>, <nav>, <header>, <footer>, scripts and styles dropped,
# tags stripped and entities unescaped. An unanswerable question has document and answer both
# null. Problems are printed one per line (exit 1); otherwise one line ending in ": ok".
import html
import json
import re
import sys
from pathlib import Path

FIELDS = ("id", "split", "question", "document", "answer")
SPLITS = ("dev", "test")
DOC_SUFFIXES = (".md", ".markdown", ".txt", ".text", ".html", ".htm", ".pdf")
SKIPPED = re.compile(
    r"<(head|nav|header|footer|script|style|noscript|template)\b.*?</\1\s*>",
    re.IGNORECASE | re.DOTALL,
)


def normalise(text):
    return " ".join(text.split()).casefold()


def document_text(path):
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".html", ".htm"):
        text = SKIPPED.sub(" ", text)
        text = re.sub(r"<!--.*?-->", " ", text, flags=re.DOTALL)
        text = re.sub(r"<[^>]+>", " ", text)
        text = html.unescape(text)
    return normalise(text)


def main():
    root = Path(__file__).resolve().parent.parent
    questions = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "examples/knowledge/questions.jsonl"
    docs = questions.parent / "docs"
    if not questions.is_file():
        print(f"{questions}: no such file")
        return 1
    if not docs.is_dir():
        print(f"{docs}: no such folder")
        return 1
    documents = sorted(
        p for p in docs.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in DOC_SUFFIXES
    )
    texts = {}
    problems = []
    seen = set()
    count = 0
    for number, line in enumerate(questions.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        count += 1
        where = f"{questions.name}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(f"{where}: not valid JSON ({e})")
            continue
        if not isinstance(row, dict):
            problems.append(f"{where}: not a JSON object")
            continue
        missing = [f for f in FIELDS if f not in row]
        if missing:
            problems.append(f"{where}: missing field(s) {', '.join(missing)}")
            continue
        qid = row["id"]
        if not isinstance(qid, str) or not qid:
            problems.append(f"{where}: id must be a non-empty string")
        elif qid in seen:
            problems.append(f"{where}: duplicate id {qid}")
        else:
            seen.add(qid)
            where = f"{where} ({qid})"
        if row["split"] not in SPLITS:
            problems.append(f"{where}: split {row['split']!r} is not one of {', '.join(SPLITS)}")
        if not isinstance(row["question"], str) or not row["question"].strip():
            problems.append(f"{where}: question must be a non-empty string")
        document, answer = row["document"], row["answer"]
        if document is None or answer is None:
            if document is not None or answer is not None:
                problems.append(f"{where}: document and answer must both be null for an unanswerable question")
            continue
        if not isinstance(document, str) or not isinstance(answer, str) or not answer.strip():
            problems.append(f"{where}: document and answer must be non-empty strings")
            continue
        path = docs / document
        if not path.is_file():
            problems.append(f"{where}: document {document} does not exist under {docs}")
            continue
        if path not in texts:
            try:
                texts[path] = document_text(path)
            except (OSError, UnicodeDecodeError) as e:
                problems.append(f"{where}: cannot read {document} ({e})")
                continue
        if normalise(answer) not in texts[path]:
            problems.append(f"{where}: answer {answer!r} does not occur in {document}")
    for problem in problems:
        print(problem)
    if problems:
        return 1
    print(f"checked {count} questions over {len(documents)} documents: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
