"""OpenAI fine-tuning jobs behind the same interface as local LoRA.

`OpenAIFineTuner` wraps the official SDK (`AsyncOpenAI`): upload the train/validation JSONL,
create a supervised job (hyperparameters + suffix), poll it with exponential backoff while
reporting new events and checkpoints, cancel it, and turn every failure into a
`FineTuneError` whose message says what went wrong and what to do.

OpenAI self-serve fine-tuning is being wound down: closed to new organisations since May 2026,
and no new jobs are accepted from 2027-01-06. `closure_notice()` says so on every use; LoRA + vLLM
is the main path.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Awaitable, Callable

log = logging.getLogger(__name__)

NO_NEW_JOBS_FROM = date(2027, 1, 6)
TERMINAL = ("succeeded", "failed", "cancelled")


def closure_notice(today: date | None = None) -> str:
    today = today or date.today()
    if today >= NO_NEW_JOBS_FROM:
        return (f"OpenAI stopped accepting new fine-tuning jobs on {NO_NEW_JOBS_FROM.isoformat()}; "
                "train a LoRA adapter instead ([training] method = \"lora\", served locally or by vLLM).")
    return ("OpenAI self-serve fine-tuning is being wound down: closed to new organisations since May 2026, and no new "
            f"jobs from {NO_NEW_JOBS_FROM.isoformat()}. Prefer [training] method = \"lora\" (local or vLLM serving).")


class FineTuneError(RuntimeError):
    """An OpenAI fine-tuning step failed; the message is meant for the admin, not a traceback."""

    def __init__(self, message: str, *, job_id: str | None = None, code: str | None = None):
        super().__init__(message)
        self.job_id = job_id
        self.code = code


class FineTuneJobFailed(FineTuneError):
    pass


class FineTuneJobCancelled(FineTuneError):
    pass


class FineTuneTimeout(FineTuneError):
    pass


# Hints for OpenAI's documented job error codes.
_HINTS = {
    "invalid_training_file": "check the training file with `personabot dataset validate`",
    "invalid_validation_file": "check the validation file with `personabot dataset validate`",
    "invalid_file_format": "each line must be {\"messages\": [...]} in OpenAI chat format",
    "exceeded_quota": "the organisation's fine-tuning quota or billing limit is reached",
    "insufficient_quota": "the organisation's fine-tuning quota or billing limit is reached",
    "model_not_available": "this base model cannot be fine-tuned by this organisation",
    "moderation_failed": "the training data was rejected by OpenAI's safety checks",
}


def api_error_message(exc: BaseException, doing: str) -> FineTuneError:
    """Map an SDK exception to a FineTuneError with a clear message."""
    import openai

    status = getattr(exc, "status_code", None)
    body = getattr(exc, "body", None)
    detail = body.get("message") if isinstance(body, dict) else None
    detail = detail or str(exc)
    code = body.get("code") if isinstance(body, dict) else None
    if isinstance(exc, openai.AuthenticationError):
        msg = f"{doing}: OpenAI rejected the API key (401); set OPENAI_API_KEY"
    elif isinstance(exc, openai.PermissionDeniedError):
        msg = (f"{doing}: OpenAI refused (403): {detail}. Organisations that joined after May 2026 cannot use "
               "self-serve fine-tuning; train a LoRA adapter instead")
    elif isinstance(exc, openai.NotFoundError):
        msg = f"{doing}: not found (404): {detail}"
    elif isinstance(exc, openai.RateLimitError):
        msg = f"{doing}: rate limited or out of quota (429): {detail}"
    elif isinstance(exc, (openai.BadRequestError, openai.UnprocessableEntityError)):
        msg = f"{doing}: OpenAI refused the request ({status}): {detail}"
    elif isinstance(exc, openai.APITimeoutError):
        msg = f"{doing}: OpenAI did not answer in time"
    elif isinstance(exc, openai.APIConnectionError):
        msg = f"{doing}: could not reach OpenAI ({exc})"
    elif isinstance(exc, openai.APIStatusError):
        msg = f"{doing}: OpenAI answered {status}: {detail}"
    else:
        msg = f"{doing}: {exc}"
    return FineTuneError(msg, code=code)


@dataclass
class JobResult:
    job_id: str
    status: str
    fine_tuned_model: str | None
    trained_tokens: int | None = None
    events: list[dict] = field(default_factory=list)
    checkpoints: list[dict] = field(default_factory=list)
    training_file: str | None = None
    validation_file: str | None = None


EventFn = Callable[[dict], Awaitable[None] | None]


async def _call(fn: EventFn | None, payload: dict) -> None:
    if fn is None:
        return
    out = fn(payload)
    if asyncio.iscoroutine(out):
        await out


class OpenAIFineTuner:
    """Upload, create, poll (with backoff), cancel. One client per tuner; the caller owns its lifetime."""

    def __init__(self, client, *, poll_interval_s: float = 5.0, poll_max_interval_s: float = 60.0,
                 timeout_s: float = 24 * 3600, max_poll_errors: int = 5,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep):
        self.client = client
        self.poll_interval_s = poll_interval_s
        self.poll_max_interval_s = poll_max_interval_s
        self.timeout_s = timeout_s
        self.max_poll_errors = max_poll_errors
        self.sleep = sleep

    async def upload(self, path: Path) -> str:
        path = Path(path)
        try:
            with path.open("rb") as fh:
                created = await self.client.files.create(file=(path.name, fh.read()), purpose="fine-tune")
        except Exception as exc:
            raise api_error_message(exc, f"uploading {path}") from exc
        return created.id

    async def create_job(self, *, model: str, training_file: str, validation_file: str | None, suffix: str | None,
                         hyperparameters: dict | None = None, seed: int | None = None):
        hp = {k: v for k, v in (hyperparameters or {}).items() if v is not None}
        kwargs: dict[str, Any] = {"model": model, "training_file": training_file,
                                  "method": {"type": "supervised", "supervised": {"hyperparameters": hp}}}
        if validation_file:
            kwargs["validation_file"] = validation_file
        if suffix:
            kwargs["suffix"] = suffix
        if seed is not None:
            kwargs["seed"] = seed
        try:
            return await self.client.fine_tuning.jobs.create(**kwargs)
        except Exception as exc:
            raise api_error_message(exc, f"creating a fine-tuning job on {model}") from exc

    async def cancel(self, job_id: str):
        try:
            return await self.client.fine_tuning.jobs.cancel(job_id)
        except Exception as exc:
            raise api_error_message(exc, f"cancelling {job_id}") from exc

    async def new_events(self, job_id: str, seen: set[str]) -> list[dict]:
        """Events not yet in `seen`, oldest first (the API lists newest first)."""
        page = await self.client.fine_tuning.jobs.list_events(job_id, limit=100)
        fresh = [e for e in page.data if e.id not in seen]
        for e in fresh:
            seen.add(e.id)
        return [{"id": e.id, "created_at": e.created_at, "level": e.level, "message": e.message,
                 "type": getattr(e, "type", None), "data": getattr(e, "data", None)} for e in reversed(fresh)]

    async def new_checkpoints(self, job_id: str, seen: set[str]) -> list[dict]:
        page = await self.client.fine_tuning.jobs.checkpoints.list(job_id, limit=100)
        fresh = [c for c in page.data if c.id not in seen]
        for c in fresh:
            seen.add(c.id)
        out = []
        for c in sorted(fresh, key=lambda c: c.step_number):
            metrics = c.metrics.model_dump(exclude_none=True) if c.metrics is not None else {}
            out.append({"id": c.id, "step": c.step_number, "model": c.fine_tuned_model_checkpoint, "metrics": metrics})
        return out

    async def wait(self, job_id: str, *, on_event: EventFn = None, on_checkpoint: EventFn = None,
                   on_status: EventFn = None) -> JobResult:
        """Poll until the job ends; return on success, raise FineTuneJobFailed/Cancelled/Timeout otherwise."""
        seen_events: set[str] = set()
        seen_ckpts: set[str] = set()
        result = JobResult(job_id=job_id, status="", fine_tuned_model=None)
        interval = self.poll_interval_s
        started = time.monotonic()
        errors = 0
        last_status = None
        while True:
            try:
                job = await self.client.fine_tuning.jobs.retrieve(job_id)
                events = await self.new_events(job_id, seen_events)
                ckpts = await self.new_checkpoints(job_id, seen_ckpts)
                errors = 0
            except Exception as exc:  # the SDK already retried; a few more polls before giving up
                errors += 1
                if errors >= self.max_poll_errors:
                    raise api_error_message(exc, f"polling {job_id}") from exc
                log.warning("polling %s failed (%s); retrying", job_id, exc)
                await self.sleep(interval)
                interval = min(interval * 2, self.poll_max_interval_s)
                continue
            for e in events:
                result.events.append(e)
                await _call(on_event, e)
            for c in ckpts:
                result.checkpoints.append(c)
                await _call(on_checkpoint, c)
            changed = bool(events or ckpts) or job.status != last_status
            if job.status != last_status:
                await _call(on_status, {"status": job.status, "job_id": job_id})
                last_status = job.status
            result.status = job.status
            result.fine_tuned_model = job.fine_tuned_model
            result.trained_tokens = job.trained_tokens
            result.training_file, result.validation_file = job.training_file, job.validation_file
            if job.status == "succeeded":
                return result
            if job.status == "failed":
                err = job.error
                code = getattr(err, "code", None) if err else None
                message = getattr(err, "message", None) if err else None
                hint = _HINTS.get(code or "", "")
                text = f"OpenAI fine-tuning job {job_id} failed: {message or 'no reason given'}"
                if code:
                    text += f" (code {code})"
                if hint:
                    text += f"; {hint}"
                raise FineTuneJobFailed(text, job_id=job_id, code=code)
            if job.status == "cancelled":
                raise FineTuneJobCancelled(f"OpenAI fine-tuning job {job_id} was cancelled", job_id=job_id)
            if time.monotonic() - started > self.timeout_s:
                try:
                    await self.cancel(job_id)
                finally:
                    raise FineTuneTimeout(f"OpenAI fine-tuning job {job_id} did not finish in "
                                          f"{self.timeout_s / 3600:g} h; it was cancelled", job_id=job_id)
            # Back off while nothing happens; look again soon after something did.
            interval = self.poll_interval_s if changed else min(interval * 2, self.poll_max_interval_s)
            await self.sleep(interval)
