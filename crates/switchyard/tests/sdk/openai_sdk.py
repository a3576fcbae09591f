"""The real `openai` Python SDK against a running Switchyard.

Usage: openai_sdk.py BASE_URL API_KEY MODEL EMBEDDING_MODEL
Exits non-zero with a message on the first broken expectation.
"""
import sys

import openai
from openai import OpenAI

base_url, api_key, model, embedding_model = sys.argv[1:5]


def check(condition, detail):
    """Raises on a broken expectation; `assert` would vanish under PYTHONOPTIMIZE."""
    if not condition:
        raise AssertionError(detail)


client = OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=60)
question = [{"role": "user", "content": "What is the capital of France?"}]

# A normal completion, with the gateway's headers.
raw = client.chat.completions.with_raw_response.create(model=model, messages=question, max_tokens=32)
completion = raw.parse()
answer = completion.choices[0].message.content
check(answer and answer.strip(), f"empty answer: {completion}")
check(completion.choices[0].finish_reason in ("stop", "length"), completion)
check(completion.usage.completion_tokens > 0, completion.usage)
check(raw.headers["x-switchyard-model"] == model, raw.headers)
check(raw.headers["x-switchyard-request-id"], raw.headers)
float(raw.headers["x-switchyard-cost-usd"])

# A streamed completion with usage: text deltas, then one usage chunk.
stream = client.chat.completions.create(
    model=model, messages=question, max_tokens=32, stream=True,
    stream_options={"include_usage": True},
)
pieces, usage, finish = [], None, None
for chunk in stream:
    if chunk.usage is not None:
        usage = chunk.usage
    for choice in chunk.choices:
        if choice.delta.content:
            pieces.append(choice.delta.content)
        if choice.finish_reason:
            finish = choice.finish_reason
streamed = "".join(pieces)
check(streamed.strip(), "the stream carried no text")
check(finish in ("stop", "length"), finish)
check(usage is not None and usage.completion_tokens > 0, usage)
check(usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, usage)

# Embeddings: the SDK asks for base64 by default and decodes it.
vectors = client.embeddings.create(model=embedding_model, input=["A man is eating food.", "A man rides a horse."])
check(len(vectors.data) == 2 and len(vectors.data[0].embedding) == 384, vectors)
norm = sum(x * x for x in vectors.data[0].embedding)
check(abs(norm - 1.0) < 1e-3, norm)
floats = client.embeddings.create(model=embedding_model, input="A man is eating food.", encoding_format="float")
check(all(abs(a - b) < 1e-5 for a, b in zip(floats.data[0].embedding, vectors.data[0].embedding)),
      "float and base64 embeddings of the same text differ")

# Errors arrive as the SDK's typed exceptions, with OpenAI's error shape.
try:
    client.chat.completions.create(model="no-such-model", messages=question)
    raise AssertionError("an unknown model was accepted")
except openai.NotFoundError as e:
    check(e.code == "model_not_found", e.body)
try:
    OpenAI(base_url=base_url, api_key="wrong-key", max_retries=0).chat.completions.create(model=model, messages=question)
    raise AssertionError("a wrong key was accepted")
except openai.AuthenticationError as e:
    check(e.status_code == 401, e)
try:
    client.chat.completions.create(model=model, messages=[])
    raise AssertionError("empty messages were accepted")
except openai.BadRequestError as e:
    check(e.body["param"] == "messages", e.body)

print(f"openai SDK ok: {answer.strip()!r} / streamed {streamed.strip()!r}")
