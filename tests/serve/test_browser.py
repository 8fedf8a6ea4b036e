"""The web page in a real browser (Debian's chromium driven by Playwright) against a real ``instseg serve``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest

from instseg.structures.masks import rle_to_mask
from tests.serve.server_harness import sample_images

CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason=f"{CHROMIUM} is missing (Debian package chromium: apt-get install chromium)"
)

CHANGED_PIXELS_JS = """() => {
  const a = document.getElementById('view'), b = document.getElementById('base');
  const pa = a.getContext('2d').getImageData(0, 0, a.width, a.height).data;
  const pb = b.getContext('2d').getImageData(0, 0, b.width, b.height).data;
  let changed = 0;
  for (let i = 0; i < pa.length; i += 4) {
    if (Math.abs(pa[i] - pb[i]) + Math.abs(pa[i + 1] - pb[i + 1]) + Math.abs(pa[i + 2] - pb[i + 2]) > 30) changed++;
  }
  let baseLit = 0;
  for (let i = 0; i < pb.length; i += 4) if (pb[i] + pb[i + 1] + pb[i + 2] > 0) baseLit++;
  return {changed, total: pa.length / 4, baseLit};
}"""


def test_page_draws_masks_lists_instances_filters_and_downloads(live_server: str, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (pip) is not installed")
    image = sample_images()[5]  # the crowded 520x696 fluorescence sample
    api = httpx.post(f"{live_server}/v1/predict", files={"file": (image.name, image.read_bytes())}, timeout=60).json()
    expected = api["count"]
    assert expected > 20

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            posted: list[str] = []
            page.on("request", lambda r: posted.append(r.url) if r.method == "POST" else None)
            page.goto(live_server + "/")
            page.wait_for_function("document.getElementById('model').textContent.includes('classes: nucleus')")
            page.set_input_files("#file", str(image))
            page.wait_for_selector("#view[data-ready='1']", timeout=60_000)

            drawn = page.evaluate(CHANGED_PIXELS_JS)
            assert drawn["total"] == api["width"] * api["height"]
            assert drawn["baseLit"] > 0.5 * drawn["total"]  # the picture itself was drawn under the masks
            covered = sum(inst["area"] for inst in api["instances"])
            assert drawn["changed"] > 0.5 * covered  # the overlay colours the masks' pixels
            assert page.locator("#rows tr").count() == expected
            assert page.locator("#count").inner_text() == f"{expected} of {expected} instances"

            # hover a pixel of the best instance: the tooltip names its class and score
            best = api["instances"][0]
            ys, xs = np.nonzero(rle_to_mask(best["mask"]))
            k = len(ys) // 2
            box = page.locator("#view").bounding_box()
            assert box is not None
            sx, sy = box["width"] / api["width"], box["height"] / api["height"]
            page.mouse.move(box["x"] + (xs[k] + 0.5) * sx, box["y"] + (ys[k] + 0.5) * sy)
            tip = page.locator("#tip")
            assert tip.is_visible() and "nucleus" in tip.inner_text() and f"{best['score']:.3f}" in tip.inner_text()
            page.screenshot(path=str(tmp_path / "serve_page.png"), full_page=True)

            # the score slider filters the received instances without asking the server again
            scores = sorted(inst["score"] for inst in api["instances"])
            cut = round(scores[len(scores) // 2], 2)
            page.eval_on_selector("#score", f"(el) => {{ el.value = '{cut}'; el.dispatchEvent(new Event('input')); }}")
            kept = sum(s >= cut for s in scores)
            assert 0 < kept < expected
            assert page.locator("#rows tr").count() == kept
            assert len(posted) == 1
            page.screenshot(path=str(tmp_path / "serve_page_filtered.png"), full_page=True)

            with page.expect_download() as info:
                page.click("#download")
            saved = tmp_path / "download.json"
            info.value.save_as(saved)
            downloaded = json.loads(saved.read_text())
            assert downloaded["count"] == kept and all(i["score"] >= cut for i in downloaded["instances"])
        finally:
            browser.close()
    assert (tmp_path / "serve_page.png").stat().st_size > 10_000


def test_live_server_answers_over_http(live_server: str) -> None:
    assert httpx.get(f"{live_server}/healthz").json() == {"status": "ok"}
    r = httpx.get(f"{live_server}/v1/models")
    assert r.status_code == 200 and "server" not in r.headers  # no server software banner
