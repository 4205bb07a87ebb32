"""TensorBoard in a real browser: a real sweep, served by the real `tensorboard` command, read by headless Chromium.

Needs Debian's `chromium` (`apt-get install chromium`), driven by Playwright's Python package; never Playwright's own
browser downloads. Screenshots of each dashboard land in `outputs/test_artifacts/`, whether the test passes or not.
"""

from __future__ import annotations

import io
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright

RUNS = ["schedule=constant", "schedule=cosine", "schedule=step"]  # job dirs, named after their overrides
SMALL = ["trainer.max_epochs=2", "trainer.limit_train_batches=5", "trainer.enable_progress_bar=false"]
ARTIFACTS = ROOT / "outputs" / "test_artifacts"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic",
]  # fmt: skip
# Tall enough that every card of a dashboard is on screen: cards draw only once visible, and TensorBoard scrolls
# inside its own panes, so a "full page" screenshot is the viewport.
VIEWPORT = {"width": 1600, "height": 2400}
WAIT_MS = 30_000  # every browser wait (`expect` would wait 5 s); a dashboard draws in 1-3 s on 2 cores

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`python train.py -m schedule=constant,step,cosine`, shrunk; its job dirs named after the schedule alone."""
    sweep = tmp_path_factory.mktemp("browser") / "sweep"
    cmd = [
        sys.executable, "train.py", "-m", "schedule=constant,step,cosine", *SMALL, f"hydra.sweep.dir={sweep}",
        f"hydra.job.config.override_dirname.exclude_keys=[{','.join(s.split('=')[0] for s in SMALL)}]",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.parent.name for p in sweep.glob("*/events.out.tfevents.*")) == RUNS
    return sweep


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def tensorboard(sweep: Path) -> Iterator[str]:
    """The URL of `tensorboard --logdir <sweep>`, once it lists every run; the server is stopped afterwards."""
    port = _free_port()
    log = sweep.parent / "tensorboard.log"  # a file, not a pipe: a full pipe would block the server
    cmd = [sys.executable, "-m", "tensorboard.main", "--logdir", str(sweep), "--host", "127.0.0.1", "--port", str(port)]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline, runs, error = time.monotonic() + 60, None, None
        while sorted(runs or []) != RUNS:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"tensorboard at {url} did not list the runs {RUNS} (last /data/runs: {runs}, last error: "
                    f"{error}, exit code: {proc.poll()}); its output:\n{log.read_text()[-3000:]}"
                )
            time.sleep(0.25)
            try:
                runs = _get_json(f"{url}/data/runs")
            except OSError as exc:  # not listening yet
                error = exc
        yield url
    finally:
        proc.terminate()  # its Rust data server exits with it (--die-after-stdin)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """Headless Debian Chromium with a fresh profile."""
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        pytest.fail("Chromium is missing: `apt-get install chromium` (Debian's package; CI installs it)")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            user_data_dir=tmp_path_factory.mktemp("chromium") / "profile",
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=VIEWPORT,
            timeout=60_000,
        )
        context.set_default_timeout(WAIT_MS)
        context.set_default_navigation_timeout(WAIT_MS)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser: BrowserContext) -> Iterator[Page]:
    page = browser.new_page()
    try:
        yield page
    finally:
        page.close()


@contextmanager
def screenshot(page: Page, dashboard: str) -> Iterator[None]:
    """Saves the page to `outputs/test_artifacts/tensorboard_<dashboard>.png` on the way out, failed or not."""
    try:
        yield
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=ARTIFACTS / f"tensorboard_{dashboard}.png", full_page=True, timeout=10_000)


def _pixels_near(png: bytes, rgb: tuple[int, ...], tolerance: int = 24) -> int:
    """How many pixels of ``png`` are within ``tolerance`` of ``rgb`` in every channel."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)
    return int((np.abs(pixels - np.array(rgb)).max(axis=-1) <= tolerance).sum())


def _rgb(css: str) -> tuple[int, ...]:
    """``"rgb(66, 80, 102)"`` -> ``(66, 80, 102)``."""
    return tuple(int(part) for part in css[css.index("(") + 1 : css.index(")")].split(",")[:3])


@pytest.mark.parametrize("renderer", ["auto", "svg"])
def test_time_series_lists_every_run_and_draws_the_lr_chart(tensorboard: str, page: Page, renderer: str) -> None:
    """The default dashboard, with the renderer TensorBoard picks (WebGL where it can) and with SVG forced."""
    query = "?forceSVG=true" if renderer == "svg" else ""
    with screenshot(page, "timeseries" if renderer == "auto" else f"timeseries_{renderer}"):
        page.goto(f"{tensorboard}/{query}#timeseries")

        # The runs table on the left: one row per run, named after its job dir, every one selected (drawn).
        rows = page.locator("runs-selector tb-data-table-content-row")
        expect(rows).to_have_count(len(RUNS), timeout=WAIT_MS)
        assert sorted(t.strip() for t in rows.locator(".table-column-run").all_inner_texts()) == RUNS
        for i in range(len(RUNS)):
            expect(rows.nth(i).locator(".table-column-selected input[type=checkbox]")).to_be_checked(timeout=WAIT_MS)
        colors = {
            row.locator(".table-column-run").inner_text().strip(): _rgb(
                row.locator(".run-color-swatch").evaluate("e => getComputedStyle(e).backgroundColor")
            )
            for row in rows.all()
        }

        # The card of the `lr-SGD` tag (its title holds the full tag) and its plot: a WebGL canvas, or an SVG
        # path per run.
        card = page.locator("scalar-card").filter(has=page.locator('tb-truncated-path[title="lr-SGD"]')).first
        card.scroll_into_view_if_needed()
        expect(card).to_be_visible(timeout=WAIT_MS)
        plot = card.locator("line-chart .series-view")
        curves = plot.locator(':scope > canvas, :scope > svg path[d]:not([d=""])')
        expect(curves.first).to_be_attached(timeout=WAIT_MS)  # not "visible": a flat line's path has no height
        if plot.locator(":scope > canvas").count():
            box = plot.locator(":scope > canvas").bounding_box()
            assert box is not None and box["width"] > 0 and box["height"] > 0, box
        else:
            expect(curves.nth(len(RUNS) - 1)).to_be_attached(timeout=WAIT_MS)

        # Drawn, as the eye sees it (~400 pixels each here, 0 for a run that is not drawn): cosine, the only falling
        # curve, in its run's colour; the flat 0.1 line that constant and step share in the colour of one of them,
        # whichever is on top.
        def pixels() -> dict[str, int]:
            png = plot.screenshot(animations="disabled")
            return {run: _pixels_near(png, rgb) for run, rgb in colors.items()}

        deadline = time.monotonic() + WAIT_MS / 1000  # the canvas may show its lines a frame after the DOM settles
        while (ink := pixels())["schedule=cosine"] < 50 or ink["schedule=constant"] + ink["schedule=step"] < 50:
            assert time.monotonic() < deadline, f"the lr-SGD chart shows too few pixels of each run's colour: {ink}"
            page.wait_for_timeout(250)


def test_custom_scalars_overlay_every_run_in_one_lr_chart(tensorboard: str, page: Page) -> None:
    """The sweep's custom-scalars layout: a "learning rate" chart with one line per run."""
    with screenshot(page, "custom_scalars"):
        page.goto(f"{tensorboard}/#custom_scalars")
        plugins = _get_json(f"{tensorboard}/data/plugins_listing")
        assert plugins["custom_scalars"]["enabled"], "the sweep's event files hold no custom-scalars layout"

        # The dashboard's own runs selector (Polymer, in shadow roots that the locators pierce).
        names = page.locator("tf-runs-selector .name-row .item-label-container span")
        expect(names).to_have_count(len(RUNS), timeout=WAIT_MS)
        assert sorted(names.all_inner_texts()) == RUNS
        checked = page.locator('tf-runs-selector paper-checkbox[aria-checked="true"]')
        expect(checked).to_have_count(len(RUNS), timeout=WAIT_MS)

        card = page.locator("tf-custom-scalar-multi-line-chart-card").filter(
            has=page.locator(".heading-label", has_text="learning rate")
        )
        expect(card).to_have_count(1, timeout=WAIT_MS)  # every run writes the layout; TensorBoard merges them
        # One smoothed line per run (the `.ghost` plot draws the raw ones faintly), and the list of what it plots.
        lines = card.locator('.line-plot:not(.ghost) path.line[d]:not([d=""])')
        expect(lines).to_have_count(len(RUNS), timeout=WAIT_MS)
        matches = [" ".join(t.split()) for t in card.locator(".match-list-entry").all_text_contents()]
        assert sorted(matches) == [f"◼ lr-SGD ({run})" for run in RUNS]
