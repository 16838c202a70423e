"""The openai backend against a real HTTP server on 127.0.0.1 (tests/fixtures/openai_server.py)."""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rzero_bench.backends import make_generator  # noqa: E402
from rzero_bench.backends.openai import OpenAIGenerator, parse_retry_after, sample_seed  # noqa: E402
from rzero_bench.errors import BackendError, UserError  # noqa: E402
from rzero_bench.records import GenerationRequest, SamplingParams  # noqa: E402
from tests.fixtures.openai_server import Reply, chat_reply, echo_handler, sequence, serve  # noqa: E402

SECRET = "sk-TEST-7f3a9c1e-very-secret-value"
KEY_ENV = "RZB_TEST_OPENAI_KEY"


def req(text: str = "hi", rid: str = "", **params: object) -> GenerationRequest:
    return GenerationRequest(
        messages=({"role": "user", "content": text},), params=SamplingParams(**params), id=rid
    )  # type: ignore[arg-type]


def gen(server_url: str, **kw: object) -> OpenAIGenerator:
    opts: dict[str, object] = {"api_key_env": KEY_ENV, "backoff": 0.001, "max_backoff": 0.05, "timeout": 5.0}
    opts.update(kw)
    return OpenAIGenerator("fake-model", base_url=server_url, **opts)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


def test_request_body_and_result_mapping() -> None:
    with serve() as server, gen(server.base_url) as g:
        out = g.generate(
            [
                req(
                    "what is 2+2?",
                    rid="q1",
                    n=2,
                    temperature=0.7,
                    top_p=0.9,
                    max_tokens=32,
                    stop=("X",),
                    seed=5,
                )
            ]
        )
    body = server.posts[0].body
    assert server.posts[0].path == "/v1/chat/completions"
    assert body["model"] == "fake-model"
    assert body["messages"] == [{"role": "user", "content": "what is 2+2?"}]
    assert (body["n"], body["temperature"], body["top_p"], body["max_tokens"]) == (2, 0.7, 0.9, 32)
    assert body["stop"] == ["X"] and body["seed"] == 5
    assert "top_k" not in body
    assert out[0].id == "q1"
    assert out[0].texts == ("echo 0: what is 2+2?", "echo 1: what is 2+2?")
    assert out[0].finish_reasons == ("stop", "stop")
    assert sum(out[0].completion_tokens) == 10  # usage total (5 words each) distributed
    assert out[0].prompt_tokens == 7


def test_top_k_sent_only_when_positive_and_seed_none_omitted() -> None:
    with serve() as server, gen(server.base_url) as g:
        g.generate([req(top_k=20, seed=None), req(top_k=0)])
    bodies = sorted((p.body for p in server.posts), key=lambda b: "top_k" in b)
    assert "top_k" not in bodies[0] and bodies[1]["top_k"] == 20
    assert "seed" not in bodies[1]
    assert "stop" not in bodies[0]


def test_429_then_200_is_retried_and_honours_retry_after() -> None:
    handler = sequence(Reply(429, {"error": {"message": "slow down"}}, headers={"Retry-After": "0.3"}))
    with serve(handler) as server, gen(server.base_url, max_retries=3) as g:
        t0 = time.monotonic()
        out = g.generate([req("a")])
        elapsed = time.monotonic() - t0
    assert out[0].texts == ("echo 0: a",)
    assert len(server.posts) == 2
    assert elapsed >= 0.3


def test_500_forever_gives_one_line_error_after_retries() -> None:
    with (
        serve(lambda body: (500, {"error": {"message": "boom"}})) as server,
        gen(server.base_url, max_retries=3) as g,
    ):
        with pytest.raises(BackendError) as ei:
            g.generate([req()])
    msg = str(ei.value)
    assert "\n" not in msg
    assert server.base_url + "/chat/completions" in msg
    assert "HTTP 500" in msg and "4 attempt" in msg
    assert len(server.posts) == 4


def test_4xx_fails_immediately_with_server_message() -> None:
    with serve(lambda body: (400, {"error": {"message": "model 'x' does not exist"}})) as server:
        with (
            gen(server.base_url, max_retries=5) as g,
            pytest.raises(BackendError, match="HTTP 400: model 'x' does not exist"),
        ):
            g.generate([req()])
    assert len(server.posts) == 1


def test_api_key_sent_but_never_logged_or_shown(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    caplog.set_level(logging.DEBUG)

    def handler(body: dict) -> Reply:  # type: ignore[type-arg]
        text = body["messages"][-1]["content"]
        if text == "retry":
            return Reply(200, chat_reply(["ok"])) if handler.calls else Reply(429, {})  # type: ignore[attr-defined]
        if text == "fail":
            return Reply(503, {"error": {"message": f"bad key {SECRET}"}})
        return Reply(401, {"error": {"message": f"Incorrect API key provided: {SECRET}"}})

    handler.calls = 0  # type: ignore[attr-defined]

    def counting(body: dict) -> Reply:  # type: ignore[type-arg]
        r = handler(body)
        handler.calls += 1  # type: ignore[attr-defined]
        return r

    with serve(counting) as server, gen(server.base_url, max_retries=2) as g:
        assert g.generate([req("retry")])[0].texts == ("ok",)
        errors = []
        for text in ("fail", "unauthorized"):
            with pytest.raises(BackendError) as ei:
                g.generate([req(text)])
            errors.append(ei.value)
        shown = [repr(g), str(g), str(vars(g)), repr(vars(g))]
    assert all(p.headers["authorization"] == f"Bearer {SECRET}" for p in server.posts)
    for e in errors:
        shown += [str(e), repr(e), str(e.__cause__), str(e.__context__)]
    assert "check the API key in $" + KEY_ENV in str(errors[1])
    assert "***" in str(errors[1])
    assert caplog.records, "expected retry warnings in the log"
    assert SECRET not in caplog.text
    assert all(SECRET not in s for s in shown)


def test_missing_key_env_sends_no_authorization_header() -> None:
    with serve() as server, gen(server.base_url) as g:
        g.generate([req()])
        assert "key=unset" in repr(g)
    assert "authorization" not in server.posts[0].headers


def test_concurrency_bound_respected_and_order_preserved() -> None:
    def slow(body: dict) -> tuple[int, dict]:  # type: ignore[type-arg]
        time.sleep(0.05)
        return echo_handler(body)  # type: ignore[return-value]

    calls: list[int] = []
    with serve(slow) as server, gen(server.base_url, concurrency=3) as g:
        out = g.generate([req(f"p{i}", rid=str(i)) for i in range(15)], progress=calls.append)
    assert server.max_in_flight <= 3
    assert server.max_in_flight >= 2  # the pool really ran in parallel
    assert [o.id for o in out] == [str(i) for i in range(15)]
    assert [o.texts[0] for o in out] == [f"echo 0: p{i}" for i in range(15)]
    assert calls == [1] * 15


def test_server_ignoring_n_gets_follow_up_calls_with_shifted_seeds() -> None:
    counter = {"k": 0}
    lock = threading.Lock()

    def one_choice(body: dict) -> tuple[int, dict]:  # type: ignore[type-arg]
        with lock:
            counter["k"] += 1
            k = counter["k"]
        return 200, chat_reply([f"sample {k}"], completion_tokens=3)

    with serve(one_choice) as server, gen(server.base_url) as g:
        out = g.generate([req(n=3, temperature=1.0, seed=10)])
    assert out[0].texts == ("sample 1", "sample 2", "sample 3")
    assert out[0].completion_tokens == (3, 3, 3)
    assert [(p.body["n"], p.body["seed"]) for p in server.posts] == [(3, 10), (2, sample_seed(10, 1)),
                                                                     (1, sample_seed(10, 2))]


def test_extra_choices_are_trimmed_and_empty_choices_error() -> None:
    with serve(lambda body: (200, chat_reply(["a", "b", "c"]))) as server, gen(server.base_url) as g:
        assert g.generate([req(n=2)])[0].texts == ("a", "b")
    with serve(lambda body: (200, chat_reply([]))) as server, gen(server.base_url) as g:
        with pytest.raises(BackendError, match="no choices"):
            g.generate([req()])


def test_timeout_is_retried_then_reported() -> None:
    slow = Reply(200, chat_reply(["late"]), delay=1.0)
    with serve(sequence(slow, (200, chat_reply(["fast"])))) as server, gen(server.base_url, timeout=0.2) as g:
        assert g.generate([req()])[0].texts == ("fast",)
    with serve(lambda body: slow) as server, gen(server.base_url, timeout=0.2, max_retries=1) as g:
        t0 = time.monotonic()
        with pytest.raises(BackendError, match="timeout after 0.2s"):
            g.generate([req()])
        assert time.monotonic() - t0 < 2.0


def test_connection_refused_is_retried_then_reported() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with (
        gen(f"http://127.0.0.1:{port}/v1", max_retries=2) as g,
        pytest.raises(BackendError, match="connection error"),
    ):
        g.generate([req()])


def test_dropped_connection_then_success() -> None:
    with serve(sequence(Reply(drop=True))) as server, gen(server.base_url) as g:
        assert g.generate([req("x")])[0].texts == ("echo 0: x",)
    assert len(server.posts) == 2


def test_hostile_content_none_non_utf8_and_oversized() -> None:
    with serve(lambda body: (200, chat_reply([None, "fine"], finish_reasons=["length", None]))) as server:
        with gen(server.base_url) as g:
            out = g.generate([req(n=2)])
    assert out[0].texts == ("", "fine") and out[0].finish_reasons == ("length", "stop")
    raw = b'{"choices":[{"index":0,"message":{"content":"caf\xe9 \xff"},"finish_reason":"stop"}]}'
    with serve(lambda body: Reply(200, raw=raw)) as server, gen(server.base_url) as g:
        out = g.generate([req()])
    assert out[0].texts == ("caf\ufffd \ufffd",)
    assert out[0].completion_tokens == (2,)  # no usage: rough len/4
    huge = chat_reply(["x" * 200_000])
    with serve(lambda body: (200, huge)) as server, gen(server.base_url, max_response_bytes=50_000) as g:
        with pytest.raises(BackendError, match="more than 50000 bytes"):
            g.generate([req()])
    assert len(server.posts) == 1


def test_non_json_body_is_retried() -> None:
    with serve(sequence(Reply(200, raw=b"<html>proxy error</html>"))) as server, gen(server.base_url) as g:
        assert g.generate([req("y")])[0].texts == ("echo 0: y",)
    assert len(server.posts) == 2


def test_stop_strings_applied_client_side_and_length_reason() -> None:
    reply = chat_reply(["answer \\boxed{4} </s> junk"], finish_reasons=["length"])
    with serve(lambda body: (200, reply)) as server, gen(server.base_url) as g:
        out = g.generate([req(stop=("</s>",))])
    assert out[0].texts == ("answer \\boxed{4} ",)
    assert out[0].finish_reasons == ("length",)


def test_completions_endpoint_when_use_chat_false() -> None:
    with serve() as server, gen(server.base_url + "/", use_chat=False) as g:
        out = g.generate([req("hello")])
    assert server.posts[0].path == "/v1/completions"
    assert server.posts[0].body["prompt"] == "User: hello\nAssistant:"
    assert out[0].texts == ("echo 0: User: hello\nAssistant:",)


def test_failure_in_one_request_stops_the_batch_quickly() -> None:
    def handler(body: dict) -> Reply:  # type: ignore[type-arg]
        if body["messages"][-1]["content"] == "bad":
            return Reply(400, {"error": {"message": "bad request"}})
        return Reply(200, chat_reply(["ok"]), delay=0.05)

    with serve(handler) as server, gen(server.base_url, concurrency=2) as g:
        with pytest.raises(BackendError, match="HTTP 400"):
            g.generate([req("bad")] + [req("ok") for _ in range(40)])
    assert len(server.posts) < 20


def test_bad_config_is_a_user_error() -> None:
    with pytest.raises(UserError, match="base_url"):
        OpenAIGenerator("m", base_url="127.0.0.1:8000/v1")
    with pytest.raises(UserError, match="concurrency"):
        OpenAIGenerator("m", base_url="http://127.0.0.1:1/v1", concurrency=0)


def test_url_credentials_are_redacted_from_messages() -> None:
    g = OpenAIGenerator("m", base_url="http://user:pw123@127.0.0.1:9/v1", max_retries=0, timeout=0.5)
    assert "pw123" not in repr(g)
    with pytest.raises(BackendError) as ei:
        g.generate([req()])
    assert "pw123" not in str(ei.value)


def test_parse_retry_after() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)


def test_factory_builds_openai_generator() -> None:
    with serve() as server:
        g = make_generator("openai", "fake-model", base_url=server.base_url, api_key_env=KEY_ENV)
        with g:
            assert g.generate([req("z")])[0].texts == ("echo 0: z",)
            assert g.name == "openai" and g.model_id == "fake-model"


def _context_limited(limit: int, prompt: int):
    """A vLLM-like server whose context is ``limit`` tokens and whose prompts have ``prompt`` tokens."""

    def handler(body):
        if prompt + body["max_tokens"] > limit:
            msg = (f"This model's maximum context length is {limit} tokens. However, you requested "
                   f"{prompt + body['max_tokens']} tokens ({prompt} in the messages, {body['max_tokens']} in the completion).")
            return Reply(400, {"error": {"message": msg}})
        return 200, chat_reply(["\\boxed{1}"] * body.get("n", 1))

    return handler


def test_overlong_request_is_clamped_to_the_servers_context() -> None:
    with serve(_context_limited(8192, 5904)) as server, gen(server.base_url) as g:
        out = g.generate([req(rid="bbeh/spatial_reasoning/88/greedy", max_tokens=4096)])
    assert out[0].texts == ("\\boxed{1}",)
    asked = [p.body["max_tokens"] for p in server.posts]
    assert asked == [4096, 8192 - 5904]  # refused once, then sent with what the context leaves


def test_prompt_filling_the_context_names_the_request() -> None:
    with serve(_context_limited(4096, 4096)) as server, gen(server.base_url) as g:
        with pytest.raises(BackendError) as e:
            g.generate([req(rid="bbeh/spatial_reasoning/88/greedy", max_tokens=256)])
    msg = str(e.value)
    assert "bbeh/spatial_reasoning/88/greedy" in msg and "4096 tokens" in msg and "max_model_len" in msg
    assert "\n" not in msg and len(server.posts) == 1
