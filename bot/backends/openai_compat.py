"""OpenAI-compatible chat backend: the OpenAI API and vLLM, through one class.

Contract (see `bot.backends.base`):

- `stream(messages, params)` yields the assistant's text deltas from a streamed chat completion.
  OpenAI and vLLM differ only in base URL and a few request fields (`kind`); a vLLM LoRA adapter is
  chosen by passing its name as the model.
- Retries belong to the official SDK (`AsyncOpenAI`): it retries 408/409/429/5xx and connection
  errors *before the first byte of the reply*, honouring `Retry-After`, with jittered backoff, up
  to `max_retries` times. Once text has been yielded nothing is retried: a reply cannot be
  un-sent, so a failure mid-stream is raised as `BackendError` and the engine decides what to do.
- `timeout_s` bounds each connect/read/write, not the whole reply, so a long reply streaming
  steadily is never cut, while a server that stops sending is.
- SDK errors become the contract's exceptions (`BackendAuthError`, `BackendNotFoundError`,
  `BackendTimeoutError`, `BackendError`). Messages name the server, the model and the setting to
  fix, and never carry conversation content: the server's free-text error message may echo the
  prompt, so only its short machine codes are kept, and the SDK exception is not chained.
- Backends made by `with_model()` share one `AsyncOpenAI` (one HTTP connection pool); the pool is
  closed when the last of them is closed. `model` can also be switched in place; a stream already
  running keeps the model it started with.
"""
from __future__ import annotations

import os
import re
from typing import Any, AsyncIterator, Literal, Mapping

import openai
from openai import AsyncOpenAI

from bot.backends.base import (
    Backend,
    BackendAuthError,
    BackendError,
    BackendNotFoundError,
    BackendTimeoutError,
    GenerationParams,
)

Kind = Literal["openai", "vllm"]

#: The OpenAI API rejects more than four stop sequences. The engine applies every stop sequence
#: to the text again, so sending the first four (the member's label comes first) loses nothing
#: but a few wasted tokens. vLLM has no such limit and gets them all.
OPENAI_MAX_STOP = 4

#: vLLM accepts any API key when it was started without `--api-key`, but the SDK insists on one;
#: this placeholder is what vLLM's own docs use.
VLLM_NO_KEY = "EMPTY"

_DEFAULT_KEY_SETTING: dict[str, str] = {"openai": "OPENAI_API_KEY", "vllm": "VLLM_API_KEY"}

# Error codes and types are short identifiers ("invalid_api_key", "NotFoundError"); anything else
# is dropped rather than risk repeating prompt text into a log.
_SAFE_TOKEN = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")


class _SharedClient:
    """One AsyncOpenAI used by several backends; closed when the last user lets go."""

    def __init__(self, client: AsyncOpenAI, *, owns_http: bool) -> None:
        self.client = client
        self._owns_http = owns_http
        self._users = 0

    def acquire(self) -> None:
        self._users += 1

    async def release(self) -> None:
        self._users -= 1
        # A caller-provided http_client belongs to the caller, who closes it.
        if self._users == 0 and self._owns_http:
            await self.client.close()


class OpenAICompatBackend(Backend):
    """Streams chat completions from the OpenAI API or a vLLM server (`kind` says which)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        model: str,
        *,
        timeout_s: float = 60.0,
        max_retries: int = 4,
        kind: Kind = "openai",
        key_setting: str | None = None,
        http_client: Any | None = None,
        _shared: _SharedClient | None = None,
    ) -> None:
        """Build a backend.

        `api_key`: required for OpenAI; for vLLM only when the server was started with `--api-key`.
        `key_setting`: the environment variable or setting the key came from, named in auth errors
        (default `OPENAI_API_KEY` / `VLLM_API_KEY`). `http_client`: an `httpx2.AsyncClient` to
        share; it stays the caller's to close.
        """
        if kind not in ("openai", "vllm"):
            raise ValueError(f"kind must be 'openai' or 'vllm', not {kind!r}")
        if not model:
            raise ValueError("model must be a non-empty model id or adapter name")
        self.kind = kind
        self._base_url = base_url.rstrip("/")
        self._model = model
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._key_setting = key_setting or _DEFAULT_KEY_SETTING[kind]
        if _shared is None:
            _shared = _SharedClient(
                self._make_client(api_key, http_client), owns_http=http_client is None
            )
        self._shared = _shared
        self._shared.acquire()
        self._closed = False

    def _make_client(self, api_key: str | None, http_client: Any | None) -> AsyncOpenAI:
        if not api_key:
            if self.kind == "openai":
                raise BackendAuthError(
                    f"no API key for the OpenAI backend at {self._base_url}: set {self._key_setting}"
                )
            api_key = VLLM_NO_KEY
        # Always pass the key explicitly: left to itself the SDK would read OPENAI_API_KEY from the
        # environment and send the OpenAI key to a vLLM server.
        return AsyncOpenAI(
            api_key=api_key,
            base_url=self._base_url,
            timeout=self._timeout_s,
            max_retries=self._max_retries,
            http_client=http_client,
        )

    # -- identity -------------------------------------------------------------------------------

    @property
    def model_name(self) -> str:
        return self._model

    @property
    def model(self) -> str:
        """The model id or adapter name requests go to; assign to switch (e.g. to `tim-v4`)."""
        return self._model

    @model.setter
    def model(self, name: str) -> None:
        if not name:
            raise ValueError("model must be a non-empty model id or adapter name")
        self._model = name

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def client(self) -> AsyncOpenAI:
        """The shared SDK client (for jobs that need other endpoints, e.g. fine-tuning)."""
        return self._shared.client

    def with_model(self, name: str) -> OpenAICompatBackend:
        """A backend for another model or adapter on the same server, reusing this HTTP pool."""
        if self._closed:
            raise BackendError(f"{self.kind} backend for {self._base_url} is closed")
        return OpenAICompatBackend(
            self._base_url,
            None,
            name,
            timeout_s=self._timeout_s,
            max_retries=self._max_retries,
            kind=self.kind,
            key_setting=self._key_setting,
            _shared=self._shared,
        )

    # -- generation -----------------------------------------------------------------------------

    def request_kwargs(self, model: str, messages: list[dict], params: GenerationParams) -> dict[str, Any]:
        """The arguments of `chat.completions.create` for one streamed reply."""
        kwargs: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "stream": True,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        stop = list(params.stop)
        extra: dict[str, Any] = {}
        if self.kind == "openai":
            # OpenAI deprecated max_tokens and its reasoning models reject it.
            kwargs["max_completion_tokens"] = params.max_tokens
            stop = stop[:OPENAI_MAX_STOP]
        else:
            # Every vLLM release knows max_tokens; max_completion_tokens came later.
            kwargs["max_tokens"] = params.max_tokens
            if params.repetition_penalty != 1.0:
                # A vLLM sampling extension; OpenAI has no equivalent (frequency_penalty differs).
                extra["repetition_penalty"] = params.repetition_penalty
        if stop:
            kwargs["stop"] = stop
        if params.seed is not None:
            kwargs["seed"] = params.seed
        if extra:
            kwargs["extra_body"] = extra
        return kwargs

    async def stream(self, messages: list[dict], params: GenerationParams) -> AsyncIterator[str]:
        # Captured once so a concurrent switch of `model` never splits one reply across two models.
        model = self._model
        try:
            sdk_stream = await self.client.chat.completions.create(**self.request_kwargs(model, messages, params))
        except openai.OpenAIError as err:
            raise self._translate(err, model, sent_chars=0) from None

        sent_chars = 0
        try:
            async with sdk_stream:
                async for chunk in sdk_stream:
                    delta = _delta_text(chunk)
                    if delta:
                        sent_chars += len(delta)
                        yield delta
        except openai.OpenAIError as err:
            raise self._translate(err, model, sent_chars=sent_chars) from None
        except ValueError:
            # The SDK parses each SSE `data:` line with json.loads and lets the error through.
            raise self._malformed(model, sent_chars) from None
        except _MalformedChunk:
            raise self._malformed(model, sent_chars) from None

    async def health(self) -> str:
        """`GET /models`; raises `BackendNotFoundError` when the server does not list our model."""
        try:
            page = await self.client.models.list()
        except openai.OpenAIError as err:
            raise self._translate(err, self._model, sent_chars=0) from None
        served = [m.id for m in page.data]
        if self._model not in served:
            raise BackendNotFoundError(
                f"{self.kind} at {self._base_url} does not list model {self._model!r} "
                f"({len(served)} models served){self._not_found_hint()}"
            )
        return f"ok: {self.kind} at {self._base_url} serves {self._model!r} ({len(served)} models listed)"

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._shared.release()

    # -- errors ---------------------------------------------------------------------------------

    def _where(self, model: str) -> str:
        return f"{self.kind} at {self._base_url} (model {model!r})"

    def _not_found_hint(self) -> str:
        if self.kind == "vllm":
            return (
                "; for a LoRA adapter, load it first (vLLM forgets runtime-loaded adapters on restart), "
                "and check the base URL ends in /v1"
            )
        return "; check the model id (fine-tunes look like 'ft:...') and that the key's project may use it"

    def _malformed(self, model: str, sent_chars: int) -> BackendError:
        return BackendError(f"{self._where(model)} sent a malformed stream chunk{_after(sent_chars)}")

    def _translate(self, err: openai.OpenAIError, model: str, *, sent_chars: int) -> BackendError:
        """Map an SDK exception to the contract's, keeping only content-free details."""
        where = self._where(model)
        if isinstance(err, openai.APITimeoutError):
            retries = "" if sent_chars else f" and {self._max_retries} retries"
            return BackendTimeoutError(f"{where} did not answer within {self._timeout_s:g}s{retries}{_after(sent_chars)}")
        if isinstance(err, openai.APIConnectionError):
            return BackendError(f"cannot reach {where}{_after(sent_chars)}; is the server running?")
        if isinstance(err, (openai.AuthenticationError, openai.PermissionDeniedError)):
            return BackendAuthError(
                f"{where} refused the API key (HTTP {err.status_code}{_codes(err)}): "
                f"check {self._key_setting}"
            )
        if isinstance(err, openai.NotFoundError):
            return BackendNotFoundError(f"{where}: no such model (HTTP 404{_codes(err)}){self._not_found_hint()}")
        if isinstance(err, openai.APIStatusError):
            error = BackendError(f"{where} failed with HTTP {err.status_code}{_codes(err)}{_request_id(err)}")
            # 4xx other than 408/409/429 will fail the same way next time.
            if 400 <= err.status_code < 500 and err.status_code not in (408, 409, 429):
                error.retryable = False
            return error
        if isinstance(err, openai.APIError):
            # An `{"error": ...}` event inside the stream.
            return BackendError(f"{where} reported an error mid-stream{_codes(err)}{_after(sent_chars)}")
        return BackendError(f"{where} failed: {type(err).__name__}{_after(sent_chars)}")


class _MalformedChunk(Exception):
    """A streamed chunk that parsed as JSON but is not a chat-completion chunk."""


def _delta_text(chunk: Any) -> str:
    """The text of one streamed chunk ('' for role-only, final and usage chunks)."""
    try:
        choices = chunk.choices
    except AttributeError:
        raise _MalformedChunk from None
    if not isinstance(choices, list):
        raise _MalformedChunk
    if not choices:
        return ""  # the usage chunk of stream_options.include_usage
    delta = getattr(choices[0], "delta", None)
    if delta is None:
        return ""
    content = getattr(delta, "content", None)
    if content is None:
        return ""
    if not isinstance(content, str):
        raise _MalformedChunk
    return content


def _codes(err: openai.APIError) -> str:
    fields = (("code", err.code), ("type", err.type))
    parts = [f"{name}={value}" for name, value in fields if value and _SAFE_TOKEN.match(str(value))]
    return f", {', '.join(parts)}" if parts else ""


def _request_id(err: openai.APIStatusError) -> str:
    request_id = getattr(err, "request_id", None)
    return f", request id {request_id}" if request_id and _SAFE_TOKEN.match(request_id) else ""


def _after(sent_chars: int) -> str:
    return f" after {sent_chars} characters of the reply" if sent_chars else ""


def openai_compat_from_settings(
    section: Any,
    *,
    kind: Kind,
    model: str,
    base_url: str | None = None,
    api_key_env: str | None = None,
    environ: Mapping[str, str] | None = None,
    http_client: Any | None = None,
) -> OpenAICompatBackend:
    """Build a backend from `OpenAISettings`/`VLLMSettings` plus a persona's optional overrides.

    `api_key_env` (a persona's `model.api_key_env`) names the environment variable holding the key;
    without it the section's `api_key` is used.
    """
    env = os.environ if environ is None else environ
    if api_key_env:
        api_key, key_setting = env.get(api_key_env), api_key_env
    else:
        api_key, key_setting = section.api_key, _DEFAULT_KEY_SETTING[kind]
    return OpenAICompatBackend(
        base_url or section.base_url,
        api_key,
        model,
        timeout_s=section.timeout_s,
        max_retries=section.max_retries,
        kind=kind,
        key_setting=key_setting,
        http_client=http_client,
    )
