"""Open index.html in headless Chromium: it renders, and no image or script is broken."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import matplotlib.image
import numpy as np
import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="headless browser test needs /usr/bin/chromium (apt-get install chromium)")


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    command = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def test_page_renders_in_chromium(built, tmp_path):
    page = built / "index.html"
    shot = tmp_path / "page.png"
    run = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri())
    assert shot.exists(), run.stderr[-2000:]
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (2000, 1280)
    colours = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 200  # text, tables and plots, not a blank or single-colour page
    assert (pixels.min(axis=-1) < 0.9).mean() > 0.03


def test_page_has_no_broken_images_or_console_errors(built, tmp_path):
    page = built / "index.html"
    run = _chromium(tmp_path, "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri())
    dom = run.stdout
    assert "<main>" in dom, run.stderr[-2000:]
    sources = re.findall(r'<img [^>]*src="([^"]*)"', dom)
    assert len(sources) == len(list((built / "plots").glob("*.png")))
    for src in sources:
        if src.startswith("data:"):
            header, data = src.split(",", 1)
            assert header == "data:image/png;base64"
            assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
        else:
            assert "://" not in src and (page.parent / unquote(src)).is_file(), src
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []
