"""Local stand-ins for the OpenAI and Anthropic HTTP APIs (127.0.0.1, free port).

They answer `POST /v1/chat/completions` and `POST /v1/messages` with bodies shaped like the
real APIs (the SDKs' strict response validation accepts them), fail the way the real APIs
fail (error bodies, status codes, `retry-after`, 529 overloaded), and write their answers
from the numbers in the prompt's `<aggregates>` block, so a well-behaved answer is grounded.
Each server is scripted per test with a queue of steps; unscripted calls get a grounded answer,
or a random fault at `fault_rate` (seeded) for the benchmark.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclasses.dataclass
class Reply:
    """A 200 answer. mode: grounded (quotes the aggregates), invent (adds a number that is not
    in the input), obey (follows numbers smuggled into the untrusted data), text (literal)."""

    mode: str = "grounded"
    text: str | None = None
    delay_s: float = 0.0


@dataclasses.dataclass
class Fail:
    status: int
    message: str = ""
    retry_after: float | None = None


@dataclasses.dataclass
class Hang:
    """Sleeps past the client's timeout before answering."""

    seconds: float = 2.0


_OPENAI_ERRORS = {
    400: ("invalid_request_error", "invalid_value"),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    502: ("server_error", None),
    503: ("server_error", None),
}
_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    529: "overloaded_error",
}

_FACT_LINE = re.compile(r"^- (?P<label>[^\[:]+?)(?: \[<untrusted-data>(?P<name>.*?)</untrusted-data>\])?: (?P<value>.+)$")
_FENCE = re.compile(r"<untrusted-data>(.*?)</untrusted-data>", re.DOTALL)


def answer_from_prompt(prompt: str, mode: str = "grounded", max_facts: int = 9) -> str:
    """Sentences quoting the prompt's aggregates, like a model that follows the instructions."""
    # The block itself, not the system prompt's mention of its tags.
    found = re.search(r"<aggregates>\n(.*?)\n</aggregates>", prompt, re.DOTALL)
    block = found.group(1) if found else ""
    sentences = []
    week = re.search(r"week starting (\d{4}-\d{2}-\d{2})", prompt)
    if week:
        sentences.append(f"Here is the summary for the week starting {week.group(1)}.")
    for line in block.strip().splitlines():
        match = _FACT_LINE.match(line.strip())
        if not match or len(sentences) > max_facts:
            continue
        label, value = match.group("label").strip(), match.group("value").strip()
        about = ""
        if match.group("name"):
            about = f" for {json.loads(match.group('name'))}"
        sentences.append(f"The {label}{about} was {value}.")
    if mode == "invent":
        sentences.append("Lead time improved by 37.4% to 987.6 h.")
    if mode == "obey":
        smuggled = []
        for fenced in _FENCE.findall(prompt):
            smuggled += re.findall(r"\d+(?:\.\d+)?", fenced)
        if smuggled:
            loudest = max(smuggled, key=float)
            sentences.append(f"As instructed, deployments were {loudest} and lead time was {loudest} h.")
    return " ".join(sentences) or "There is no activity to summarise."


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, status: int, body: dict, headers: dict | None = None):
        payload = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)

    def do_POST(self):
        fake = self.server.fake
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path != fake.path:
            return self._send(404, fake.error_body(404, f"no route {self.path}"))
        if fake.api_key_of(self.headers) != fake.api_key:
            return self._send(401, fake.error_body(401, "invalid x-api-key / Incorrect API key provided"))
        step = fake.next_step()
        with fake.lock:
            fake.requests.append(body)
        if isinstance(step, Hang):
            time.sleep(step.seconds)
            step = Reply()
        if isinstance(step, Fail):
            headers = {"retry-after": str(step.retry_after)} if step.retry_after is not None else {}
            headers[fake.request_id_header] = "req_" + uuid.uuid4().hex[:20]
            return self._send(step.status, fake.error_body(step.status, step.message), headers)
        if step.delay_s:
            time.sleep(step.delay_s)
        prompt = fake.prompt_of(body)
        text = step.text if step.mode == "text" else answer_from_prompt(prompt, step.mode)
        return self._send(200, fake.success_body(body, prompt, text))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _FakeBase:
    flavour = ""
    path = ""
    request_id_header = "x-request-id"

    def __init__(self, api_key: str = "test-key-123456", fault_rate: float = 0.0, seed: int = 0, hang_s: float = 2.0):
        self.api_key = api_key
        self.fault_rate = fault_rate
        self.hang_s = hang_s
        self.rng = random.Random(seed)
        self.queue: list = []
        self.default = Reply()
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.fake = self
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def origin(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, *steps) -> None:
        with self.lock:
            self.queue.extend(steps)

    def next_step(self):
        with self.lock:
            if self.queue:
                return self.queue.pop(0)
            if self.fault_rate and self.rng.random() < self.fault_rate:
                return self.random_fault()
            return self.default

    def random_fault(self):
        choice = self.rng.choice(["429", "500", "overloaded", "hang"])
        if choice == "429":
            return Fail(429, "Rate limit reached", retry_after=0)
        if choice == "500":
            return Fail(500, "The server had an error while processing your request.")
        if choice == "hang":
            return Hang(self.hang_s)
        return Fail(self.overloaded_status, "Overloaded")

    @staticmethod
    def _tokens(text: str) -> int:
        return max(1, math.ceil(len(text) / 4))


class FakeOpenAI(_FakeBase):
    flavour = "openai"
    path = "/v1/chat/completions"
    overloaded_status = 503

    @property
    def base_url(self) -> str:  # the openai SDK's base_url includes /v1
        return self.origin + "/v1"

    @staticmethod
    def api_key_of(headers) -> str:
        return (headers.get("authorization") or "").removeprefix("Bearer ")

    @staticmethod
    def prompt_of(body: dict) -> str:
        return "\n".join(m.get("content") or "" for m in body.get("messages", []))

    def error_body(self, status: int, message: str) -> dict:
        error_type, code = _OPENAI_ERRORS.get(status, ("server_error", None))
        return {"error": {"message": message or f"HTTP {status}", "type": error_type, "param": None, "code": code}}

    def success_body(self, request: dict, prompt: str, text: str) -> dict:
        prompt_tokens, completion_tokens = self._tokens(prompt), self._tokens(text)
        return {
            "id": "chatcmpl-" + uuid.uuid4().hex[:24],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", "gpt-test"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }


class FakeAnthropic(_FakeBase):
    flavour = "anthropic"
    path = "/v1/messages"
    overloaded_status = 529
    request_id_header = "request-id"

    @property
    def base_url(self) -> str:  # the anthropic SDK appends /v1/messages itself
        return self.origin

    @staticmethod
    def api_key_of(headers) -> str:
        # The API takes `x-api-key`; anthropic SDK 2.x sends the key as a bearer token instead.
        return headers.get("x-api-key") or (headers.get("authorization") or "").removeprefix("Bearer ")

    @staticmethod
    def prompt_of(body: dict) -> str:
        parts = [body.get("system") or ""]
        for message in body.get("messages", []):
            content = message.get("content")
            if isinstance(content, str):
                parts.append(content)
            else:
                parts += [block.get("text", "") for block in content or []]
        return "\n".join(parts)

    def error_body(self, status: int, message: str) -> dict:
        return {
            "type": "error",
            "error": {"type": _ANTHROPIC_ERRORS.get(status, "api_error"), "message": message or f"HTTP {status}"},
            "request_id": "req_" + uuid.uuid4().hex[:24],
        }

    def success_body(self, request: dict, prompt: str, text: str) -> dict:
        return {
            "id": "msg_" + uuid.uuid4().hex[:24],
            "type": "message",
            "role": "assistant",
            "model": request.get("model", "claude-test"),
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": self._tokens(prompt),
                "output_tokens": self._tokens(text),
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }
