"""Generated video clips for the video tests: moving textured scenes, with audio, subtitles,
rotation or variable frame timing, written with PyAV. No files needed."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tests.scenes import textured_scene


def scene_frames(
    count: int, width: int = 64, height: int = 48, *, speed: float = 1.5, seed: int = 0
) -> list[np.ndarray]:
    """uint8 frames of a textured scene panning right by ``speed`` px per frame."""
    margin = int(abs(speed) * count) + 8
    world = textured_scene(height, width + margin, 3, seed=seed)
    frames = []
    for k in range(count):
        x = speed * k
        x0 = int(np.floor(x))
        frac = x - x0
        a = world[:, x0 : x0 + width]
        b = world[:, x0 + 1 : x0 + 1 + width]
        frames.append(np.rint(((1 - frac) * a + frac * b) * 255).astype(np.uint8))
    return frames


SRT = """1
00:00:00,000 --> 00:00:00,400
hello

2
00:00:00,400 --> 00:00:00,900
world
"""


def write_clip(
    path: Path,
    frames: list[np.ndarray],
    *,
    fps: int = 25,
    codec: str = "libx264",
    audio: bool = True,
    subtitles: bool = False,
    rotation: int = 0,
    pts_ms: list[int] | None = None,
    container_format: str | None = None,
) -> Path:
    """Write ``frames`` as a video; ``pts_ms`` gives each frame's time in milliseconds
    (variable timing), else they are ``1/fps`` apart. Audio: a 440 Hz tone, AAC (MP2 in
    MPEG-TS), as long as the video. Subtitles: two SRT cues (Matroska only)."""
    height, width = frames[0].shape[:2]
    tb = Fraction(1, 1000) if pts_ms is not None else Fraction(1, fps)
    stamps = pts_ms if pts_ms is not None else list(range(len(frames)))
    sub_in = None
    if subtitles:
        srt = path.with_suffix(".srt")
        srt.write_text(SRT)
        sub_in = av.open(str(srt))
    with av.open(str(path), "w", format=container_format) as out:
        video = out.add_stream(codec, rate=fps)
        video.width, video.height = width, height
        video.pix_fmt = "yuv420p"
        video.time_base = tb
        video.codec_context.time_base = tb
        if codec == "libx264":
            video.options = {"crf": "18", "preset": "ultrafast"}
        if rotation:
            video.set_display_rotation(rotation)
        aud = None
        if audio:
            aud = out.add_stream("mp2" if path.suffix == ".ts" else "aac", rate=44100)
            aud.layout = "mono"
        sub = out.add_stream_from_template(sub_in.streams.subtitles[0]) if sub_in else None
        out.start_encoding()  # opens the encoders: the audio frame size is known
        chunks = _tone_chunks(aud, float(stamps[-1] * tb) + 1 / fps) if aud is not None else []
        for pixels, stamp in zip(frames, stamps, strict=True):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = stamp
            frame.time_base = tb
            for packet in video.encode(frame):
                out.mux(packet)
            # audio interleaved with the video, as cameras and muxers write it
            while chunks and chunks[0].pts / 44100 <= float(stamp * tb) + 1 / fps:
                for packet in aud.encode(chunks.pop(0)):
                    out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if aud is not None:
            for chunk in chunks:
                for packet in aud.encode(chunk):
                    out.mux(packet)
            for packet in aud.encode():
                out.mux(packet)
        if sub_in is not None and sub is not None:
            for packet in sub_in.demux(sub_in.streams.subtitles[0]):
                if packet.dts is None:
                    continue
                packet.stream = sub
                out.mux(packet)
    if sub_in is not None:
        sub_in.close()
    return path


def _tone_chunks(aud: av.audio.stream.AudioStream, seconds: float) -> list[av.AudioFrame]:
    """A 440 Hz tone of ``seconds`` as frames of the encoder's size."""
    samples = int(seconds * 44100)
    n = aud.codec_context.frame_size or 1152
    t = np.arange(samples) / 44100
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    fmt = aud.codec_context.format.name
    chunks = []
    for start in range(0, samples - n + 1, n):
        chunk = tone[start : start + n][None, :]
        if fmt == "s16":
            chunk = (chunk * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(chunk, format=fmt, layout="mono")
        frame.sample_rate = 44100
        frame.pts = start
        chunks.append(frame)
    return chunks


def probe(path: Path) -> dict:
    """What a test checks of a video: frames, times, size, rotation, other streams."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        times, rotation, size = [], None, None
        for f in c.decode(v):
            times.append(float(f.time))
            rotation = f.rotation
            size = (f.width, f.height)
        streams = [(s.type, s.codec_context.name) for s in c.streams]
    with av.open(str(path)) as c:
        audio_packets = 0
        sub_packets = 0
        for packet in c.demux():
            if packet.size == 0:
                continue
            if packet.stream.type == "audio":
                audio_packets += 1
            elif packet.stream.type == "subtitle":
                sub_packets += 1
    return {
        "frames": len(times),
        "times": times,
        "rotation": rotation,
        "size": size,
        "streams": streams,
        "audio_packets": audio_packets,
        "subtitle_packets": sub_packets,
    }


def read_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
