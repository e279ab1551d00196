"""Reports: the Markdown subset, and the tour's HTML page rendered in a real headless browser."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from torchkata.registry import TIPS
from torchkata.report import markdown_to_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_markdown_subset_converts_tables_lists_code_and_images():
    md = (
        "## Title\n\nText with `a<b` and **bold** and [link](x.html).\n\n"
        '| a | b |\n|---|---|\n| 1 | 2 |\n\n- one\n- two\n\n```json\n{"k": 1}\n```\n\n'
        "![fig](run/fig.png)\n"
    )
    out = markdown_to_html(md, images={"run/fig.png": "data:image/png;base64,AAAA"})
    assert "<h2>Title</h2>" in out
    assert "<code>a&lt;b</code>" in out and "<strong>bold</strong>" in out
    assert '<a href="x.html">link</a>' in out
    assert "<thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>1</td><td>2</td></tr>" in out
    assert "<ul><li>one</li><li>two</li></ul>" in out
    assert "<pre><code>{&quot;k&quot;: 1}</code></pre>" in out
    assert '<img alt="fig" src="data:image/png;base64,AAAA">' in out


@pytest.fixture(scope="module")
def tour(tmp_path_factory) -> Path:
    """The README's main job, `torchkata tour`, on its defaults (quick presets)."""
    out = tmp_path_factory.mktemp("tour")
    result = subprocess.run(
        [sys.executable, "-m", "torchkata", "tour", "--device", "cpu", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == out / "index.html"
    return out


def test_tour_writes_one_self_contained_report_with_a_section_per_tip(tour):
    page = (tour / "index.html").read_text()
    for tip in TIPS:
        assert f'<section id="tip{tip.number}"' in page
    assert "not run in this tour" not in page  # the default tour runs every tip
    assert 'src="data:image/png;base64,' in page
    assert "<img" in page and 'src="norm-' not in page  # figures embedded, not linked
    norm_run = next(tour.glob("norm-*"))
    figures = json.loads((norm_run / "metrics.json").read_text())["figures"]
    for name in figures:
        encoded = base64.b64encode((norm_run / f"{name}.png").read_bytes()).decode()
        assert encoded in page
    md = (tour / "index.md").read_text()
    assert "torchkata run norm --preset quick --seed 0" in md
    assert "Wu & He 2018" in md  # the headline numbers carry their reference


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (.ci/run installs it)")
def test_tour_page_renders_in_headless_chromium_with_its_figures(tour, tmp_path):
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    url = (tour / "index.html").as_uri()
    dom = subprocess.run(
        [CHROMIUM, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<h1>torchkata tour</h1>" in dom.stdout
    assert dom.stdout.count("<section") == len(TIPS)

    shot = tmp_path / "page.png"
    subprocess.run(
        [CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1000,6000", url],
        capture_output=True,
        timeout=120,
        check=True,
    )
    import matplotlib.image

    pixels = (matplotlib.image.imread(shot)[..., :3] * 255).round().astype(int)
    # matplotlib's first line colour (#1f77b4) only appears if an embedded figure was drawn
    blue = np.all(np.abs(pixels - [31, 119, 180]) <= 12, axis=-1)
    assert blue.sum() > 200, "the embedded figures did not render"
