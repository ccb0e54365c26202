"""Video files and streams in and out with PyAV (FFmpeg's libraries), one frame at a time.

:class:`VideoReader` decodes the best video stream of any FFmpeg input (a file, a device, a
network URL) into RGB frames and hands the packets of the other streams (audio, subtitles)
to a callback untouched; :class:`VideoWriter` encodes RGB frames and muxes those packets
into the output. Neither holds more than the frame in hand, so memory stays flat whatever the
length.

What is kept:

* **timing**: every output frame keeps its input timestamp (``pts``) in the input's time
  base, so a variable frame rate stays variable; the encoder's time base is the input's;
* **size, rotation and colour**: the coded size, the display rotation (the display matrix
  side data, as phones write it), the colour matrix, range, primaries and transfer tags;
* **audio and subtitle streams**: copied packet for packet, never re-encoded, shifted by the
  same offset as the video when ``start`` cuts the beginning;
* **codec and quality**: the input's codec family (H.264 -> libx264, HEVC -> libx265, VP9,
  AV1, MPEG-4, MJPEG, FFV1) at the input's video bit rate, unless overridden (``codec``,
  ``crf``, ``bitrate``); a codec the output container cannot hold is refused before any
  work.

Outputs are written to a hidden temporary file beside the target and renamed into place when
closed, so that a failure never leaves a half-written file under the target's name; a stream
that breaks, a resolution change or an interrupt closes the output cleanly first (the frames
written so far play).

Errors reach the caller as one-line :class:`~unblur.errors.InputError` /
:class:`~unblur.errors.OutputError`; no raw FFmpeg error escapes.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from unblur.errors import InputError, OutputError

__all__ = [
    "ENCODERS",
    "Frame",
    "StreamBreak",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "choose_encoder",
    "is_url",
]

ENCODERS: dict[str, str] = {
    "h264": "libx264",
    "hevc": "libx265",
    "vp9": "libvpx-vp9",
    "vp8": "libvpx",
    "av1": "libsvtav1",
    "mpeg4": "mpeg4",
    "mjpeg": "mjpeg",
    "ffv1": "ffv1",
    "prores": "prores_ks",
    "png": "png",
    "mpeg2video": "mpeg2video",
}
"""Input codec -> the encoder that writes the same format (when this FFmpeg build has it)."""

_FALLBACK_ENCODERS = ("libx264", "libvpx-vp9", "libsvtav1", "mpeg4", "ffv1")
_CRF_DEFAULT = {"libx264": 18, "libx265": 20, "libvpx-vp9": 31, "libsvtav1": 30}
_PRESET_DEFAULT = {"libx264": "medium", "libx265": "medium"}
_MAX_PIXELS = 200_000_000
E = TypeVar("E", InputError, OutputError)


def is_url(target: str | Path) -> bool:
    """True for ``scheme://...`` targets (network streams), which are not local files."""
    return "://" in str(target)


def _ffmpeg_error() -> tuple[type[BaseException], ...]:
    import av

    return (av.FFmpegError, OSError, ValueError, RuntimeError)


def _located(cls: type[E], message: str, where: str | Path | None) -> E:
    """An error naming its file, or its URL (which a path would mangle) in the message."""
    if where is not None and is_url(where):
        return cls(f"{where}: {message}")
    return cls(message, where)


def _message(err: BaseException) -> str:
    """A short one-line text for an FFmpeg or OS error."""
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    text = " ".join(str(text).split())
    return text.rstrip(".")


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class VideoInfo:
    """What the video stream of an input is.

    Attributes:
        width, height: coded frame size in pixels (before the display rotation).
        rate: average frame rate (``None`` when the input does not say).
        time_base: the stream's time base: a timestamp ``pts`` is ``pts * time_base`` seconds.
        codec: decoder name, e.g. ``"h264"``.
        pix_fmt: pixel format, e.g. ``"yuv420p"``.
        bit_rate: video bit rate in bits per second, measured or estimated; ``None`` unknown.
        frames: frame count the container declares (``None`` unknown).
        duration: seconds the container declares (``None`` unknown).
        start: the container's start time in seconds (0 for most files).
        format: the container's short name, e.g. ``"mov,mp4,m4a,3gp,3g2,mj2"``.
        copied: ``(kind, codec)`` of every audio and subtitle stream that is copied.
    """

    width: int
    height: int
    rate: Fraction | None
    time_base: Fraction
    codec: str
    pix_fmt: str | None
    bit_rate: int | None
    frames: int | None
    duration: float | None
    start: float
    format: str
    copied: tuple[tuple[str, str], ...] = ()

    @property
    def fps(self) -> float | None:
        """Frames per second as a float (``None`` unknown)."""
        return None if not self.rate else float(self.rate)

    def expected_frames(self, start: float | None = None, end: float | None = None) -> int | None:
        """Frames to expect between ``start`` and ``end`` (for a progress bar), or ``None``."""
        length = self.duration
        if end is not None:
            length = end if length is None else min(length, end)
        if length is not None and start:
            length = max(0.0, length - start)
        if self.frames and not start and end is None:
            return self.frames
        if length is not None and self.fps:
            return max(1, round(length * self.fps))
        return None


@dataclass(frozen=True)
class Frame:
    """One decoded frame.

    Attributes:
        pixels: uint8 ``(H, W, 3)`` RGB.
        index: position in the stream, from 0 (after ``start``).
        time: seconds from the output's time zero.
        pts: timestamp in the stream's time base, shifted to the output's time zero
            (``None`` when the input has none).
        time_base: the stream's time base.
        rotation: display rotation in degrees (counter-clockwise), from the stream.
    """

    pixels: np.ndarray = field(repr=False)
    index: int
    time: float
    pts: int | None
    time_base: Fraction
    rotation: int = 0


@dataclass(frozen=True)
class StreamBreak:
    """Where and why decoding stopped before the end of the input."""

    frame: int
    time: float
    reason: str

    def describe(self) -> str:
        return f"{self.reason} at frame {self.frame} ({self.time:.2f} s)"


class VideoReader:
    """Decode the best video stream of an FFmpeg input, one RGB frame at a time.

    Args:
        source: a file path, a device name (with ``format``) or a URL.
        start: first second to decode (seeks to the key frame before it, then skips).
        end: stop before this second.
        format: FFmpeg input format (``"v4l2"``, ``"mpegts"``...); ``None`` guesses.
        options: FFmpeg options for the input (``{"rtsp_transport": "tcp"}``...).
        copy_streams: hand audio and subtitle packets to :meth:`frames`' callback.
        timeout: seconds to wait for data from a network source.
        max_pixels: refuse larger frames (a decompression-bomb guard).

    Raises:
        InputError: the input cannot be opened, is not a video, or has no video stream.
    """

    def __init__(
        self,
        source: str | Path,
        *,
        start: float | None = None,
        end: float | None = None,
        format: str | None = None,
        options: dict[str, str] | None = None,
        copy_streams: bool = True,
        timeout: float | None = None,
        max_pixels: int = _MAX_PIXELS,
    ) -> None:
        import av

        self.source = source
        self._label: str | Path = source if is_url(source) else Path(source)
        if not is_url(source) and format is None:
            path = Path(source)
            if not path.exists():
                raise _located(InputError, "no such file", path)
            if path.is_dir():
                raise InputError("is a folder, not a video (folders of frames: see --help)", path)
        try:
            self._container = av.open(
                str(source), "r", format=format, options=options or {}, timeout=timeout
            )
        except av.FFmpegError as err:
            raise InputError(f"not a video, or unreadable ({_message(err)})", self._label) from None
        except OSError as err:
            raise _located(InputError, f"cannot open ({_message(err)})", self._label) from None
        try:
            video = self._container.streams.best("video")
            if video is None:
                kinds = sorted({s.type for s in self._container.streams}) or ["none"]
                raise _located(
                    InputError, f"has no video stream (streams: {', '.join(kinds)})", self._label
                )
            ctx = video.codec_context
            if not ctx.width or not ctx.height:
                raise _located(
                    InputError, "video stream has no frame size (not a video?)", self._label
                )
            if ctx.width * ctx.height > max_pixels:
                raise _located(
                    InputError,
                    f"frames of {ctx.width}x{ctx.height} exceed the {max_pixels}-pixel limit",
                    self._label,
                )
            video.thread_type = "AUTO"
            self.video = video
            self.copied: list[Any] = []
            if copy_streams:
                self.copied = [
                    s for s in self._container.streams if s.type in ("audio", "subtitle")
                ]
            self.start, self.end = start, end
            self.offset = self._offset(start)
            self.info = self._info()
        except BaseException:
            self._container.close()
            raise
        self.broken: StreamBreak | None = None
        self.frames_read = 0
        self.colour: dict[str, int] = {}
        self.damaged: list[tuple[int, float]] = []  # frames decoded with errors concealed

    # ------------------------------------------------------------------ info

    def _offset(self, start: float | None) -> float:
        """The input second that becomes the output's time zero."""
        if start is not None:
            return float(start)
        if self._container.start_time is not None:
            return self._container.start_time / 1_000_000
        return 0.0

    def _info(self) -> VideoInfo:
        v = self.video
        ctx = v.codec_context
        duration = None
        if v.duration is not None and v.time_base:
            duration = float(v.duration * v.time_base)
        elif self._container.duration:
            duration = self._container.duration / 1_000_000
        bit_rate = ctx.bit_rate or None
        if not bit_rate and self._container.bit_rate:
            others = sum(s.codec_context.bit_rate or 0 for s in self.copied)
            bit_rate = max(0, self._container.bit_rate - others) or None
        rate = v.average_rate or v.guessed_rate or None
        return VideoInfo(
            width=ctx.width,
            height=ctx.height,
            rate=Fraction(rate) if rate else None,
            time_base=Fraction(v.time_base) if v.time_base else Fraction(1, 90000),
            codec=ctx.name,
            pix_fmt=ctx.pix_fmt,
            bit_rate=bit_rate,
            frames=v.frames or None,
            duration=duration,
            start=self.offset,
            format=self._container.format.name,
            copied=tuple((s.type, s.codec_context.name) for s in self.copied),
        )

    # ------------------------------------------------------------------ frames

    def frames(self, on_packet: Callable[[Any], None] | None = None) -> Iterator[Frame]:
        """Decode frames in order; other streams' packets go to ``on_packet`` as they come.

        Packets handed over have their timestamps shifted to the output's time zero (the
        same shift as the frames) and those before ``start`` or from ``end`` on are left
        out. Decoding stops early, without raising, when the stream breaks (a corrupt or
        truncated input) or the frame size changes; :attr:`broken` then says where and why.
        Frames the decoder could only partly decode (it conceals the damage) are kept and
        listed in :attr:`damaged`.
        """
        import av

        tb = self.info.time_base
        if self.start:
            with contextlib.suppress(av.FFmpegError):
                self._container.seek(int(self.start / tb), stream=self.video, backward=True)
        streams = [self.video, *self.copied]
        last_time = -math.inf
        last_pts: int | None = None
        index = 0
        try:
            for packet in self._container.demux(streams):
                if packet.stream.index != self.video.index:
                    if on_packet is not None:
                        self._pass_packet(packet, on_packet)
                    continue
                for frame in packet.decode():
                    time = self._time(frame, index)
                    if self.start is not None and time < self.start - 1e-6:
                        continue
                    if self.end is not None and time >= self.end - 1e-6:
                        return
                    if (frame.width, frame.height) != (self.info.width, self.info.height):
                        self.broken = StreamBreak(
                            index,
                            time - self.offset,
                            f"frame size changes from {self.info.width}x{self.info.height} "
                            f"to {frame.width}x{frame.height}",
                        )
                        return
                    pts = None
                    if frame.pts is not None:
                        pts = frame.pts - round(self.offset / tb)
                        if last_pts is not None and pts <= last_pts:
                            pts = last_pts + 1  # encoders need strictly increasing stamps
                        last_pts = pts
                    if frame.is_corrupt:
                        self.damaged.append((index, time - self.offset))
                    if index == 0:
                        self.colour = frame_colour(frame)
                    pixels = frame.to_ndarray(
                        format="rgb24", src_color_range=frame.color_range or None
                    )
                    last_time = time
                    yield Frame(
                        pixels=pixels,
                        index=index,
                        time=time - self.offset,
                        pts=pts,
                        time_base=tb,
                        rotation=int(frame.rotation or 0),
                    )
                    index += 1
                    self.frames_read = index
        except (av.FFmpegError, MemoryError) as err:
            at = max(0.0, last_time - self.offset) if index else 0.0
            self.broken = StreamBreak(index, at, f"the stream breaks ({_message(err)})")
            return
        self._check_complete(index, last_time)

    def _time(self, frame: Any, index: int) -> float:
        if frame.time is not None:
            return float(frame.time)
        fps = self.info.fps or 30.0
        return self.offset + index / fps

    def _check_complete(self, count: int, last_time: float) -> None:
        """Flag an input that ends well before the duration its container declares."""
        declared = self.info.duration
        if declared is None or self.end is not None or count == 0:
            return
        step = 1 / self.info.fps if self.info.fps else 0.04
        declared_end = self.info.start + declared
        ended = last_time + step
        if ended < declared_end - max(0.5, 3 * step):
            self.broken = StreamBreak(
                count,
                ended - self.offset,
                f"the stream ends early, {ended - self.offset:.2f} s into the "
                f"{declared:.2f} s it declares (truncated file?)",
            )

    def _pass_packet(self, packet: Any, on_packet: Callable[[Any], None]) -> None:
        if packet.size == 0 or (packet.dts is None and packet.pts is None):
            return  # the flush packet at the end of a stream
        tb = packet.time_base
        stamp = packet.pts if packet.pts is not None else packet.dts
        seconds = float(stamp * tb)
        if self.start is not None and seconds < self.start - 1e-6:
            return
        if self.end is not None and seconds >= self.end:
            return
        shift = round(self.offset / tb)
        if packet.pts is not None:
            packet.pts -= shift
        if packet.dts is not None:
            packet.dts -= shift
        on_packet(packet)

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Close the input (safe to call twice)."""
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- writing


def choose_encoder(
    input_codec: str | None, supported: set[str] | frozenset[str], wanted: str | None = None
) -> str:
    """The encoder for the output: ``wanted``, else the input's family, else a fallback.

    Args:
        input_codec: the input's decoder name (``"h264"``...); ``None`` for frames.
        supported: codec names the output container can hold.
        wanted: an encoder the user asked for.

    The container's list of codecs is a preference, not a verdict: several formats
    (MPEG-TS, RTSP) list only their defaults but take more; a codec a container truly cannot
    hold is refused when the output's header is written (:class:`VideoWriter`).

    Raises:
        OutputError: ``wanted`` is not an encoder of this FFmpeg build, or none is.
    """
    import av

    available = av.codecs_available

    def encodable(name: str) -> bool:
        if name not in available:
            return False
        try:
            return av.Codec(name, "w").type == "video"
        except (av.FFmpegError, ValueError):
            return False

    if wanted is not None:
        if not encodable(wanted):
            raise _located(OutputError, f"{wanted!r} is not a video encoder of this FFmpeg build")
        return wanted  # whether the container takes it shows when its header is written
    candidates = []
    if input_codec and input_codec in ENCODERS:
        candidates.append(ENCODERS[input_codec])
    candidates.extend(_FALLBACK_ENCODERS)
    usable = [name for name in candidates if encodable(name)]
    for name in usable:
        if _holds(supported, name):
            return name
    if usable:  # the container lists no codecs it takes (MPEG-TS, network formats): try
        return usable[0]
    raise OutputError("this FFmpeg build has none of the usual video encoders")


def _holds(supported: set[str] | frozenset[str], encoder: str) -> bool:
    import av

    if encoder in supported:
        return True
    try:
        return av.Codec(encoder, "w").canonical_name in supported
    except (av.FFmpegError, ValueError):
        return False


def _pix_fmt(encoder: str, wanted: str | None) -> str:
    import av

    formats = [f.name for f in (av.Codec(encoder, "w").video_formats or [])]
    if not formats:
        return wanted or "yuv420p"
    if wanted in formats:
        return wanted
    for name in ("yuv420p", "yuvj420p", "yuv444p", "rgb24"):
        if name in formats:
            return name
    return formats[0]


@dataclass
class EncoderSettings:
    """How to encode the video stream; ``None`` fields follow the input.

    Attributes:
        codec: encoder name (``libx264``...); ``None``: the input's family.
        crf: constant-quality value (lower is better); wins over ``bitrate``.
        bitrate: bits per second; ``None`` with no ``crf``: the input's video bit rate,
            else the encoder's default quality.
        preset: encoder speed preset (libx264/libx265), e.g. ``veryfast``.
        pix_fmt: pixel format; ``None``: the input's where the encoder takes it.
    """

    codec: str | None = None
    crf: int | None = None
    bitrate: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None


class VideoWriter:
    """Encode RGB frames and mux copied packets into a video file or stream.

    Args:
        target: output file, or a URL (written directly, no temporary file).
        width, height: frame size.
        time_base: time base of the frames' ``pts`` (the input's).
        rate: nominal frame rate (``None``: 30).
        settings: encoder choice and quality.
        input_codec, input_pix_fmt, input_bit_rate: the input's, to stay close to it.
        rotation: display rotation in degrees to write.
        colour: ``colorspace``, ``color_range``, ``color_primaries``, ``color_trc`` of the
            input frames, written to the output and used for the RGB -> YUV conversion.
        templates: input streams whose packets will be copied (audio, subtitles).
        format: FFmpeg output format; ``None`` guesses from the target's extension.
        overwrite: replace an existing target.

    Raises:
        OutputError: the target exists (without ``overwrite``), its folder is not writable,
            the container cannot hold the video codec or a copied stream's codec.
    """

    def __init__(
        self,
        target: str | Path,
        *,
        width: int,
        height: int,
        time_base: Fraction,
        rate: Fraction | None = None,
        settings: EncoderSettings | None = None,
        input_codec: str | None = None,
        input_pix_fmt: str | None = None,
        input_bit_rate: int | None = None,
        rotation: int = 0,
        colour: dict[str, int] | None = None,
        templates: Sequence[Any] = (),
        format: str | None = None,
        overwrite: bool = False,
    ) -> None:
        import av

        settings = settings or EncoderSettings()
        self.target = target
        self.url = is_url(target)
        self._label: str | Path = target if self.url else Path(target)
        self._where: Path | None = None if self.url else Path(target)  # OutputError's path
        self._temp: Path | None = None
        open_as: str = str(target)
        if not self.url:
            path = Path(target)
            if path.exists() and not overwrite:
                raise OutputError("already exists; pass --overwrite to replace", path)
            if path.is_dir():
                raise OutputError("is a folder; name an output file", path)
            if not path.parent.exists():
                raise OutputError("folder does not exist", path.parent)
            if not os.access(path.parent, os.W_OK | os.X_OK):
                raise OutputError("folder is not writable", path.parent)
            self._temp = path.with_name(f".{path.stem}.unblur-{secrets.token_hex(4)}{path.suffix}")
            open_as = str(self._temp)
        try:
            self._container = av.open(open_as, "w", format=format)
        except av.FFmpegError as err:
            self._drop_temp()
            hint = " (name the format with --format)" if self.url else " (unknown extension?)"
            raise OutputError(
                f"cannot write this format ({_message(err)}){hint}", self._label
            ) from None
        except (OSError, ValueError) as err:
            self._drop_temp()
            raise _located(
                OutputError, f"cannot open for writing ({_message(err)})", self._label
            ) from None
        try:
            self._setup(
                width, height, time_base, rate, settings, input_codec, input_pix_fmt,
                input_bit_rate, rotation, colour or {}, templates,
            )  # fmt: skip
        except BaseException:
            self._container.close()
            self._drop_temp()
            raise
        self.frames_written = 0
        self._last_pts: int | None = None
        self._closed = False

    def _setup(
        self,
        width: int,
        height: int,
        time_base: Fraction,
        rate: Fraction | None,
        settings: EncoderSettings,
        input_codec: str | None,
        input_pix_fmt: str | None,
        input_bit_rate: int | None,
        rotation: int,
        colour: dict[str, int],
        templates: Sequence[Any],
    ) -> None:
        import av

        container = self._container
        supported = container.supported_codecs
        fmt = container.format.name
        try:
            encoder = choose_encoder(input_codec, supported, settings.codec)
        except OutputError as err:
            raise _located(OutputError, f"{err.message} (a {fmt} file)", self._label) from None
        rate = Fraction(rate) if rate else Fraction(30)
        try:
            stream = container.add_stream(encoder, rate=rate)
        except ValueError:  # PyAV asks the muxer (avformat_query_codec): it refuses
            if settings.codec is not None:
                raise _located(
                    OutputError,
                    f"a {fmt} file cannot hold {encoder} video; choose another --codec or "
                    "container",
                    self._label,
                ) from None
            stream = None
            for other in _FALLBACK_ENCODERS:
                if other != encoder and other in av.codecs_available:
                    try:
                        stream = container.add_stream(other, rate=rate)
                    except ValueError:
                        continue
                    encoder = other
                    break
            if stream is None:
                raise _located(
                    OutputError, f"a {fmt} file takes none of our video encoders", self._label
                ) from None
        self.encoder = encoder
        stream.width, stream.height = width, height
        stream.pix_fmt = _pix_fmt(encoder, settings.pix_fmt or input_pix_fmt)
        stream.time_base = time_base
        ctx = stream.codec_context
        ctx.time_base = time_base
        for key in ("colorspace", "color_range", "color_primaries", "color_trc"):
            if colour.get(key):
                with contextlib.suppress(AttributeError, ValueError, TypeError):
                    setattr(ctx, key, colour[key])
        self._colour = colour
        options: dict[str, str] = {}
        if settings.crf is not None:
            options["crf"] = str(settings.crf)
            if encoder == "libvpx-vp9":
                options["b"] = "0"
            if encoder in ("mpeg4", "mjpeg", "mpeg2video"):
                options.pop("crf")
                options["qscale"] = str(max(1, min(31, settings.crf)))
        elif settings.bitrate or input_bit_rate:
            ctx.bit_rate = int(settings.bitrate or input_bit_rate or 0)
        elif encoder in _CRF_DEFAULT:
            options["crf"] = str(_CRF_DEFAULT[encoder])
            if encoder == "libvpx-vp9":
                options["b"] = "0"
        preset = settings.preset or _PRESET_DEFAULT.get(encoder)
        if preset and encoder in ("libx264", "libx265"):
            options["preset"] = preset
        if encoder == "libx265":
            options["x265-params"] = "log-level=none"
        stream.options = options
        if rotation:
            stream.set_display_rotation(rotation)
        self.video = stream
        self._time_base = time_base
        self.stream_map: dict[int, Any] = {}
        for template in templates:
            try:
                out = container.add_stream_from_template(template)
            except ValueError:
                raise _located(
                    OutputError,
                    f"a {fmt} file cannot hold the input's {template.type} stream "
                    f"({template.codec_context.name}); use .mkv, or leave it out with "
                    "--no-audio / --no-subtitles",
                    self._label,
                ) from None
            self.stream_map[template.index] = out
        try:
            container.start_encoding()
        except av.FFmpegError as err:
            detail = _message(err)
            strangers = [t for t in templates if not _holds(supported, t.codec_context.name)]
            if not _holds(supported, encoder) or not strangers:
                raise _located(
                    OutputError,
                    f"a {fmt} file cannot hold {encoder} video ({detail}); choose another "
                    "--codec or container",
                    self._where or self._label,
                ) from None
            first = strangers[0]
            raise OutputError(
                f"a {fmt} file cannot hold the input's {first.type} stream "
                f"({first.codec_context.name}); use .mkv, or leave it out with --no-audio / "
                f"--no-subtitles ({detail})",
                self._where,
            ) from None

    # ------------------------------------------------------------------ writing

    def write(self, pixels: np.ndarray, pts: int | None) -> None:
        """Encode one RGB frame (uint8, or float in [0, 1]) at ``pts`` (the input's time base)."""
        import av

        if pixels.dtype != np.uint8:
            pixels = np.rint(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
        frame = frame.reformat(
            format=self.video.pix_fmt,
            dst_colorspace=self._colour.get("colorspace") or None,
            dst_color_range=self._colour.get("color_range") or None,
        )
        if pts is None:
            pts = 0 if self._last_pts is None else self._last_pts + 1
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1
        self._last_pts = pts
        frame.pts = pts
        frame.time_base = self._time_base  # the muxer may have changed the stream's
        try:
            for packet in self.video.encode(frame):
                self._container.mux(packet)
        except av.FFmpegError as err:
            raise OutputError(f"cannot write ({_message(err)})", self._label) from None
        except OSError as err:
            raise _located(OutputError, f"cannot write ({_message(err)})", self._label) from None
        self.frames_written += 1

    def mux(self, packet: Any) -> None:
        """Copy a packet of an input stream given in ``templates`` (others are ignored)."""
        import av

        out = self.stream_map.get(packet.stream.index)
        if out is None:
            return
        packet.stream = out
        try:
            self._container.mux(packet)
        except av.FFmpegError:
            pass  # one bad audio packet must not stop the video; the muxer drops it

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Flush the encoder, finish the container and move it to the target."""
        import av

        if self._closed:
            return
        self._closed = True
        try:
            for packet in self.video.encode():
                self._container.mux(packet)
            self._container.close()
        except (av.FFmpegError, OSError) as err:
            with contextlib.suppress(Exception):
                self._container.close()
            self._drop_temp()
            raise _located(
                OutputError, f"cannot finish writing ({_message(err)})", self._label
            ) from None
        if self._temp is not None:
            try:
                os.replace(self._temp, Path(self.target))
            except OSError as err:
                self._drop_temp()
                raise _located(
                    OutputError, f"cannot move into place ({_message(err)})", self._label
                ) from None

    def abort(self) -> None:
        """Close without keeping anything (the target is left as it was)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self._container.close()
        self._drop_temp()

    def _drop_temp(self) -> None:
        if self._temp is not None:
            with contextlib.suppress(OSError):
                self._temp.unlink()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def frame_colour(frame: Any) -> dict[str, int]:
    """The colour tags of a decoded PyAV frame, for :class:`VideoWriter`'s ``colour``."""
    out = {}
    for key in ("colorspace", "color_range", "color_primaries", "color_trc"):
        value = getattr(frame, key, None)
        if value is not None:
            out[key] = int(value)
    return out
