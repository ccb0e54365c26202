"""Restoring whole videos: the iterator API and file-to-file restoration.

* :func:`restore_video` yields restored frames one at a time from a video file, a stream
  URL, a folder of frames or any iterable of arrays: the API for other programs.
* :func:`restore_file` restores a video (or folders of frames) into a new video (or
  folders), streaming, keeping timing, rotation, audio and subtitles (:mod:`.stream`), with
  the guarantees the command line gives: never replace the input, refuse an existing output
  unless asked, write through a temporary file, and on a broken input, a size change or an
  interrupt close the output so that what was written plays.

Example:
    >>> import unblur
    >>> for frame in unblur.restore_video("clip.mp4", method="fusion"):  # doctest: +SKIP
    ...     print(frame.index, frame.time, frame.pixels.shape)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from unblur.errors import InputError, OutputError
from unblur.video.flow import DutyEstimate, estimate_duty
from unblur.video.stream import EncoderSettings, StreamBreak, VideoReader, VideoWriter, is_url
from unblur.video.temporal import METHODS, USES_FLOW, USES_NETWORK, FusionSettings, VideoRestorer

if TYPE_CHECKING:
    from unblur.restoration.network import Deblurrer

__all__ = [
    "VIDEO_SUFFIXES",
    "Interrupted",
    "VideoFrame",
    "VideoReport",
    "restore_file",
    "restore_video",
]

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".m4v", ".avi", ".webm", ".ts", ".mts", ".mpg", ".flv")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")


@dataclass(frozen=True)
class VideoFrame:
    """A restored frame.

    Attributes:
        pixels: float32 ``(H, W, 3)`` RGB in [0, 1] (sRGB as stored).
        index: position in the output, from 0.
        time: seconds from the start of the output.
        pts: timestamp in the input's time base (``None`` for frames without one).
    """

    pixels: np.ndarray = field(repr=False)
    index: int
    time: float
    pts: int | None = None


@dataclass
class VideoReport:
    """What :func:`restore_file` did.

    Attributes:
        output: where it wrote.
        frames: frames written.
        seconds: wall time.
        method: the restoration method; ``auto`` says what it chose and why
            (``auto: network (sharpness gain 0.14, motion gain 0.54)``).
        duty: the duty cycle used (flow methods), else ``None``.
        broken: where the input broke, if it did (the output then holds what came before).
        encoder: the video encoder used (video outputs).
    """

    output: Path | str
    frames: int = 0
    seconds: float = 0.0
    method: str = "auto"
    duty: DutyEstimate | None = None
    broken: StreamBreak | None = None
    encoder: str | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`restore_file`; the output was closed first (``report``)."""

    def __init__(self, report: VideoReport) -> None:
        super().__init__()
        self.report = report


# --------------------------------------------------------------------------- helpers


def make_deblurrer(
    model: str = "nafnet-fast",
    *,
    weights: str | Path | None = None,
    device: str = "auto",
    precision: str = "fp32",
    tile: int | None = 1024,
    tile_overlap: int = 64,
) -> Deblurrer:
    """Load the restoration network once for a whole video."""
    from unblur.restoration.network import Deblurrer

    return Deblurrer(
        model,
        weights=weights,
        device=device,
        precision=precision,  # type: ignore[arg-type]
        tile=tile,
        tile_overlap=tile_overlap,
    )


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")


def _source_frames(
    source: str | Path,
    *,
    start: float | None,
    end: float | None,
    fps: float,
    max_pixels: int,
) -> Iterator[tuple[np.ndarray, float, int | None]]:
    """``(uint8 frame, time, pts)`` from a video, a URL or a folder of frames (no audio)."""
    from unblur.video import frames as folder

    if not is_url(source) and Path(source).is_dir():
        seqs = folder.find_sequences(Path(source))
        if len(seqs) > 1:
            raise InputError(
                f"holds {len(seqs)} sequences; restore_video takes one (name it)", source
            )
        for i, (_, frame) in enumerate(
            folder.read_frames(Path(source) / seqs[0], max_pixels=max_pixels)
        ):
            t = i / fps
            if start is not None and t < start:
                continue
            if end is not None and t >= end:
                return
            yield frame, t, None
        return
    with VideoReader(
        source, start=start, end=end, copy_streams=False, max_pixels=max_pixels
    ) as reader:
        for frame in reader.frames():
            yield frame.pixels, frame.time, frame.pts
        if reader.broken is not None:
            raise InputError(reader.broken.describe(), reader._label)


def _pre_duty(
    source: str | Path | None,
    method: str,
    duty: float | None,
    *,
    start: float | None,
    end: float | None,
    fps: float,
    max_pixels: int,
) -> DutyEstimate | None:
    """The clip's duty cycle from its first frames (a separate, short read), for files."""
    if duty is not None:
        return DutyEstimate(duty, 0, True)
    if method not in USES_FLOW or source is None or is_url(source):
        return None
    frames = (f for f, _, _ in _source_frames(
        source, start=start, end=end, fps=fps, max_pixels=max_pixels
    ))  # fmt: skip
    try:
        return estimate_duty(frames)
    except InputError:
        return None  # the main pass reports the problem where it happens


# --------------------------------------------------------------------------- iterator API


def restore_video(
    source: str | Path | Iterable[np.ndarray],
    *,
    method: str = "auto",
    duty: float | None = None,
    start: float | None = None,
    end: float | None = None,
    fps: float = 30.0,
    deblurrer: Deblurrer | None = None,
    model: str = "nafnet-fast",
    weights: str | Path | None = None,
    device: str = "auto",
    settings: FusionSettings | None = None,
    max_pixels: int = 200_000_000,
) -> Iterator[VideoFrame]:
    """Restore a video, yielding each frame as soon as it is done (memory stays flat).

    Args:
        source: a video file, a stream URL, a folder of frames, or an iterable of RGB
            frames (uint8, or float in [0, 1]).
        method: ``auto`` (the default: ``temporal`` when the first frames' blur varies
            enough for lucky imaging, else ``network``; see
            :mod:`unblur.video.temporal`), ``temporal`` (aligned neighbours fused, then the
            network where blur remains), ``fusion`` (fusion alone: fast), ``network``
            (each frame alone), ``none``.
        duty: the duty cycle (exposure / frame interval); ``None`` estimates it from the
            first frames.
        start, end: seconds to restore (files and folders).
        fps: frame rate of folders and arrays (for ``time``).
        deblurrer: a loaded network to reuse; else ``model``/``weights``/``device`` load one.
        settings: alignment and fusion settings.
        max_pixels: refuse larger frames.

    Yields:
        :class:`VideoFrame` records, in order.

    Raises:
        InputError: the source cannot be read, or breaks (after the frames before it).
        ValueError: an unknown method.
    """
    _check_method(method)
    if method in USES_NETWORK and deblurrer is None:
        deblurrer = make_deblurrer(model, weights=weights, device=device)
    if isinstance(source, str | Path):
        found = _pre_duty(
            source, method, duty, start=start, end=end, fps=fps, max_pixels=max_pixels
        )
        duty = None if found is None else found.duty
        stream: Iterable[tuple[np.ndarray, float, int | None]] = _source_frames(
            source, start=start, end=end, fps=fps, max_pixels=max_pixels
        )
    else:
        stream = ((np.asarray(f), i / fps, None) for i, f in enumerate(source))
    restorer = VideoRestorer(method, deblurrer=deblurrer, duty=duty, settings=settings)
    index = 0
    for pixels, t, pts in stream:
        for (tt, pp), out in restorer.push(pixels, (t, pts)):
            yield VideoFrame(out, index, tt, pp)
            index += 1
    for (tt, pp), out in restorer.flush():
        yield VideoFrame(out, index, tt, pp)
        index += 1


# --------------------------------------------------------------------------- files


def _is_video_target(path: str | Path) -> bool:
    return is_url(path) or Path(path).suffix.lower() in VIDEO_SUFFIXES


def _same(a: str | Path, b: str | Path) -> bool:
    if is_url(a) or is_url(b):
        return str(a) == str(b)
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def check_paths(source: str | Path, output: str | Path, *, overwrite: bool) -> None:
    """Everything that would make the output step fail, found before any work.

    Raises:
        OutputError: the output is the input, an image file name, or exists (without
            ``overwrite``).
    """
    if _same(source, output):
        raise OutputError(
            "output is the input; name another output (the input is never replaced)", output
        )
    if is_url(output):
        return
    out = Path(output)
    if out.suffix.lower() in IMAGE_SUFFIXES:
        raise OutputError(
            "one image cannot hold a video; name a video file (.mp4, .mkv...) or a folder "
            "for the frames",
            out,
        )
    if _is_video_target(out):
        if out.exists() and not overwrite:
            raise OutputError("already exists; pass --overwrite to replace", out)
        if out.is_dir():
            raise OutputError("is a folder; a video output needs a file name", out)
        if not out.parent.exists():
            raise OutputError("folder does not exist", out.parent)
    elif out.exists() and not out.is_dir():
        raise OutputError(
            f"{out.suffix or 'no'} extension is not a video format "
            f"({', '.join(VIDEO_SUFFIXES)}), and it is not a folder",
            out,
        )


def restore_file(
    source: str | Path,
    output: str | Path,
    *,
    method: str = "auto",
    duty: float | None = None,
    start: float | None = None,
    end: float | None = None,
    fps: float = 30.0,
    deblurrer: Deblurrer | None = None,
    settings: FusionSettings | None = None,
    encoder: EncoderSettings | None = None,
    copy_audio: bool = True,
    copy_subtitles: bool = True,
    overwrite: bool = False,
    input_format: str | None = None,
    output_format: str | None = None,
    max_pixels: int = 200_000_000,
    progress: bool = False,
    on_frame: Callable[[int], None] | None = None,
) -> VideoReport:
    """Restore a video file (or a folder of frames) into a video file (or a folder).

    Video in, video out keeps timing, rotation, colour tags, audio and subtitles; a folder
    output gets one PNG per frame (``000000.png`` ...), or the input frames' names. See the
    module docstring for the guarantees.

    Args:
        source: input video file, stream URL, or folder of frames / of sequences.
        output: output video file (its extension picks the container), URL, or folder.
        method, duty, start, end, deblurrer, settings: as for :func:`restore_video`.
        fps: frame rate given to a video made from a folder of frames.
        encoder: video encoder choice and quality (default: like the input's).
        copy_audio, copy_subtitles: copy those streams (video to video).
        overwrite: replace an existing output.
        input_format, output_format: FFmpeg format names, where guessing will not do.
        max_pixels: refuse larger frames.
        progress: show a progress bar (frames, frames per second, time left).
        on_frame: called with the count of frames written, after each.

    Returns:
        A :class:`VideoReport`.

    Raises:
        InputError: unreadable input, no video stream, a corrupt or truncated stream or a
            size change (raised after the frames before it were written and the output
            closed; the message says where and what was written).
        OutputError: see :func:`check_paths`; a container that cannot hold the codec.
        Interrupted: Ctrl-C, after the output was closed cleanly.
    """
    _check_method(method)
    check_paths(source, output, overwrite=overwrite)
    if method in USES_NETWORK and deblurrer is None:
        deblurrer = make_deblurrer()
    from unblur.video import frames as folder

    if not is_url(source) and Path(source).is_dir():
        if start is not None or end is not None:
            raise InputError(
                "--start and --end cut videos; a folder of frames is restored whole (make a "
                "folder of the frames you want)",
                source,
            )
        seqs = folder.find_sequences(Path(source))
        if _is_video_target(output):
            if len(seqs) > 1:
                raise OutputError(
                    f"{source} holds {len(seqs)} sequences; write them to a folder", output
                )
            return _frames_to_video(
                Path(source) / seqs[0], output, method=method, duty=duty, fps=fps,
                deblurrer=deblurrer, settings=settings, encoder=encoder, overwrite=overwrite,
                output_format=output_format, max_pixels=max_pixels, progress=progress,
                on_frame=on_frame,
            )  # fmt: skip
        report = VideoReport(Path(output), method=method)
        for seq in seqs:
            part = _frames_to_frames(
                Path(source) / seq, Path(output) / seq, method=method, duty=duty,
                deblurrer=deblurrer, settings=settings, overwrite=overwrite,
                max_pixels=max_pixels, progress=progress, on_frame=on_frame,
            )  # fmt: skip
            report.frames += part.frames
            report.seconds += part.seconds
            report.duty = part.duty
        return report
    return _video_to(
        source, output, method=method, duty=duty, start=start, end=end, deblurrer=deblurrer,
        settings=settings, encoder=encoder, copy_audio=copy_audio, copy_subtitles=copy_subtitles,
        overwrite=overwrite, input_format=input_format, output_format=output_format,
        max_pixels=max_pixels, progress=progress, on_frame=on_frame,
    )  # fmt: skip


class _Sink:
    """Where restored frames go: a :class:`VideoWriter` made on the first frame, or a
    folder of PNGs."""

    def __init__(self, make: Callable[[], VideoWriter] | None, folder: Path | None) -> None:
        self.make = make
        self.folder = folder
        self.writer: VideoWriter | None = None
        self.pending: list[Any] = []
        self.count = 0
        self.overwrite = False
        self.names: dict[int, str] = {}

    def open(self) -> None:
        if self.make is not None and self.writer is None:
            self.writer = self.make()
            for packet in self.pending:
                self.writer.mux(packet)
            self.pending.clear()

    def packet(self, packet: Any) -> None:
        if self.writer is None:
            if len(self.pending) < 4096:
                self.pending.append(packet)
        else:
            self.writer.mux(packet)

    def write(self, pixels: np.ndarray, pts: int | None, name: str | None = None) -> None:
        if self.writer is not None:
            self.writer.write(pixels, pts)
        else:
            from unblur import io

            assert self.folder is not None
            path = self.folder / (name or f"{self.count:06d}.png")
            if path.exists() and not self.overwrite:
                raise OutputError("already exists; pass --overwrite to replace", path)
            io.write_image(path, np.clip(pixels, 0, 1).astype(np.float32), overwrite=True)
        self.count += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()


def _bar(progress: bool, total: int | None) -> Any:
    from unblur.progress import bar

    return bar(total=total, desc="frames", unit="frame", enabled=progress)


def _drive(
    frames: Iterable[tuple[np.ndarray, Any]],
    restorer: VideoRestorer,
    sink: _Sink,
    report: VideoReport,
    *,
    progress: bool,
    total: int | None,
    on_frame: Callable[[int], None] | None,
    on_first: Callable[[], None] | None = None,
) -> None:
    """Push frames through the restorer into the sink; close the sink cleanly whatever
    happens (an interrupt included), abort it on errors of our own."""
    bar = _bar(progress, total)
    started = time.perf_counter()
    first = True

    def emit(items: list[tuple[Any, np.ndarray]]) -> None:
        for (pts, name), pixels in items:
            sink.write(pixels, pts, name)
            bar.update(1)
            if on_frame is not None:
                on_frame(sink.count)

    try:
        for pixels, tag in frames:
            if first:
                first = False
                if on_first is not None:
                    on_first()
                sink.open()
            emit(restorer.push(pixels, tag))
        emit(restorer.flush())
    except KeyboardInterrupt:
        bar.close()
        report.frames, report.seconds = sink.count, time.perf_counter() - started
        if sink.count:
            sink.close()
        else:
            sink.abort()
        raise Interrupted(report) from None
    except BaseException:
        bar.close()
        if sink.count and isinstance(sink.writer, VideoWriter):
            sink.close()  # keep what was written: it plays
        else:
            sink.abort()
        raise
    bar.close()
    report.frames, report.seconds = sink.count, time.perf_counter() - started
    if report.duty is None and restorer.method in USES_FLOW:
        report.duty = restorer.duty
    if restorer.requested == "auto" and restorer.gain is not None:
        report.method = (
            f"auto: {restorer.method} (sharpness gain {restorer.gain:.2f}, "
            f"motion gain {restorer.motion_gain:.2f})"
        )
    sink.close()


def _video_to(
    source: str | Path,
    output: str | Path,
    *,
    method: str,
    duty: float | None,
    start: float | None,
    end: float | None,
    deblurrer: Deblurrer | None,
    settings: FusionSettings | None,
    encoder: EncoderSettings | None,
    copy_audio: bool,
    copy_subtitles: bool,
    overwrite: bool,
    input_format: str | None,
    output_format: str | None,
    max_pixels: int,
    progress: bool,
    on_frame: Callable[[int], None] | None,
) -> VideoReport:
    reader = VideoReader(
        source, start=start, end=end, format=input_format, max_pixels=max_pixels,
        copy_streams=copy_audio or copy_subtitles,
    )  # fmt: skip
    try:
        reader.copied = [
            s
            for s in reader.copied
            if (s.type == "audio" and copy_audio) or (s.type == "subtitle" and copy_subtitles)
        ]
        info = reader.info
        found = None
        if input_format is None:
            found = _pre_duty(
                source, method, duty, start=start, end=end, fps=info.fps or 30.0,
                max_pixels=max_pixels,
            )  # fmt: skip
        duty = duty if found is None else found.duty
        restorer = VideoRestorer(method, deblurrer=deblurrer, duty=duty, settings=settings)
        report = VideoReport(output, method=method, duty=found)
        to_video = _is_video_target(output)
        state: dict[str, Any] = {}

        def make() -> VideoWriter:
            writer = VideoWriter(
                output,
                width=info.width,
                height=info.height,
                time_base=info.time_base,
                rate=info.rate,
                settings=encoder,
                input_codec=info.codec,
                input_pix_fmt=info.pix_fmt,
                input_bit_rate=info.bit_rate,
                rotation=state.get("rotation", 0),
                colour=reader.colour,
                templates=reader.copied,
                format=output_format,
                overwrite=overwrite,
            )
            report.encoder = writer.encoder
            return writer

        if not to_video:
            from unblur.cli._common import ensure_folder

            ensure_folder(Path(output))
        sink = _Sink(make if to_video else None, None if to_video else Path(output))
        sink.overwrite = overwrite

        def frames() -> Iterator[tuple[np.ndarray, Any]]:
            for frame in reader.frames(on_packet=sink.packet if to_video else None):
                state["rotation"] = frame.rotation
                yield frame.pixels, (frame.pts, None)

        _drive(
            frames(), restorer, sink, report, progress=progress,
            total=info.expected_frames(start, end), on_frame=on_frame,
        )  # fmt: skip
        report.broken = reader.broken
        damaged = list(reader.damaged)
    finally:
        reader.close()
    if report.broken is not None:
        if report.frames == 0:
            raise InputError(
                f"{report.broken.describe()}; nothing decoded, nothing written", source
            )
        raise InputError(
            f"{report.broken.describe()}; the {report.frames} frames before it were restored "
            f"and written to {output}",
            source,
        )
    if report.frames == 0:
        raise InputError("no frame decodes (empty, or --start past the end)", source)
    if damaged:
        index, at = damaged[0]
        raise InputError(
            f"the stream is damaged: {len(damaged)} frame(s) decoded with errors concealed, "
            f"the first at frame {index} ({at:.2f} s); all {report.frames} frames were "
            f"restored and written to {output}",
            source,
        )
    return report


def _frames_to_video(
    folder: Path,
    output: str | Path,
    *,
    method: str,
    duty: float | None,
    fps: float,
    deblurrer: Deblurrer | None,
    settings: FusionSettings | None,
    encoder: EncoderSettings | None,
    overwrite: bool,
    output_format: str | None,
    max_pixels: int,
    progress: bool,
    on_frame: Callable[[int], None] | None,
) -> VideoReport:
    from unblur.video import frames as folder_io

    paths = folder_io.list_frames(folder)
    first = folder_io.read_frames(folder, max_pixels=max_pixels)
    _, frame0 = next(iter(first))
    rate = Fraction(fps).limit_denominator(1001)
    found = _pre_duty(folder, method, duty, start=None, end=None, fps=fps, max_pixels=max_pixels)
    restorer = VideoRestorer(
        method, deblurrer=deblurrer, duty=None if found is None else found.duty, settings=settings
    )
    report = VideoReport(output, method=method, duty=found)

    def make() -> VideoWriter:
        writer = VideoWriter(
            output, width=frame0.shape[1], height=frame0.shape[0], time_base=1 / rate,
            rate=rate, settings=encoder, format=output_format, overwrite=overwrite,
        )  # fmt: skip
        report.encoder = writer.encoder
        return writer

    sink = _Sink(make, None)
    frames = (
        (pixels, (i, None))
        for i, (_, pixels) in enumerate(folder_io.read_frames(folder, max_pixels=max_pixels))
    )
    _drive(frames, restorer, sink, report, progress=progress, total=len(paths), on_frame=on_frame)
    return report


def _frames_to_frames(
    folder: Path,
    output: Path,
    *,
    method: str,
    duty: float | None,
    deblurrer: Deblurrer | None,
    settings: FusionSettings | None,
    overwrite: bool,
    max_pixels: int,
    progress: bool,
    on_frame: Callable[[int], None] | None,
) -> VideoReport:
    from unblur.cli._common import ensure_folder
    from unblur.video import frames as folder_io

    paths = folder_io.list_frames(folder)
    outs = [output / p.with_suffix(".png").name for p in paths]
    folder_io.check_outputs(outs, overwrite=overwrite, inputs={p.resolve() for p in paths})
    ensure_folder(output)
    found = _pre_duty(folder, method, duty, start=None, end=None, fps=30.0, max_pixels=max_pixels)
    restorer = VideoRestorer(
        method, deblurrer=deblurrer, duty=None if found is None else found.duty, settings=settings
    )
    report = VideoReport(output, method=method, duty=found)
    sink = _Sink(None, output)
    sink.overwrite = overwrite
    frames = (
        (pixels, (None, out.name))
        for out, (_, pixels) in zip(
            outs, folder_io.read_frames(folder, max_pixels=max_pixels), strict=True
        )
    )
    _drive(frames, restorer, sink, report, progress=progress, total=len(paths), on_frame=on_frame)
    return report
