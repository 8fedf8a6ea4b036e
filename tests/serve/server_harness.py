"""What the serving tests run a server with: sample images, a fake backend, a free port, readiness polling."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch

from instseg.structures import Instances

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "examples" / "dsb2018_sample" / "images"


def sample_images() -> list[Path]:
    """The sample nuclei images shipped in examples/ (sorted)."""
    return sorted(SAMPLES.glob("*.png"))


class FakeBackend:
    """A backend that finds one square per image (or sleeps / fails on request): for tests of the HTTP layer."""

    def __init__(self, delay_s: float = 0.0, fail: bool = False) -> None:
        self.class_names = ["square"]
        self.category_ids = [7]
        self.delay_s = delay_s
        self.fail = fail
        self.batches: list[int] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def predict_batch(self, images: list[np.ndarray]) -> list[Instances]:
        self.batches.append(len(images))
        self.started.set()
        self.release.wait(10)
        time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("secret internal path /opt/model/weights.bin exploded")
        out = []
        for image in images:
            h, w = image.shape[:2]
            masks = torch.zeros((1, h, w), dtype=torch.bool)
            masks[0, h // 4 : h // 2, w // 4 : w // 2] = True
            found = Instances((h, w), labels=torch.zeros(1, dtype=torch.int64), masks=masks, scores=torch.ones(1))
            out.append(found.compact())
        return out

    def describe(self) -> dict[str, Any]:
        return {"name": "fake", "backend": "test", "version": "0", "classes": [{"label": 0, "name": "square"}]}


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = 120.0) -> None:
    """Poll ``url/readyz`` until the server answers 200 (fails when the process dies or time runs out)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the server at {url} was not ready after {timeout_s} s")
