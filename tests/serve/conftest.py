"""Fixtures of the serving tests: the shipped model as a backend and a live server (see server_harness.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from instseg.engine.checkpoint import default_weights_path
from tests.serve.server_harness import ROOT, free_port, wait_ready


@pytest.fixture(scope="session")
def default_backend() -> Any:
    """The shipped default model behind a serving backend (loaded once per session)."""
    if not default_weights_path().is_file():
        pytest.skip("no default model in instseg/weights")
    from instseg.serve.loading import load_backend

    torch.set_flush_denormal(True)
    return load_backend()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``instseg serve`` (the shipped model) run as a real process on a free loopback port; yields its URL."""
    if not default_weights_path().is_file():
        pytest.skip("no default model in instseg/weights")
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "server.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "instseg", "serve", "--host", "127.0.0.1", "--port", str(port), "--max-batch", "4"]
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        yield url
    except RuntimeError as err:
        raise RuntimeError(f"{err}; server log:\n{log.read_text(errors='replace')[-3000:]}") from err
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
