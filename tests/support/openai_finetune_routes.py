"""OpenAI files + fine-tuning routes for the loopback `FakeOpenAIServer`, as OpenAI documents them.

    fake = FineTuningFake(models=["gpt-4.1-mini-2025-04-14"])
    server = FakeOpenAIServer(api_key=TEST_API_KEY)
    fake.install(server)                      # before server.start()
    fake.script(["validating_files", "queued", "running", "succeeded"],
                events_per_poll=1, checkpoints=[(10, 1.2, 1.3)])

Routes: `POST /v1/files` (multipart `file` + `purpose`), `POST /v1/fine_tuning/jobs`,
`GET /v1/fine_tuning/jobs/{id}`, `GET .../events` (newest first, as the API lists them),
`GET .../checkpoints`, `POST .../cancel`.

Each `GET` of a job advances it one status along its script; the last status sticks. A script
ending in "failed" carries `error` ({code, message, param}). Creating a job with a model not in
`models` answers 400 like the API (`model_not_available`); an unknown file id answers 400
`invalid_file_id`. Everything received is in `fake.files` / `fake.jobs` / `fake.polls`.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

from aiohttp import web

from tests.support.openai_server import FakeOpenAIServer, openai_error


@dataclass
class _Job:
    body: dict
    script: list[str]
    error: dict | None
    checkpoints: list[tuple[int, float, float]]
    events_per_poll: int
    id: str
    created_at: int
    position: int = 0
    events: list[dict] = field(default_factory=list)
    cancelled: bool = False

    @property
    def status(self) -> str:
        return "cancelled" if self.cancelled else self.script[min(self.position, len(self.script) - 1)]


class FineTuningFake:
    def __init__(self, models: list[str] | tuple[str, ...] = ("gpt-4.1-mini-2025-04-14",)):
        self.models = list(models)
        self.files: dict[str, dict] = {}
        self.file_bytes: dict[str, bytes] = {}
        self.jobs: dict[str, _Job] = {}
        self.polls = 0
        self._ids = itertools.count(1)
        self._script = (["validating_files", "queued", "running", "succeeded"], None, [(5, 1.5, 1.6), (10, 1.1, 1.2)], 1)

    def script(self, statuses: list[str], *, error: dict | None = None, checkpoints: list[tuple[int, float, float]] | None = None,
               events_per_poll: int = 1) -> None:
        """How the next created job behaves: statuses per poll, error when it fails, (step, train, valid) checkpoints."""
        self._script = (list(statuses), error, list(checkpoints or []), events_per_poll)

    def install(self, server: FakeOpenAIServer) -> None:
        server.add_route("POST", "/v1/files", self._upload)
        server.add_route("POST", "/v1/fine_tuning/jobs", self._create)
        server.add_route("GET", "/v1/fine_tuning/jobs/{id}", self._retrieve)
        server.add_route("GET", "/v1/fine_tuning/jobs/{id}/events", self._events)
        server.add_route("GET", "/v1/fine_tuning/jobs/{id}/checkpoints", self._checkpoints)
        server.add_route("POST", "/v1/fine_tuning/jobs/{id}/cancel", self._cancel)

    # -- handlers -----------------------------------------------------------------------------------

    async def _upload(self, request: web.Request) -> web.Response:
        raw = FakeOpenAIServer.recorded(request).raw
        # The recording middleware consumed the body stream; parse the multipart body from the copy.
        from email.parser import BytesParser
        from email.policy import HTTP

        header = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(header + raw)
        fields = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields[name] = (part.get_filename(), part.get_payload(decode=True))
        if "file" not in fields or fields.get("purpose", (None, b""))[1] != b"fine-tune":
            return openai_error(400, "Expected a 'file' and purpose 'fine-tune'.", type="invalid_request_error")
        file_id = f"file-{next(self._ids)}"
        filename, data = fields["file"]
        self.files[file_id] = {"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                               "filename": filename, "purpose": "fine-tune", "status": "processed"}
        self.file_bytes[file_id] = data
        return web.json_response(self.files[file_id])

    def _job_json(self, job: _Job) -> dict:
        done = job.status == "succeeded"
        body = job.body
        return {
            "id": job.id, "object": "fine_tuning.job", "created_at": job.created_at, "model": body["model"],
            "status": job.status, "training_file": body["training_file"], "validation_file": body.get("validation_file"),
            "fine_tuned_model": f"ft:{body['model']}:personabot:{body.get('suffix') or 'model'}:abc123" if done else None,
            "finished_at": int(time.time()) if job.status in ("succeeded", "failed", "cancelled") else None,
            "error": job.error if job.status == "failed" else None,
            "hyperparameters": (body.get("method") or {}).get("supervised", {}).get("hyperparameters", {}),
            "method": body.get("method"), "organization_id": "org-test", "result_files": [], "seed": body.get("seed", 0),
            "trained_tokens": 12345 if done else None, "estimated_finish": None, "integrations": [], "metadata": None,
        }

    async def _create(self, request: web.Request) -> web.Response:
        body = FakeOpenAIServer.recorded(request).json or {}
        if body.get("model") not in self.models:
            return openai_error(400, f"Model {body.get('model')} is not available for fine-tuning or does not exist.",
                                type="invalid_request_error", code="model_not_available")
        for key in ("training_file", "validation_file"):
            if body.get(key) is not None and body[key] not in self.files:
                return openai_error(400, f"invalid file id {body[key]!r}", type="invalid_request_error", code="invalid_file_id")
        statuses, error, ckpts, per_poll = self._script
        job = _Job(body, statuses, error, ckpts, per_poll, id=f"ftjob-{next(self._ids)}", created_at=int(time.time()))
        self.jobs[job.id] = job
        self._event(job, f"Created fine-tuning job: {job.id}")
        return web.json_response(self._job_json(job))

    def _event(self, job: _Job, message: str, *, level: str = "info", type: str = "message", data: dict | None = None) -> None:
        job.events.append({"id": f"ftevent-{next(self._ids)}", "object": "fine_tuning.job.event",
                           "created_at": int(time.time()), "level": level, "message": message, "type": type, "data": data or {}})

    def _job(self, request: web.Request) -> _Job | None:
        return self.jobs.get(request.match_info["id"])

    async def _retrieve(self, request: web.Request) -> web.Response:
        job = self._job(request)
        if job is None:
            return openai_error(404, "No such fine-tuning job.", type="invalid_request_error")
        self.polls += 1
        before = job.status
        if not job.cancelled and job.position < len(job.script) - 1:
            job.position += 1
        if job.status != before:
            if job.status == "running":
                for step, train, valid in job.checkpoints:
                    self._event(job, f"Step {step}: training loss={train}", type="metrics",
                                data={"step": step, "train_loss": train, "valid_loss": valid})
            elif job.status == "failed":
                self._event(job, (job.error or {}).get("message", "failed"), level="error")
            else:
                self._event(job, f"Job status: {job.status}")
        return web.json_response(self._job_json(job))

    async def _events(self, request: web.Request) -> web.Response:
        job = self._job(request)
        if job is None:
            return openai_error(404, "No such fine-tuning job.", type="invalid_request_error")
        data = list(reversed(job.events))[: int(request.query.get("limit", 20))]
        return web.json_response({"object": "list", "data": data, "has_more": False})

    async def _checkpoints(self, request: web.Request) -> web.Response:
        job = self._job(request)
        if job is None:
            return openai_error(404, "No such fine-tuning job.", type="invalid_request_error")
        data = []
        if job.status in ("running", "succeeded"):
            for step, train, valid in reversed(job.checkpoints):
                data.append({"id": f"ftckpt-{job.id}-{step}", "object": "fine_tuning.job.checkpoint", "created_at": job.created_at,
                             "fine_tuned_model_checkpoint": f"ft:{job.body['model']}:personabot::ckpt-step-{step}",
                             "fine_tuning_job_id": job.id, "step_number": step,
                             "metrics": {"step": step, "train_loss": train, "valid_loss": valid, "full_valid_loss": valid}})
        return web.json_response({"object": "list", "data": data, "has_more": False,
                                  "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None})

    async def _cancel(self, request: web.Request) -> web.Response:
        job = self._job(request)
        if job is None:
            return openai_error(404, "No such fine-tuning job.", type="invalid_request_error")
        if job.status in ("succeeded", "failed", "cancelled"):
            return openai_error(400, f"Job {job.id} has already completed: {job.status}.", type="invalid_request_error")
        job.cancelled = True
        self._event(job, "Fine-tuning job cancelled")
        return web.json_response(self._job_json(job))
