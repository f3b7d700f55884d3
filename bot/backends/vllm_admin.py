"""Client for vLLM's runtime LoRA endpoints: load, unload and list adapters.

Contract:

- `load_adapter(name, path)` → `POST /v1/load_lora_adapter {"lora_name", "lora_path"}`;
  `unload_adapter(name)` → `POST /v1/unload_lora_adapter {"lora_name"}`; `list_models()` /
  `list_adapters()` → `GET /v1/models` (adapters are the entries with a `parent`).
- `lora_path` is a path *on the vLLM server's* filesystem, not on the bot's.
- The base URL may end in `/v1` or not (the same one the chat backend uses works).
- Nothing is retried: loading is not idempotent (a retried load that had succeeded answers
  "already loaded"), and these calls come from promotion, which decides what to do on failure.
- Every failure is a `VLLMAdminError` (a `BackendError`) whose message says how to fix the
  server: a 404 on the endpoints themselves means vLLM runs without
  `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`; a rank error means `--max-lora-rank` is too low.
  These calls carry no conversation content, so the server's own message is quoted.
- Adapter names are treated as immutable: vLLM may serve stale cached weights when a name is
  reloaded, so promotion loads a new versioned name (`tim-v4`) instead.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2

from bot.backends.base import BackendAuthError, BackendError, BackendNotFoundError, BackendTimeoutError

#: Loading reads (or downloads) adapter weights on the server, which can take a while.
DEFAULT_ADMIN_TIMEOUT_S = 120.0

_RUNTIME_LORA_HINT = (
    "start vLLM with the environment variable VLLM_ALLOW_RUNTIME_LORA_UPDATING=True "
    "(and --enable-lora) to load adapters at runtime"
)


class VLLMAdminError(BackendError):
    """A LoRA admin call failed. `status` is the HTTP status, or None without a response."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RuntimeLoRADisabledError(VLLMAdminError):
    """The server has no runtime LoRA endpoints (started without VLLM_ALLOW_RUNTIME_LORA_UPDATING)."""

    retryable = False


class AdapterAlreadyLoadedError(VLLMAdminError):
    """An adapter with this name is already loaded."""

    retryable = False


class AdapterNotFoundError(VLLMAdminError, BackendNotFoundError):
    """Unloading a name that is not loaded, or loading from a path the server cannot find."""

    retryable = False


class AdapterRankError(VLLMAdminError):
    """The adapter's LoRA rank is above the server's `--max-lora-rank`."""

    retryable = False


@dataclass(frozen=True)
class ModelCard:
    """One entry of `GET /v1/models`: a base model (`parent` None) or a LoRA adapter."""

    id: str
    root: str | None = None  # for an adapter: the path it was loaded from
    parent: str | None = None  # for an adapter: the base model it applies to

    @property
    def is_adapter(self) -> bool:
        return self.parent is not None


class VLLMAdmin:
    """Loads, unloads and lists LoRA adapters on one vLLM server."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout_s: float = DEFAULT_ADMIN_TIMEOUT_S,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        """`http_client` may be shared with other code; it then stays the caller's to close."""
        self.root_url = _server_root(base_url)
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = httpx2.Timeout(timeout_s)
        self._timeout_s = timeout_s
        self._owns_client = http_client is None
        self._client = http_client or httpx2.AsyncClient()

    async def __aenter__(self) -> VLLMAdmin:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    # -- operations -----------------------------------------------------------------------------

    async def load_adapter(self, name: str, path: str | Path, *, exist_ok: bool = False) -> None:
        """Load adapter `name` from `path` (on the server). `exist_ok`: an already loaded name is fine.

        `exist_ok` suits re-registering the active adapters at start-up, when vLLM may or may not
        have restarted; promotion should load a fresh name and leave it False.
        """
        try:
            await self._post("load_lora_adapter", {"lora_name": name, "lora_path": str(path)}, adapter=name)
        except AdapterAlreadyLoadedError:
            if not exist_ok:
                raise

    async def unload_adapter(self, name: str, *, missing_ok: bool = False) -> None:
        """Unload adapter `name`. `missing_ok`: a name that is not loaded is fine."""
        try:
            await self._post("unload_lora_adapter", {"lora_name": name}, adapter=name)
        except AdapterNotFoundError:
            if not missing_ok:
                raise

    async def list_models(self) -> list[ModelCard]:
        """Every model the server answers to: base models and loaded adapters."""
        response = await self._send("GET", "models", operation="list models")
        try:
            data = response.json()["data"]
            return [ModelCard(str(m["id"]), m.get("root"), m.get("parent")) for m in data]
        except (ValueError, KeyError, TypeError):
            raise VLLMAdminError(
                f"vLLM at {self.root_url} answered GET /v1/models with something that is not a model list",
                status=response.status_code,
            ) from None

    async def list_adapters(self) -> dict[str, str | None]:
        """Loaded adapters: name → the path they were loaded from."""
        return {card.id: card.root for card in await self.list_models() if card.is_adapter}

    # -- HTTP -----------------------------------------------------------------------------------

    async def _post(self, endpoint: str, payload: dict[str, Any], *, adapter: str) -> None:
        operation = endpoint.replace("_", " ").replace(" lora ", " LoRA ") + f" {adapter!r}"
        # vLLM answers success with a plain-text sentence; there is nothing to parse.
        await self._send("POST", endpoint, json=payload, operation=operation)

    async def _send(self, method: str, endpoint: str, *, operation: str, json: Any = None) -> httpx2.Response:
        url = f"{self.root_url}/v1/{endpoint}"
        try:
            response = await self._client.request(method, url, json=json, headers=self._headers, timeout=self._timeout)
        except httpx2.TimeoutException:
            raise BackendTimeoutError(f"vLLM at {self.root_url} did not answer {operation} within {self._timeout_s:g}s") from None
        except httpx2.RequestError as err:
            raise VLLMAdminError(
                f"cannot reach vLLM at {self.root_url} to {operation} ({type(err).__name__}); is it running?"
            ) from None
        if response.status_code >= 400:
            raise self._error(response, endpoint, operation)
        return response

    def _error(self, response: httpx2.Response, endpoint: str, operation: str) -> BackendError:
        status = response.status_code
        message = _server_message(response)
        where = f"vLLM at {self.root_url} refused to {operation} (HTTP {status}: {message})"
        lowered = message.lower()
        if status in (401, 403):
            return BackendAuthError(f"{where}: check VLLM_API_KEY (the server's --api-key)")
        if status == 404 and endpoint != "models" and not _is_vllm_error(response):
            return RuntimeLoRADisabledError(
                f"vLLM at {self.root_url} has no /v1/{endpoint} endpoint: {_RUNTIME_LORA_HINT}", status=status
            )
        if "already been loaded" in lowered:
            return AdapterAlreadyLoadedError(
                f"{where}; adapter names are immutable here (reloading a name can serve stale weights), "
                "so load the new version under a new name such as 'tim-v4'",
                status=status,
            )
        if re.search(r"\brank\b", lowered):
            return AdapterRankError(f"{where}; {_rank_hint(message)}", status=status)
        if status == 404:
            if endpoint == "load_lora_adapter":
                return AdapterNotFoundError(
                    f"{where}; lora_path must be a folder with adapter_config.json on the vLLM server's own filesystem",
                    status=status,
                )
            return AdapterNotFoundError(f"{where}; see list_adapters() for what is loaded", status=status)
        if "lora" in lowered and "enable" in lowered:
            return VLLMAdminError(f"{where}; start vLLM with --enable-lora", status=status)
        error = VLLMAdminError(where, status=status)
        if 400 <= status < 500 and status not in (408, 429):
            error.retryable = False
        return error


def _server_root(base_url: str) -> str:
    """`http://host:8000/v1/` → `http://host:8000`: the admin routes live at `/v1/...` of the root."""
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def _server_message(response: httpx2.Response) -> str:
    """The error text from vLLM's `{"error": {"message"}}`, older `{"message"}`, FastAPI's `{"detail"}`, or raw text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    message: Any = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = error.get("message")
        message = message or body.get("message") or body.get("detail")
    if not isinstance(message, str) or not message:
        message = response.text or response.reason_phrase
    return " ".join(message.split())[:300]


def _is_vllm_error(response: httpx2.Response) -> bool:
    """True when vLLM itself answered (an error object), not the web framework's 'no such route'."""
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and ("error" in body or body.get("object") == "error")


def _rank_hint(message: str) -> str:
    numbers = [int(n) for n in re.findall(r"\d+", message)]
    needed = f" {max(numbers)} or more" if numbers else " at least the adapter's rank"
    return (
        f"the adapter's LoRA rank is above the server's --max-lora-rank (vLLM's default is 16): "
        f"restart vLLM with --max-lora-rank{needed}, or train with a smaller rank"
    )
