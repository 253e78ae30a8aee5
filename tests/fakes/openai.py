"""A fake OpenAI-compatible chat completions API (OpenAI, Ollama, llama.cpp, vLLM all speak it),
answering with a storyboard draft of as many scenes as the prompt asks for.

    fake = FakeOpenAI(tls)
    fake.replies.append("not json")        # the next answers' content, then valid drafts
    fake.refuses_json_schema = True        # a 400 for response_format json_schema, as some servers
    with fake:
        OpenAICompatiblePlanner({"base_url": f"{fake.url}/v1"}).plan(...)
    fake.billable, fake.tokens             # completions answered, tokens they used
"""

from __future__ import annotations

import json
import re

from tests.fakes.server import FakeServer, Request, Response

CHAT_PATH = r"^/v1/chat/completions$"
TOKENS_PER_REPLY = 120


def draft_json(scenes: int, title: str = "Tides, explained") -> str:
    return json.dumps({"title": title, "scenes": [
        {"narration": f"Point number {i + 1} about the tides.",
         "visual_prompt": f"The sea at moment {i + 1}, wide shot",
         "on_screen_text": f"Tides, point {i + 1}",
         "camera": "zoom_in", "duration": 4.5}
        for i in range(scenes)]})


def completion(content: str, model: str = "gpt-4o-mini", tokens: int = TOKENS_PER_REPLY) -> dict:
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 1735689600,
        "model": model, "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": content, "refusal": None}}],
        "usage": {"prompt_tokens": tokens - 20, "completion_tokens": 20, "total_tokens": tokens},
    }


class FakeOpenAI:
    def __init__(self, tls):
        self.server = FakeServer(tls)
        self.server.route("POST", CHAT_PATH, self._chat)
        self.url = self.server.url
        self.replies: list[str] = []  # scripted contents, answered first
        self.refuses_json_schema = False
        self.billable = 0
        self.tokens = 0

    def _chat(self, request: Request) -> Response:
        body = request.json()
        if self.refuses_json_schema and body.get("response_format", {}).get("type") == "json_schema":
            return Response.json({"error": {
                "message": "Invalid parameter: 'response_format' of type 'json_schema' is not "
                           "supported with this model.",
                "type": "invalid_request_error", "param": "response_format", "code": None}}, 400)
        prompt = body["messages"][-1]["content"]
        scenes = re.search(r"exactly (\d+) scenes", prompt)
        content = self.replies.pop(0) if self.replies else draft_json(
            int(scenes.group(1)) if scenes else 1)
        self.billable += 1
        self.tokens += TOKENS_PER_REPLY
        return Response.json(completion(content, body["model"]))

    def __enter__(self) -> FakeOpenAI:
        self.server.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.server.__exit__(*exc)
