"""``unblur video`` and ``unblur live``: what is kept, folders, bad input, live on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from tests.video_clips import probe, read_frames, scene_frames, write_clip
from unblur.cli import main
from unblur.cli import video as video_cli
from unblur.io import write_image
from unblur.metrics import psnr
from unblur.video import temporal


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["video", *args, "--threads", "1"])
    return code, capsys.readouterr().err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("unblur: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 frames at 25 fps, 64x48, AAC audio, SRT subtitles, rotated 90 degrees."""
    folder = tmp_path_factory.mktemp("clip")
    return write_clip(folder / "in.mkv", scene_frames(12), subtitles=True, rotation=90)


def test_parser_mirrors_agree() -> None:
    assert video_cli.METHODS == temporal.METHODS
    assert video_cli.DEFAULT_RADIUS == temporal.FusionSettings().radius
    assert video_cli.DEFAULT_WORK_WIDTH == temporal.FusionSettings().work_width
    assert video_cli.parse_time("1:02.5") == 62.5
    assert video_cli.bitrate_value("2.5M") == 2_500_000


def test_video_keeps_frames_timing_rotation_audio_subtitles(
    tmp_path: Path, clip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.mkv"
    code, err = run_cli(capsys, str(clip), "-o", str(out), "--method", "none")
    assert code == 0, err
    assert f"wrote {out}: 12 frames" in err
    before, after = probe(clip), probe(out)
    assert after["frames"] == 12
    assert np.allclose(after["times"], before["times"], atol=1e-3)
    assert after["rotation"] == 90 and after["size"] == (64, 48)
    assert [s for s, _ in after["streams"]] == ["video", "audio", "subtitle"]
    assert after["streams"][1:] == before["streams"][1:]
    assert after["audio_packets"] == before["audio_packets"]
    assert after["subtitle_packets"] == before["subtitle_packets"] == 2
    # a plain re-encode at the input's quality: close to the input
    a, b = read_frames(clip), read_frames(out)
    scores = [psnr(x / 255.0, y / 255.0) for x, y in zip(a, b, strict=True)]
    assert min(scores) > 30 and np.mean(scores) > 33  # chroma-heavy scene: ffv1 gives 39.5
    assert not list(tmp_path.glob(".*unblur-*"))  # no temporary file left


def test_variable_frame_timing_and_trim(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stamps = [0, 40, 80, 150, 200, 240, 330, 370, 400, 480, 520, 560]
    src = write_clip(tmp_path / "vfr.mp4", scene_frames(12), pts_ms=stamps)
    out = tmp_path / "vfr_out.mp4"
    code, err = run_cli(capsys, str(src), "-o", str(out), "--method", "fusion", "--duty", "0.5")
    assert code == 0, err
    assert np.allclose(probe(out)["times"], np.array(stamps) / 1000, atol=1e-3)
    trimmed = tmp_path / "trim.mkv"
    code, err = run_cli(
        capsys, str(src), "-o", str(trimmed), "--method", "none", "--start", "0.2", "--end", "0.45"
    )
    assert code == 0, err
    info = probe(trimmed)
    assert np.allclose(info["times"], np.array([200, 240, 330, 370, 400]) / 1000 - 0.2, atol=1e-3)
    assert info["audio_packets"] > 0


def test_encoder_follows_input_and_can_be_overridden(
    tmp_path: Path, clip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ffv1.mkv"
    code, err = run_cli(capsys, str(clip), "-o", str(out), "--method", "none", "--codec", "ffv1")
    assert code == 0, err
    assert probe(out)["streams"][0] == ("video", "ffv1")
    out2 = tmp_path / "crf.mp4"
    code, err = run_cli(capsys, str(clip), "-o", str(out2), "--method", "none", "--no-subtitles",
                        "--crf", "30")  # fmt: skip
    assert code == 0, err
    assert probe(out2)["streams"][0] == ("video", "h264")
    assert out2.stat().st_size < (tmp_path / "ffv1.mkv").stat().st_size


def test_folders_of_frames_in_and_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frames = scene_frames(6, 48, 32)
    gopro = tmp_path / "gopro"
    for seq in ("SEQ_A", "SEQ_B"):
        (gopro / seq / "blur").mkdir(parents=True)
        (gopro / seq / "sharp").mkdir()
        for i, f in enumerate(frames):
            write_image(gopro / seq / "blur" / f"{i + 47:06d}.png", f)
            write_image(gopro / seq / "sharp" / f"{i + 47:06d}.png", f)
    out = tmp_path / "restored"
    code, err = run_cli(capsys, str(gopro), "-o", str(out), "--method", "fusion")
    assert code == 0, err
    for seq in ("SEQ_A", "SEQ_B"):
        names = sorted(p.name for p in (out / seq / "blur").iterdir())
        assert names == [f"{i + 47:06d}.png" for i in range(6)]
    assert not (out / "SEQ_A" / "sharp").exists()
    # one sequence into a video at --fps, and a video into frames
    movie = tmp_path / "seq.mp4"
    code, err = run_cli(capsys, str(gopro / "SEQ_A" / "blur"), "-o", str(movie), "--method",
                        "none", "--fps", "10")  # fmt: skip
    assert code == 0, err
    assert np.allclose(probe(movie)["times"], np.arange(6) / 10, atol=1e-3)
    frames_out = tmp_path / "frames_out"
    code, err = run_cli(capsys, str(movie), "-o", str(frames_out), "--method", "none")
    assert code == 0, err
    assert sorted(p.name for p in frames_out.iterdir()) == [f"{i:06d}.png" for i in range(6)]
    code, err = run_cli(capsys, str(gopro), "-o", str(tmp_path / "x.mp4"))
    assert code == 1 and "2 sequences" in one_error_line(err)
    code, err = run_cli(capsys, str(gopro), "-o", str(tmp_path / "cut"), "--start", "1")
    assert code == 1 and "restored whole" in one_error_line(err)


# --------------------------------------------------------------------------- bad input


def test_not_a_video_and_no_video_stream(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n" * 50)
    code, err = run_cli(capsys, str(text), "-o", str(tmp_path / "o.mp4"))
    assert code == 1 and "not a video" in one_error_line(err)
    audio_only = tmp_path / "tone.m4a"
    with av.open(str(audio_only), "w") as c:
        s = c.add_stream("aac", rate=44100)
        for i in range(5):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                           layout="mono")  # fmt: skip
            f.sample_rate, f.pts = 44100, i * 1024
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    code, err = run_cli(capsys, str(audio_only), "-o", str(tmp_path / "o.mp4"))
    assert code == 1 and "no video stream" in one_error_line(err)
    assert not (tmp_path / "o.mp4").exists()


def test_truncated_stream_keeps_a_playable_partial_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_clip(tmp_path / "full.mkv", scene_frames(40, speed=0.5), audio=False)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size * 6 // 10])
    out = tmp_path / "partial.mkv"
    code, err = run_cli(capsys, str(cut), "-o", str(out), "--method", "none")
    line = one_error_line(err)
    assert code == 1 and "ends early" in line and "written to" in line
    frames = probe(out)["frames"]
    assert 5 < frames < 40 and f"the {frames} frames" in line


def test_corrupt_stream_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Bytes overwritten mid-file: the decoder either stops (MP4) or conceals the damage
    (Matroska); either way every frame that decodes is written and the exit says so."""
    for ext in ("mp4", "mkv"):
        src = write_clip(tmp_path / f"ok.{ext}", scene_frames(40, speed=0.5), audio=False)
        data = bytearray(src.read_bytes())
        start = len(data) * 45 // 100
        data[start : start + 600] = (
            np.random.default_rng(0).integers(0, 256, 600, np.uint8).tobytes()
        )
        bad = tmp_path / f"bad.{ext}"
        bad.write_bytes(bytes(data))
        out = tmp_path / f"from_{ext}.mkv"
        code, err = run_cli(capsys, str(bad), "-o", str(out), "--method", "none")
        line = one_error_line(err)
        assert code == 1 and ("breaks" in line or "damaged" in line), line
        assert f"the {probe(out)['frames']} frames" in line or "all 40 frames" in line


def test_resolution_change_stops_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write_clip(tmp_path / "a.ts", scene_frames(10), audio=False)
    b = write_clip(tmp_path / "b.ts", scene_frames(10, 80, 64), audio=False)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    out = tmp_path / "j.mkv"
    code, err = run_cli(capsys, str(joined), "-o", str(out), "--method", "none")
    line = one_error_line(err)
    assert code == 1 and "frame size changes from 64x48 to 80x64 at frame 10" in line
    assert probe(out)["frames"] == 10


def test_output_refusals_lose_nothing(
    tmp_path: Path, clip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = clip.read_bytes()
    code, err = run_cli(capsys, str(clip), "-o", str(clip), "--overwrite")
    assert code == 1 and "output is the input" in one_error_line(err)
    assert clip.read_bytes() == original
    webm = tmp_path / "x.webm"
    code, err = run_cli(capsys, str(clip), "-o", str(webm), "--codec", "libx264")
    assert code == 1 and "cannot hold libx264" in one_error_line(err)
    code, err = run_cli(capsys, str(clip), "-o", str(webm), "--method", "none")
    assert code == 1 and "cannot hold the input's audio stream (aac)" in one_error_line(err)
    assert not webm.exists() and not list(tmp_path.glob(".*unblur-*"))
    existing = tmp_path / "there.mkv"
    existing.write_bytes(b"keep me")
    code, err = run_cli(capsys, str(clip), "-o", str(existing))
    assert code == 1 and "already exists" in one_error_line(err)
    assert existing.read_bytes() == b"keep me"
    code, err = run_cli(capsys, str(clip), "-o", str(tmp_path / "frame.png"))
    assert code == 1 and "one image cannot hold a video" in one_error_line(err)


def test_ctrl_c_closes_the_output_cleanly(tmp_path: Path) -> None:
    src = write_clip(tmp_path / "long.mkv", scene_frames(400, 96, 64, speed=0.2), audio=True)
    out = tmp_path / "stopped.mkv"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "unblur", "video", str(src), "-o", str(out), "--method",
         "fusion", "--duty", "0.5", "--radius", "8", "--threads", "1"],
        stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while not list(tmp_path.glob(".stopped.unblur-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.4)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "unblur: interrupted; the" in err and "Traceback" not in err
    info = probe(out)
    assert 0 < info["frames"] < 400
    assert info["audio_packets"] > 0


# --------------------------------------------------------------------------- live


def test_live_file_at_real_rate_and_dropping(tmp_path: Path) -> None:
    from unblur.video.live import run_live
    from unblur.video.temporal import VideoRestorer

    src = write_clip(tmp_path / "live.mkv", scene_frames(20), fps=20, audio=False)
    report = run_live(src, tmp_path / "o.mkv", restorer=VideoRestorer("none"))
    assert report.frames_in == 20 and report.frames_out + report.dropped == 20
    assert report.seconds >= 0.85  # 20 frames at 20 fps play for a second
    assert report.fps <= 22
    # a restoration slower than the input drops frames, and says how many
    slow = run_live(src, tmp_path / "slow.mkv", restorer=VideoRestorer("none"),
                    process=lambda _: time.sleep(0.1))  # fmt: skip
    assert slow.dropped >= 8 and slow.frames_out == 20 - slow.dropped
    assert probe(tmp_path / "slow.mkv")["frames"] == slow.frames_out
    assert "dropped" in slow.describe()


def test_live_on_a_loopback_stream(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A generated MPEG-TS served over TCP on 127.0.0.1, consumed by ``unblur live``."""
    payload = write_clip(tmp_path / "feed.ts", scene_frames(15), fps=25, audio=False).read_bytes()
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(15)
    port = server.getsockname()[1]

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            for i in range(0, len(payload), 4096):
                conn.sendall(payload[i : i + 4096])
                time.sleep(0.005)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    out = tmp_path / "from_stream.mkv"
    try:
        code = main(["live", f"tcp://127.0.0.1:{port}", "-o", str(out), "--timeout", "10",
                     "--threads", "1", "--duty", "0.5"])  # fmt: skip
    finally:
        server.close()
        thread.join(5)
    err = capsys.readouterr().err
    assert code == 0, err
    assert "15 frames in" in err and "fps achieved" in err
    info = probe(out)
    assert info["frames"] + int(err.split(" restored, ")[1].split()[0]) == 15


def test_video_to_a_loopback_udp_stream(clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A stream URL as the output: MPEG-TS over UDP to 127.0.0.1, received here."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    port = receiver.getsockname()[1]
    try:
        url = f"udp://127.0.0.1:{port}?pkt_size=1316"
        options = ["--output-format", "mpegts", "--method", "none", "--no-subtitles"]
        code, err = run_cli(capsys, str(clip), "-o", url, *options)
        assert code == 0, err
        assert f"wrote udp://127.0.0.1:{port}" in err
        data = receiver.recv(65536)
        assert data[0] == 0x47  # an MPEG-TS packet's sync byte
    finally:
        receiver.close()
