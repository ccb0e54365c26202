"""Restoration jobs run off the request thread, through a bounded queue.

:class:`JobQueue` holds at most ``capacity`` waiting jobs; :meth:`JobQueue.submit` raises
:class:`QueueFull` instead of waiting, so a request never blocks and the page can say that
the queue is full. ``workers`` threads (one by default: a restoration already uses every
core torch is given) take the jobs in order and run :func:`run_restore` or :func:`run_ab`.

Every file a job writes is inside its own folder ``DATA/jobs/ID/`` with names chosen here
(``input``, ``before.jpg``, ``after.jpg``, ``result.png``, ``motion.jpg``, ``kernel.png``,
``left.png``, ``right.png``); the ID is random. Finished jobs beyond ``keep`` are forgotten,
oldest first, and their folders removed.
"""

from __future__ import annotations

import queue
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unblur import io
from unblur.errors import UnblurError

__all__ = ["Job", "JobQueue", "QueueFull", "new_id"]


class QueueFull(Exception):
    """The queue holds ``capacity`` waiting jobs already."""


def new_id() -> str:
    """A random job ID: 16 lower-case hex digits."""
    return secrets.token_hex(8)


@dataclass
class Job:
    """One upload and what is done with it.

    Attributes:
        id: random, 16 hex digits; the job's folder is ``DATA/jobs/ID``.
        kind: ``restore`` (one method) or ``ab`` (two methods, blind comparison).
        folder: where its files are.
        name: the client's file name, for the download's name only (never a path here).
        methods: the method (``restore``) or the two methods in display order, left then
            right (``ab``).
        model: the network for ``network`` and ``auto``.
        picture: a hash of the upload's bytes (groups votes on the same picture).
        state: ``queued``, ``running``, ``done`` or ``failed``.
        stage: what is being done, in words.
        progress: 0 to 1 (``None``: unknown within the stage).
        error: the one-line message of a failed job.
        files: what it wrote: kind -> file name inside ``folder``.
        info: what the restoration reported (method ran, reason, seconds, size, ``tta``: the
            turns and flips each network pass averaged over, 1, 4 or 8).
        tta: the network also restores the picture's turns and flips and averages (8x time):
            ``True``, ``False``, or ``"auto"`` (eight up to 1280x720, four flips up to 2.1
            megapixels, as ``unblur image``).
    """

    id: str
    kind: str
    folder: Path
    name: str
    methods: tuple[str, ...]
    model: str
    picture: str
    state: str = "queued"
    stage: str = "waiting in the queue"
    progress: float | None = 0.0
    error: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    tta: bool | str = "auto"

    def public(self, position: int | None = None) -> dict[str, Any]:
        """What the page may see (an A/B job does not tell its methods until voted on)."""
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "stage": self.stage,
            "progress": self.progress,
            "error": self.error,
            "files": sorted(self.files),
            "name": self.name,
        }
        if position is not None:
            out["position"] = position
        if self.kind == "restore":
            out["info"] = self.info
            out["method"] = self.methods[0]
        return out


class JobQueue:
    """A bounded queue of jobs and the worker threads that run them."""

    def __init__(
        self,
        run: Callable[[Job], None],
        *,
        capacity: int = 8,
        workers: int = 1,
        keep: int = 200,
    ) -> None:
        if capacity < 1 or workers < 1 or keep < 1:
            raise ValueError("capacity, workers and keep must be >= 1")
        self.capacity = capacity
        self._run = run
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=capacity)
        self._jobs: dict[str, Job] = {}
        self._waiting: list[str] = []
        self._lock = threading.Lock()
        self._keep = keep
        self._threads = [
            threading.Thread(target=self._work, name=f"unblur-job-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    def submit(self, job: Job) -> int:
        """Queue a job; returns how many wait before it.

        Raises:
            QueueFull: ``capacity`` jobs wait already.
        """
        with self._lock:
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                raise QueueFull from None
            self._jobs[job.id] = job
            self._waiting.append(job.id)
            self._forget_old()
            return len(self._waiting) - 1

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def position(self, job_id: str) -> int | None:
        with self._lock:
            return self._waiting.index(job_id) if job_id in self._waiting else None

    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def close(self) -> None:
        """Stop the workers after the jobs already queued (blocks until they finish)."""
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join()

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.state in ("done", "failed")]
        excess = len(self._jobs) - self._keep
        for job in sorted(finished, key=lambda j: j.created)[: max(0, excess)]:
            del self._jobs[job.id]
            shutil.rmtree(job.folder, ignore_errors=True)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            with self._lock:
                if job.id in self._waiting:
                    self._waiting.remove(job.id)
            job.state, job.stage, job.progress = "running", "starting", 0.0
            try:
                self._run(job)
            except UnblurError as err:
                job.state, job.error = "failed", str(err)
            except Exception as err:  # a bug: say so on the page, keep serving
                job.state, job.error = "failed", f"internal error: {type(err).__name__}: {err}"
            else:
                job.state, job.stage, job.progress = "done", "done", 1.0
            finally:
                (job.folder / "input").unlink(missing_ok=True)


# ------------------------------------------------------------------------------- the work


@dataclass(frozen=True)
class Worker:
    """What a job needs: limits and devices; a callable for :class:`JobQueue`."""

    max_pixels: int
    device: str = "cpu"
    kernel_size: int = 31

    def __call__(self, job: Job) -> None:
        image = io.read_image(job.folder / "input", max_pixels=self.max_pixels)
        if job.kind == "restore":
            self.restore(job, image)
        else:
            self.ab(job, image)

    def _restore(self, job: Job, pixels: np.ndarray, method: str, span: tuple[float, float]) -> Any:
        from unblur.restoration.api import restore
        from unblur.restoration.network import cached_deblurrer

        low, high = span

        def tick(done: int, total: int) -> None:
            job.progress = low + (high - low) * done / max(total, 1)

        deblurrer = (
            cached_deblurrer(job.model, device=self.device, tta=job.tta)
            if method in ("network", "auto")
            else None
        )
        job.progress = low if method in ("network", "auto", "motion") else None
        return restore(
            pixels,
            method,  # type: ignore[arg-type]
            deblurrer=deblurrer,
            kernel_size=self.kernel_size,
            device=self.device,
            progress=tick,
        )

    def restore(self, job: Job, image: io.Image) -> None:
        from unblur.motion.picture import field_picture, kernel_picture

        pixels = image.pixels
        job.stage = f"restoring ({job.methods[0]})"
        result = self._restore(job, pixels, job.methods[0], (0.0, 0.85))
        job.info = {
            "ran": result.method,
            "reason": result.reason,
            "model": result.model,
            # blind deconvolution's share of a blend with the network (None: not blended)
            "share": result.share if result.share is not None and result.share < 1 else None,
            "polish": result.polish,  # ... and the share of the network run on the deconvolution
            "polish_model": result.polish_model,  # ... which network that was
            "seconds": round(result.seconds, 2),
            "tta": result.passes,
            "width": image.width,
            "height": image.height,
        }
        restored = image.with_pixels(result.pixels[..., : image.channels])
        _write(job, "result", "result.png", restored)
        _write(job, "before", "before.jpg", _preview(image.pixels))
        _write(job, "after", "after.jpg", _preview(restored.pixels))
        if result.kernel is not None:
            _write(job, "kernel", "kernel.png", kernel_picture(result.kernel, size=192))
        job.stage, job.progress = "estimating the motion field", 0.9
        estimate = result.motion
        if estimate is None and min(image.height, image.width) >= 32:
            from unblur.motion.estimate import estimate_motion

            estimate = estimate_motion(image.pixels, device=self.device)
        if estimate is not None:
            picture = field_picture(
                _shrink(image.pixels), _shrink_field(estimate.field, image.pixels)
            )
            _write(job, "motion", "motion.jpg", picture)

    def ab(self, job: Job, image: io.Image) -> None:
        pixels = image.pixels
        for i, (side, method) in enumerate(zip(("left", "right"), job.methods, strict=True)):
            job.stage = f"restoring version {'AB'[i]}"
            result = self._restore(job, pixels, method, (i / 2, (i + 1) / 2))
            restored = result.pixels[..., : image.channels]
            _write(job, side, f"{side}.png", _preview(restored, limit=None))
        _write(job, "before", "before.jpg", _preview(image.pixels))


_PREVIEW_SIDE = 2048


def _preview(pixels: np.ndarray, limit: int | None = _PREVIEW_SIDE) -> np.ndarray:
    """An 8-bit picture for the browser, at most ``limit`` px a side."""
    import cv2

    img = pixels[..., 0] if pixels.shape[-1] == 1 else pixels
    if limit is not None and max(img.shape[:2]) > limit:
        scale = limit / max(img.shape[:2])
        size = (round(img.shape[1] * scale), round(img.shape[0] * scale))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def _shrink(pixels: np.ndarray, side: int = 960) -> np.ndarray:
    return _preview(pixels, side)


def _shrink_field(motion: np.ndarray, pixels: np.ndarray, side: int = 960) -> np.ndarray:
    import cv2

    scale = min(1.0, side / max(pixels.shape[:2]))
    if scale == 1.0:
        return motion
    size = (round(pixels.shape[1] * scale), round(pixels.shape[0] * scale))
    return cv2.resize(motion, size, interpolation=cv2.INTER_AREA) * scale


def _write(job: Job, kind: str, name: str, picture: io.Image | np.ndarray) -> None:
    io.write_image(job.folder / name, picture, quality=92)
    job.files[kind] = name
