"""What every HTTP provider promises, run against each one through its real SDK and its fake
service: transient failures are retried by us alone, a hung call times out and is retried,
`attempts` bounds the calls, a client error fails at once without the key in sight, and a
missing key is named before any request. Provider-specific behaviour is in test_<provider>.py.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from config.secrets import MissingSecretError
from tasks.providers.base import ImageRequest, ProviderError, SpeechRequest
from tasks.providers.elevenlabs import ElevenLabsSpeech
from tasks.providers.gemini import GeminiPlanner
from tasks.providers.openai_compatible import OpenAICompatiblePlanner
from tasks.providers.replicate import ReplicateImage
from tasks.storyboard import Aspect, VideoRequest
from tests.fakes.elevenlabs import TTS_PATH, FakeElevenLabs
from tests.fakes.google import FakeGoogle
from tests.fakes.openai import CHAT_PATH, FakeOpenAI
from tests.fakes.replicate import CREATE_PATH, FakeReplicate
from tests.fakes.server import HANG, RESET, Response

KEY = "canary-http-provider-key-31337"
PLAN = VideoRequest(topic="how tides work", scenes=3, seed=11)


@dataclass(frozen=True)
class HttpProvider:
    key_env: str
    fake: Callable[[Any], Any]  # tls → the fake service, a context manager
    path: str  # the billable request, POST
    call: Callable[[Any, dict], Any]  # (fake, options) → the provider's result
    error: Callable[[int, str], Response]  # the service's own error body, quoting a message
    billed: Callable[[Any], int]  # successful billable calls the fake answered
    unset: tuple[str, ...] = ()  # environment the SDK would also read


PROVIDERS = {
    "gemini": HttpProvider(
        "GEMINI_API_KEY", FakeGoogle, "generateContent",
        lambda fake, options: GeminiPlanner({"base_url": fake.url, **options}).plan(PLAN),
        lambda status, message: Response.json(
            {"error": {"code": status, "message": message, "status": "ERROR"}}, status),
        lambda fake: fake.billed["text"], unset=("GOOGLE_API_KEY",)),
    "elevenlabs": HttpProvider(
        "ELEVENLABS_API_KEY", FakeElevenLabs, TTS_PATH,
        lambda fake, options: ElevenLabsSpeech({"base_url": fake.url, **options}).synthesize(
            SpeechRequest(text="Hello there.", voice="21m00Tcm4TlvDq8ikWAM", language="en")),
        lambda status, message: Response.json(
            {"detail": {"status": "error", "message": message}}, status),
        lambda fake: fake.billable),
    "replicate": HttpProvider(
        "REPLICATE_API_TOKEN", lambda tls: FakeReplicate(tls, polls=2), CREATE_PATH,
        lambda fake, options: ReplicateImage(
            {"base_url": fake.url, "poll_interval_s": 0.01, **options}).generate(
            ImageRequest(prompt="a lighthouse", style="noir", width=90, height=160, seed=7,
                         aspect=Aspect.portrait)),
        lambda status, message: Response.json(
            {"title": "Error", "detail": message, "status": status}, status),
        lambda fake: fake.succeeded, unset=("REPLICATE_BASE_URL",)),
    "openai-compatible": HttpProvider(
        "OPENAI_API_KEY", FakeOpenAI, CHAT_PATH,
        lambda fake, options: OpenAICompatiblePlanner(
            {"base_url": f"{fake.url}/v1", **options}).plan(PLAN),
        lambda status, message: Response.json({"error": {"message": message}}, status),
        lambda fake: fake.billable,
        unset=("OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "OPENAI_CUSTOM_HEADERS")),
}


class Service:
    """One provider and its fake, as the tests drive them."""

    def __init__(self, spec: HttpProvider, fake):
        self.spec, self.fake = spec, fake

    def call(self, **options):
        return self.spec.call(self.fake, {"attempts": 3, "deadline_s": 20, "timeout_s": 5,
                                          **options})

    def fail(self, *replies) -> None:
        self.fake.server.fail("POST", self.spec.path, list(replies))

    def calls(self) -> int:
        return len(self.fake.server.calls("POST", self.spec.path))

    def billed(self) -> int:
        return self.spec.billed(self.fake)


@pytest.fixture(params=PROVIDERS)
def service(request, tls, monkeypatch):
    spec = PROVIDERS[request.param]
    monkeypatch.setenv(spec.key_env, KEY)
    for name in spec.unset:
        monkeypatch.delenv(name, raising=False)
    with spec.fake(tls) as fake:
        yield Service(spec, fake)


def failure_text(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


def retry_now(reply: Response) -> Response:
    return Response(reply.status, reply.body, {**reply.headers, "Retry-After": "0"})


@pytest.mark.parametrize("kind", ["429", "500", "503", "reset"])
def test_a_transient_failure_is_retried_once_by_us_alone(service, kind):
    if kind == "reset":
        service.fail(RESET)
    else:
        reply = service.spec.error(int(kind), "try again")
        service.fail(reply if kind == "500" else retry_now(reply))

    assert service.call()
    assert service.calls() == 2  # the failed call and our one retry: the SDK retried nothing
    assert service.billed() == 1


def test_a_hung_call_times_out_and_is_retried(service):
    service.fail(HANG)
    assert service.call(timeout_s=0.5)
    assert service.calls() == 2


def test_attempts_bound_the_calls_on_repeated_server_errors(service):
    service.fail(*[retry_now(service.spec.error(503, "overloaded"))] * 3)
    with pytest.raises(ProviderError, match="HTTP 503"):
        service.call(attempts=2)
    assert service.calls() == 2 and service.billed() == 0


@pytest.mark.parametrize("status", [400, 401, 422])
def test_a_client_error_fails_after_one_call_and_never_shows_the_key(service, status):
    service.fail(service.spec.error(status, f"Incorrect API key provided: {KEY}"))
    with pytest.raises(ProviderError, match=f"HTTP {status}") as raised:
        service.call()
    assert raised.value.__cause__ is None  # raised `from None`: no SDK error carries the key on
    assert KEY not in failure_text(raised.value) and KEY not in repr(raised.value)
    assert service.calls() == 1


def test_a_missing_key_is_named_before_any_request(service, monkeypatch, tmp_path):
    monkeypatch.delenv(service.spec.key_env)
    monkeypatch.chdir(tmp_path)  # no .env file to fall back on
    with pytest.raises(MissingSecretError, match=service.spec.key_env):
        service.call()
    assert service.fake.server.calls() == []
