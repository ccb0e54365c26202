"""One real browser on ``unblur serve``'s page: headless Chromium (Debian's ``chromium``) driven
by Playwright uploads a photo, waits for the result, then casts a blind A/B vote.

Skipped, with the reason, where no Chromium is installed; in CI (``CI`` set) a missing
Chromium is a failure, since ``.ci/run`` installs it.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from scenes import textured_scene

from unblur import io

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install -e '.[web]')")
pytest.importorskip("playwright", reason="playwright is not installed (pip install -e '.[test]')")

CHROMIUM = next(
    (p for p in (shutil.which("chromium"), shutil.which("chromium-browser")) if p), None
)
if CHROMIUM is None:
    if os.environ.get("CI"):
        pytest.fail("CI must run the browser test: .ci/run installs Debian's chromium")
    pytest.skip(
        "no chromium on this machine (apt-get install chromium) for the browser test",
        allow_module_level=True,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    import uvicorn

    from unblur.web.app import ServerSettings, create_app

    app = create_app(
        ServerSettings(data_dir=tmp_path / "data", kernel_size=15, ab_methods=("network", "blind"))
    )
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(10)
        app.state.jobs.close()


def test_upload_restore_and_vote_in_chromium(server: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    photo = tmp_path / "shot.png"
    io.write_image(photo, np.clip(textured_scene(64, 64, 3, seed=7), 0, 1))
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], timeout=30_000
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server + "/")
            page.wait_for_function("document.querySelector('#model').options.length > 1")

            # restore: choose the network with flips, upload, wait for the before/after
            page.select_option("#method", "network")
            page.select_option("#tta", "true")
            page.set_input_files("#file", str(photo))
            page.wait_for_selector("#result", state="visible")
            assert page.evaluate("document.querySelector('#after').naturalWidth") == 64
            info = page.inner_text("#info")
            assert "network" in info and "8 turns and flips" in info, info
            assert "/files/result" in (page.get_attribute("#download", "href") or "")
            page.fill("#slider", "20")
            page.dispatch_event("#slider", "input")
            assert "80%" in (page.get_attribute("#before", "style") or "")

            # blind A/B: upload, wait for both versions, vote, see the methods revealed
            page.click("#tab-ab")
            page.set_input_files("#ab-file", str(photo))
            page.wait_for_selector("#ab-pair", state="visible")
            page.click("#vote-left")
            page.wait_for_selector("#ab-reveal", state="visible")
            reveal = page.inner_text("#ab-reveal")
            assert "A was" in reveal and "B was" in reveal

            page.click("#tab-results")
            page.wait_for_selector("#results-table tbody tr td:nth-child(2)")
            table = page.inner_text("#results-table")
            assert "network" in table and "blind" in table
            assert not errors, errors
        finally:
            browser.close()
