"""``unblur serve``'s web API through FastAPI's test client: jobs, files, A/B votes, refusals."""

from __future__ import annotations

import io as pyio
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from scenes import textured_scene

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install -e '.[web]')")
from fastapi.testclient import TestClient

from unblur import io
from unblur.cli import main
from unblur.web.app import ServerSettings, create_app
from unblur.web.jobs import Job, JobQueue, QueueFull
from unblur.web.votes import VoteStore, wilson_interval


def png_bytes(size: int = 48, seed: int = 0) -> bytes:
    path_free = pyio.BytesIO()
    from PIL import Image

    pixels = (np.clip(textured_scene(size, size, 3, seed=seed), 0, 1) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(path_free, format="PNG")
    return path_free.getvalue()


def bomb_png(side: int) -> bytes:
    """A valid grey PNG of side x side zeros: tiny on disk, huge when decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = side.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    raw = zlib.compress(b"\x00" * ((side + 1) * side), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = ServerSettings(
        data_dir=tmp_path / "data",
        max_upload_bytes=200_000,
        max_pixels=1_000_000,
        kernel_size=15,
        ab_methods=("network", "blind"),
    )
    app = create_app(settings)
    with TestClient(app) as c:
        yield c
    app.state.jobs.close()


def wait(client: TestClient, job_id: str, seconds: float = 30.0) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish in {seconds} s")


def test_page_and_options(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "Blind A/B test" in page.text
    assert client.get("/static/app.js").status_code == 200
    options = client.get("/api/options").json()
    assert options["models"][0] == "auto" and "nafnet-fast" in options["models"]
    assert options["methods"] == ["auto", "network", "blind", "motion"]


def finished(client: TestClient, query: str, upload: bytes) -> dict:
    """Post a restore job and wait for it to end well."""
    answer = client.post(f"/api/jobs?{query}", content=upload)
    assert answer.status_code == 202, answer.text
    job = wait(client, answer.json()["id"])
    assert job["state"] == "done", job
    return job


def test_restore_job(client: TestClient, tmp_path: Path) -> None:
    job = finished(client, "method=network&model=auto&name=my%20shot.png", png_bytes())
    assert job["info"]["ran"] == "network" and job["info"]["model"] == "nafnet-fast"
    assert job["info"]["share"] is None
    assert {"before", "after", "result", "motion"} <= set(job["files"])
    result = client.get(f"/api/jobs/{job['id']}/files/result")
    assert result.status_code == 200
    assert "my%20shot_unblurred.png" in result.headers["content-disposition"] or (
        "my shot_unblurred.png" in result.headers["content-disposition"]
    )
    saved = tmp_path / "result.png"
    saved.write_bytes(result.content)
    restored = io.read_image(saved).pixels
    assert restored.shape == (48, 48, 3)
    assert client.get(f"/api/jobs/{job['id']}/files/after").headers["content-type"] == "image/jpeg"
    # everything it wrote is in its job folder, under the server's names
    folder = tmp_path / "data" / "jobs" / job["id"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["after.jpg", "before.jpg", "motion.jpg", "result.png"]
    )
    assert client.get(f"/api/jobs/{job['id']}/files/..%2Fvotes.sqlite3").status_code == 404
    assert client.get("/api/jobs/not-an-id").status_code == 404
    assert job["info"]["tta"] == 8  # by default a small picture: eight turns and flips
    plain = finished(client, "method=network&tta=false", png_bytes())
    assert plain["info"]["tta"] == 1
    assert client.post("/api/jobs?tta=maybe", content=png_bytes()).status_code == 400


def test_a_blend_says_what_it_blended(client: TestClient) -> None:
    from test_restore_api import _shaken

    from unblur.models import get_spec
    from unblur.restoration import auto
    from unblur.restoration.api import POLISH_MODEL

    upload = pyio.BytesIO()
    from PIL import Image

    Image.fromarray((_shaken()[0] * 255).round().astype(np.uint8)).save(upload, format="PNG")
    job = finished(client, "method=auto", upload.getvalue())
    info = job["info"]
    assert info["ran"] == "blind", info
    trained = get_spec(POLISH_MODEL).has_weights  # nafnet-polish cleans, with its own shares
    share = auto.BLIND_SHARE_TRAINED if trained else auto.BLIND_SHARE
    assert info["share"] == share and "blended" in info["reason"]
    polish = auto.BLIND_POLISH_TRAINED if trained else auto.BLIND_POLISH
    assert info["polish"] == polish
    # the network's restoration of the photo runs where the blend gives it a share
    assert info["model"] == ("nafnet-fast" if share + polish < 1 else None), info
    assert info["tta"] == 8  # the networks in the blend, turned and flipped


def test_restore_job_with_flips(client: TestClient, tmp_path: Path) -> None:
    from unblur.restoration.network import Deblurrer

    upload = png_bytes()
    job = finished(client, "method=network&tta=true", upload)
    assert job["info"]["ran"] == "network" and job["info"]["tta"] == 8
    saved = tmp_path / "flips.png"
    saved.write_bytes(client.get(f"/api/jobs/{job['id']}/files/result").content)
    (tmp_path / "upload.png").write_bytes(upload)
    pixels = io.read_image(tmp_path / "upload.png").pixels
    expected = Deblurrer("nafnet-fast", device="cpu", tta=True).restore(pixels)
    np.testing.assert_allclose(io.read_image(saved).pixels, expected, atol=1 / 255 + 1e-6)


@pytest.mark.parametrize(
    ("body", "query", "status", "message"),
    [
        (b"%PDF-1.4 not a picture at all", "", 400, "not a picture"),
        (b"", "", 400, "empty"),
        (b"\x89PNG" + bytes(300_000), "", 413, "larger than the limit"),
        (bomb_png(3000), "", 413, "more than 1,000,000 pixels"),
        (png_bytes(), "&name=../../etc/passwd.png", 400, "without a path"),
        (png_bytes(), "&name=C:%5Cshots%5Ca.png", 400, "without a path"),
        (png_bytes(), "&method=sharpen", 400, "unknown method"),
    ],
)
def test_bad_uploads_are_refused(
    client: TestClient, tmp_path: Path, body: bytes, query: str, status: int, message: str
) -> None:
    answer = client.post(f"/api/jobs?model=auto{query}", content=body)
    assert answer.status_code == status
    assert message in answer.json()["error"]
    assert list((tmp_path / "data" / "jobs").iterdir()) == []  # nothing kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # nothing written outside


def test_blind_ab_vote_and_results(client: TestClient) -> None:
    answer = client.post("/api/ab?name=shot.png", content=png_bytes(64, seed=4))
    assert answer.status_code == 202, answer.text
    job = wait(client, answer.json()["id"])
    assert job["state"] == "done", job
    assert "info" not in job and "method" not in job  # blind until voted
    assert {"left", "right"} <= set(job["files"]) and job["voted"] is False
    for side in ("left", "right"):
        assert client.get(f"/api/jobs/{job['id']}/files/{side}").status_code == 200
    assert client.post(f"/api/ab/{job['id']}/vote", json={"choice": "up"}).status_code == 400
    vote = client.post(f"/api/ab/{job['id']}/vote", json={"choice": "left"}).json()
    assert {vote["left"], vote["right"]} == {"network", "blind"}
    again = client.post(f"/api/ab/{job['id']}/vote", json={"choice": "right"})
    assert again.status_code == 409
    results = client.get("/api/ab/results").json()
    assert results["votes"] == 1
    rows = {r["method"]: r for r in results["methods"]}
    low, high = wilson_interval(1, 1)
    assert rows[vote["left"]]["wins"] == 1 and rows[vote["left"]]["win_rate"] == 1.0
    assert rows[vote["left"]]["ci_low"] == pytest.approx(low)
    assert rows[vote["right"]]["losses"] == 1 and rows[vote["right"]]["ci_high"] == pytest.approx(
        1 - low
    )
    assert high == 1.0
    assert results["methods"][0]["method"] == vote["left"]


def test_wilson_interval_and_ties(tmp_path: Path) -> None:
    low, high = wilson_interval(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.49, 0.943)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    store = VoteStore(tmp_path / "v.sqlite3")
    store.add("p1", "x", "a", "b", "left")
    store.add("p2", "x", "b", "a", "equal")
    store.add("p3", "y", "a", "c", "right")
    assert not store.add("p1", "x", "a", "b", "right")
    stats = {r["method"]: r for r in store.method_stats()}
    assert (stats["a"]["wins"], stats["a"]["ties"], stats["a"]["losses"]) == (1, 1, 1)
    assert stats["a"]["win_rate"] == pytest.approx(0.5)  # (1 + 1/2) / 3
    assert stats["a"]["ci_low"] == pytest.approx(wilson_interval(1.5, 3)[0])
    assert stats["c"]["win_rate"] == 1.0
    assert {"a": "a", "b": "b", "a_wins": 1, "b_wins": 0, "ties": 1} in store.pairwise()


def test_queue_is_bounded(tmp_path: Path) -> None:
    import threading

    release = threading.Event()
    started = threading.Event()

    def slow(job: Job) -> None:
        started.set()
        release.wait(10)

    queue = JobQueue(slow, capacity=1)
    try:

        def job(i: int) -> Job:
            folder = tmp_path / str(i)
            folder.mkdir()
            return Job(f"{i:016x}", "restore", folder, "x", ("network",), "m", "p")

        assert queue.submit(job(1)) == 0
        assert started.wait(5)  # the first runs; the second waits; the third finds it full
        assert queue.submit(job(2)) == 0
        with pytest.raises(QueueFull):
            queue.submit(job(3))
    finally:
        release.set()
        queue.close()
    assert queue.get(f"{2:016x}").state == "done"


def test_full_queue_answers_503(tmp_path: Path) -> None:
    settings = ServerSettings(data_dir=tmp_path / "d", queue_capacity=1, kernel_size=15)
    app = create_app(settings)
    body = png_bytes(160, seed=5)  # blind on 160 px takes long enough to fill the queue
    try:
        with TestClient(app) as c:
            codes = [c.post("/api/jobs?method=blind", content=body) for _ in range(4)]
            assert codes[0].status_code == 202
            full = [r for r in codes if r.status_code == 503]
            assert full and "the queue is full" in full[0].json()["error"]
    finally:
        app.state.jobs.close()


def test_serve_without_the_web_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if not installed
    assert main(["serve"]) == 1
    err = capsys.readouterr().err.strip()
    assert (
        err == 'unblur: error: unblur serve needs the web extra: pip install "unblur[web]" '
        "(FastAPI and uvicorn)"
    )


def test_serve_options(capsys: pytest.CaptureFixture[str]) -> None:
    from unblur.cli import build_parser
    from unblur.cli.serve import is_loopback

    args = build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1" and args.port == 8000
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert main(["serve", "--ab-methods", "network"]) == 1
    assert "--ab-methods needs two or more" in capsys.readouterr().err
