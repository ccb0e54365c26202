"""The local web page's server: FastAPI routes over :mod:`unblur.web.jobs` and
:mod:`unblur.web.votes`.

Routes (all JSON unless said):

* ``GET /``: the page (``static/index.html``; script and style beside it).
* ``GET /api/options``: methods, models, limits, the A/B methods.
* ``POST /api/jobs?method=M&model=N&name=F[&tta=auto|true|false]``: the request body *is*
  the picture (what the page's ``fetch(url, {body: file})`` sends). Restores it with one
  method (turns and flips: ``auto`` by the picture's size, as ``unblur image``); answers the job.
* ``POST /api/ab?name=F``: the same upload for a blind A/B comparison: two methods drawn at
  random, shown in random order.
* ``GET /api/jobs/ID``: state, stage, progress, queue position, files, what was done.
* ``GET /api/jobs/ID/files/KIND``: ``before``, ``after``, ``result`` (download), ``motion``,
  ``kernel``, ``left``, ``right``.
* ``POST /api/ab/ID/vote`` with ``{"choice": "left" | "right" | "equal"}``: stores the vote
  (once per comparison) and reveals the methods.
* ``GET /api/ab/results``: win rates and 95% intervals per method, and pairwise counts.

Safety: the upload is streamed to ``DATA/jobs/ID/input`` (a name chosen by the server) and
refused as soon as it passes ``max_upload_bytes`` (or at once when ``Content-Length`` says
so); it is then decoded by :func:`unblur.io.read_image` with its pixel limit (decompression
bombs are refused from the header) and refused with its one-line message when it is no
picture. A client's file name is only used for the download's name and is refused when it
holds a path. Taking the body as the file, rather than a multipart form, keeps every byte
inside the data folder (a form parser spools large parts to the system's temporary folder).
HTTP itself is parsed by uvicorn and Starlette.
"""

from __future__ import annotations

import hashlib
import random
import re
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from unblur import io
from unblur.errors import ImageTooLargeError, UnblurError
from unblur.web.jobs import Job, JobQueue, QueueFull, Worker, new_id
from unblur.web.votes import VoteStore

__all__ = ["ServerSettings", "create_app"]

METHODS = ("auto", "network", "blind", "motion")
FILE_KINDS = ("before", "after", "result", "motion", "kernel", "left", "right")
_ID = re.compile(r"^[0-9a-f]{16}$")
_MAX_NAME = 200


class ServerSettings(BaseModel):
    """The server's limits and choices (``unblur serve``'s options).

    Attributes:
        data_dir: every file the server writes is inside it.
        max_upload_bytes: largest upload accepted.
        max_pixels: largest picture (width x height) decoded.
        queue_capacity: jobs that may wait; more are refused with "the queue is full".
        workers: jobs run at once.
        keep_jobs: finished jobs kept (with their files); older ones are removed.
        ab_methods: the methods blind A/B draws its pairs from (two or more).
        device: torch device.
        kernel_size: kernel side for ``blind`` and ``auto``.
    """

    data_dir: Path
    max_upload_bytes: int = 50 * 2**20
    max_pixels: int = 50_000_000
    queue_capacity: int = 8
    workers: int = 1
    keep_jobs: int = 200
    ab_methods: tuple[str, ...] = ("network", "blind")
    device: str = "cpu"
    kernel_size: int = 31


class Vote(BaseModel):
    choice: str


_TTA: dict[str, bool | str] = {"auto": "auto", "true": True, "false": False}
"""The ``tta`` query's values: turns and flips by the picture's size (as ``unblur image``: eight
passes up to 1280x720, the four flips up to 2.1 megapixels), always all eight, never."""


def _models() -> list[str]:
    from unblur.models import get_spec, list_models

    return [n for n in list_models(task="restore") if get_spec(n).has_weights]


def _check_name(name: str | None) -> str:
    """The client's file name, for display and the download's name; refused with a path."""
    if not name:
        return "picture"
    if (
        len(name) > _MAX_NAME
        or any(c in name for c in "/\\\x00:")
        or name in (".", "..")
        or name.startswith(".")
        or any(ord(c) < 32 for c in name)
    ):
        raise HTTPException(400, "the file name must be a plain name, without a path")
    return name


def create_app(settings: ServerSettings) -> FastAPI:
    """The application: serve it with uvicorn (``unblur serve``) or test it with
    :class:`fastapi.testclient.TestClient`.

    Raises:
        ValueError: fewer than two A/B methods, or an unknown one.
    """
    ab_methods = tuple(dict.fromkeys(settings.ab_methods))
    if len(ab_methods) < 2 or any(m not in METHODS for m in ab_methods):
        raise ValueError(f"A/B needs two or more of {', '.join(METHODS)}, got {ab_methods}")
    data = settings.data_dir
    (data / "jobs").mkdir(parents=True, exist_ok=True, mode=0o700)
    votes = VoteStore(data / "votes.sqlite3")
    worker = Worker(settings.max_pixels, settings.device, settings.kernel_size)
    jobs = JobQueue(
        worker,
        capacity=settings.queue_capacity,
        workers=settings.workers,
        keep=settings.keep_jobs,
    )
    models = _models()
    app = FastAPI(title="unblur", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.jobs = jobs
    app.state.settings = settings
    static = resources.files("unblur.web") / "static"

    @app.exception_handler(HTTPException)
    async def _error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(str(static / "index.html"), media_type="text/html")

    @app.get("/api/options")
    async def options() -> dict[str, Any]:
        return {
            "methods": list(METHODS),
            "models": ["auto", *models],
            "ab_methods": list(ab_methods),
            "max_upload_bytes": settings.max_upload_bytes,
            "max_pixels": settings.max_pixels,
            "queue_capacity": settings.queue_capacity,
        }

    async def receive(
        request: Request,
        kind: str,
        methods: tuple[str, ...],
        model: str,
        name: str,
        tta: bool | str = "auto",
    ) -> Job:
        """Stream the body into a new job's folder, check it is a picture, queue the job."""
        limit = settings.max_upload_bytes
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise HTTPException(413, f"the file is larger than the limit of {_size(limit)}")
        if jobs.waiting() >= jobs.capacity:
            raise HTTPException(503, _full_message(jobs.capacity))
        job_id = new_id()
        job = Job(job_id, kind, data / "jobs" / job_id, name, methods, model, picture="", tta=tta)
        job.folder.mkdir(mode=0o700)
        target = job.folder / "input"
        digest = hashlib.sha256()
        size = 0
        try:
            with target.open("wb") as f:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise HTTPException(
                            413, f"the file is larger than the limit of {_size(limit)}"
                        )
                    digest.update(chunk)
                    f.write(chunk)
            if size == 0:
                raise HTTPException(400, "the upload is empty: choose a picture")
            try:
                image = await run_in_threadpool(
                    io.read_image, target, max_pixels=settings.max_pixels
                )
            except ImageTooLargeError:
                raise HTTPException(
                    413,
                    f"the picture has more than {settings.max_pixels:,} pixels "
                    "(the server's limit)",
                ) from None
            except UnblurError as err:
                message = getattr(err, "message", str(err))
                raise HTTPException(400, f"not a picture that can be read: {message}") from None
            if min(image.width, image.height) < 8:
                raise HTTPException(400, "the picture is too small (under 8 pixels a side)")
            job.picture = digest.hexdigest()[:16]
            try:
                jobs.submit(job)
            except QueueFull:
                raise HTTPException(503, _full_message(jobs.capacity)) from None
        except BaseException:
            shutil.rmtree(job.folder, ignore_errors=True)
            raise
        return job

    @app.post("/api/jobs", status_code=202)
    async def start(
        request: Request,
        method: str = "auto",
        model: str = "auto",
        name: str | None = None,
        tta: str = "auto",
    ) -> dict[str, Any]:
        if tta not in _TTA:
            raise HTTPException(400, f"unknown tta {tta!r}; choose auto, true or false")
        if method not in METHODS:
            raise HTTPException(400, f"unknown method {method!r}; choose {', '.join(METHODS)}")
        if model != "auto" and model not in models:
            raise HTTPException(400, f"unknown model {model!r}; choose {', '.join(models)}")
        chosen = models[0] if model == "auto" else model
        job = await receive(request, "restore", (method,), chosen, _check_name(name), _TTA[tta])
        return job.public(jobs.position(job.id))

    @app.post("/api/ab", status_code=202)
    async def start_ab(request: Request, name: str | None = None) -> dict[str, Any]:
        pair = tuple(random.sample(ab_methods, 2))  # random methods, random order
        job = await receive(request, "ab", pair, models[0], _check_name(name))
        return job.public(jobs.position(job.id))

    def find(job_id: str) -> Job:
        job = jobs.get(job_id) if _ID.match(job_id) else None
        if job is None:
            raise HTTPException(404, "no such job (the server may have restarted)")
        return job

    @app.get("/api/jobs/{job_id}")
    async def status(job_id: str) -> dict[str, Any]:
        job = find(job_id)
        out = job.public(jobs.position(job.id))
        if job.kind == "ab":
            out["voted"] = votes.voted(job.id)
        return out

    @app.get("/api/jobs/{job_id}/files/{kind}")
    async def file(job_id: str, kind: str) -> FileResponse:
        job = find(job_id)
        if kind not in FILE_KINDS or kind not in job.files:
            raise HTTPException(404, f"this job has no {kind!r} file")
        path = job.folder / job.files[kind]
        if kind == "result":
            stem = Path(job.name).stem or "picture"
            return FileResponse(path, filename=f"{stem}_unblurred.png", media_type="image/png")
        return FileResponse(path, headers={"Cache-Control": "no-store"})

    @app.post("/api/ab/{job_id}/vote")
    async def vote(job_id: str, body: Vote) -> dict[str, Any]:
        job = find(job_id)
        if job.kind != "ab":
            raise HTTPException(400, "this job is not an A/B comparison")
        if job.state != "done":
            raise HTTPException(409, "the two versions are not ready yet")
        if body.choice not in ("left", "right", "equal"):
            raise HTTPException(400, "choice must be left, right or equal")
        left, right = job.methods
        if not votes.add(job.id, job.picture, left, right, body.choice):
            raise HTTPException(409, "this comparison has already been judged")
        return {"left": left, "right": right, "choice": body.choice}

    @app.get("/api/ab/results")
    async def results() -> dict[str, Any]:
        return {
            "methods": votes.method_stats(),
            "pairs": votes.pairwise(),
            "votes": len(votes.rows()),
            "interval": "95% Wilson score interval; ties count as half a win",
        }

    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    return app


def _size(n: int) -> str:
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{n / 1024:.0f} KB"


def _full_message(capacity: int) -> str:
    return f"the queue is full ({capacity} pictures waiting); try again in a minute"
