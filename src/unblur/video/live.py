"""Live restoration: any FFmpeg input, processed at its own rate, frames dropped when behind.

A reader thread decodes the source and releases each frame when its time comes (its
timestamp against the wall clock, like a player: a file plays at its real rate, a camera or
a network stream delivers at its own). It keeps only the newest frame: when the restoration
has not taken the previous one by the time the next is due, the previous one is dropped and
counted. The main thread restores what it takes and writes it to the sink (a file, or a
stream URL such as ``udp://127.0.0.1:5000`` with ``format="mpegts"``), with the frame's own
timestamp, so the output keeps real time with gaps where frames were dropped.

Live output carries video only (no audio): dropped frames would leave the audio out of step.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unblur.errors import InputError
from unblur.video.stream import EncoderSettings, Frame, StreamBreak, VideoReader, VideoWriter
from unblur.video.temporal import VideoRestorer

__all__ = ["LiveReport", "run_live"]


@dataclass
class LiveReport:
    """What a live run did.

    Attributes:
        frames_in: frames decoded from the source.
        frames_out: frames restored and written.
        dropped: frames dropped because the restoration was behind.
        seconds: wall time from the first frame to the end.
        input_fps: the source's nominal frame rate (``None`` unknown).
        broken: where the source broke, if it did.
        interrupted: stopped by Ctrl-C.
    """

    frames_in: int = 0
    frames_out: int = 0
    dropped: int = 0
    seconds: float = 0.0
    input_fps: float | None = None
    broken: StreamBreak | None = None
    interrupted: bool = False

    @property
    def fps(self) -> float:
        """Frames restored per second of wall time."""
        return self.frames_out / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        rate = f" (input {self.input_fps:.1f} fps)" if self.input_fps else ""
        return (
            f"{self.frames_in} frames in, {self.frames_out} restored, {self.dropped} dropped "
            f"(behind); {self.fps:.1f} fps achieved{rate} over {self.seconds:.1f} s"
        )


class _Latest:
    """A one-frame mailbox: putting a frame over an untaken one drops the old one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self.done = False
        self.dropped = 0
        self.error: BaseException | None = None

    def put(self, frame: Frame) -> None:
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._cond.notify()

    def finish(self, error: BaseException | None = None) -> None:
        with self._cond:
            self.done = True
            self.error = error
            self._cond.notify()

    def take(self, timeout: float = 0.5) -> Frame | None:
        """The newest frame, waiting for one; ``None`` when the source has ended."""
        with self._cond:
            while self._frame is None and not self.done:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            return frame


def run_live(
    source: str | Path,
    sink: str | Path,
    *,
    restorer: VideoRestorer,
    input_format: str | None = None,
    input_options: dict[str, str] | None = None,
    output_format: str | None = None,
    encoder: EncoderSettings | None = None,
    overwrite: bool = False,
    duration: float | None = None,
    pace: bool = True,
    timeout: float = 10.0,
    process: Callable[[np.ndarray], None] | None = None,
    on_status: Callable[[LiveReport], None] | None = None,
    stop: threading.Event | None = None,
) -> LiveReport:
    """Restore a live source into a sink at the source's rate (module docstring).

    Args:
        source: any FFmpeg input: file, device (with ``input_format``), URL.
        sink: output file or URL.
        restorer: the restoration (``fusion`` keeps up best; see the benchmarks).
        input_format, input_options: FFmpeg input format and options.
        output_format: FFmpeg output format (needed for most URLs, e.g. ``mpegts``).
        encoder: video encoder settings (default libx264 ``veryfast``).
        overwrite: replace an existing output file.
        duration: stop after this many seconds of input.
        pace: release frames at their timestamps (a file plays at its real rate); ``False``
            takes them as fast as they decode.
        timeout: seconds to wait for data from a network source.
        process: called with every frame taken, before restoring (tests use it to slow the
            restoration down).
        on_status: called with the running report about once a second.
        stop: an event that ends the run cleanly when set.

    Returns:
        A :class:`LiveReport`; the sink is closed and playable, whatever ended the run.

    Raises:
        InputError: the source cannot be opened or has no video stream.
        OutputError: the sink cannot be written.
        KeyboardInterrupt: after closing the sink (the report is on the exception's
            ``report`` attribute).
    """
    reader = VideoReader(
        source, format=input_format, options=input_options, copy_streams=False,
        timeout=timeout, end=duration,
    )  # fmt: skip
    info = reader.info
    report = LiveReport(input_fps=info.fps)
    box = _Latest()
    halt = stop or threading.Event()

    def read() -> None:
        clock0: float | None = None
        t0 = 0.0
        try:
            for frame in reader.frames():
                if halt.is_set():
                    break
                if pace:
                    now = time.perf_counter()
                    if clock0 is None:
                        clock0, t0 = now, frame.time
                    wait = clock0 + (frame.time - t0) - now
                    if wait > 0:
                        halt.wait(wait)
                report.frames_in += 1
                box.put(frame)
        except BaseException as err:  # handed to the main thread
            box.finish(err)
            return
        box.finish()

    settings = encoder or EncoderSettings(preset="veryfast")
    writer: VideoWriter | None = None
    thread = threading.Thread(target=read, name="unblur-live-reader", daemon=True)
    started = time.perf_counter()
    last_status = started
    thread.start()
    try:
        while True:
            frame = box.take()
            if frame is None:
                break
            if writer is None:
                writer = VideoWriter(
                    sink, width=info.width, height=info.height, time_base=info.time_base,
                    rate=info.rate, settings=settings, input_codec=None,
                    rotation=frame.rotation, colour=reader.colour, format=output_format,
                    overwrite=overwrite,
                )  # fmt: skip
                started = time.perf_counter()
            if process is not None:
                process(frame.pixels)
            for pts, pixels in restorer.push(frame.pixels, frame.pts):
                writer.write(pixels, pts)
                report.frames_out += 1
            now = time.perf_counter()
            if on_status is not None and now - last_status >= 1.0:
                report.dropped, report.seconds = box.dropped, now - started
                on_status(report)
                last_status = now
        if box.error is not None:
            raise box.error
        if writer is not None:
            for pts, pixels in restorer.flush():
                writer.write(pixels, pts)
                report.frames_out += 1
    except KeyboardInterrupt as err:
        report.interrupted = True
        halt.set()
        _finish(writer, report, box, started)
        err.report = report  # type: ignore[attr-defined]
        raise
    except BaseException:
        halt.set()
        if writer is not None and report.frames_out:
            _finish(writer, report, box, started)
        elif writer is not None:
            writer.abort()
        raise
    finally:
        halt.set()
        thread.join(timeout=timeout + 2.0)
        if not thread.is_alive():  # never close the input under a thread still reading it
            reader.close()
    _finish(writer, report, box, started)
    report.broken = reader.broken
    if report.frames_in == 0:
        raise InputError("no frame arrived from the source", source)
    return report


def _finish(writer: VideoWriter | None, report: LiveReport, box: _Latest, started: float) -> None:
    report.dropped = box.dropped
    report.seconds = time.perf_counter() - started
    if writer is not None:
        writer.close()
