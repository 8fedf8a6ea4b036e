"""Dynamic batching: concurrent requests share batches, and a batched image gets the numbers it gets alone."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from instseg.data.image_io import read_image
from instseg.serve.batching import DynamicBatcher, QueueFull
from tests.serve.server_harness import sample_images


def test_requests_arriving_together_share_a_batch() -> None:
    sizes: list[int] = []

    def run(items: list[int]) -> list[int]:
        sizes.append(len(items))
        time.sleep(0.05)
        return [2 * x for x in items]

    async def scenario() -> list[Any]:
        batcher: DynamicBatcher[int, int] = DynamicBatcher(run, max_batch=4, timeout_s=0.05, queue_size=16)
        await batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit(i) for i in range(10)))
        finally:
            await batcher.stop()

    results = asyncio.run(scenario())
    assert [out for out, _ in results] == [2 * i for i in range(10)]
    assert sizes == [4, 4, 2]  # 10 requests at once: full batches, then the rest
    assert [info.batch_size for _, info in results] == [4] * 8 + [2] * 2


def test_full_queue_refuses_at_once_and_a_failed_batch_fails_its_requests_only() -> None:
    gate = threading.Event()

    def run(items: list[int]) -> list[int]:
        gate.wait(10)
        if 13 in items:
            raise RuntimeError("unlucky")
        return items

    async def scenario() -> None:
        batcher: DynamicBatcher[int, int] = DynamicBatcher(run, max_batch=1, timeout_s=0, queue_size=1)
        with pytest.raises(QueueFull, match="not running"):
            await batcher.submit(1)
        await batcher.start()
        first = asyncio.ensure_future(batcher.submit(1))
        while batcher.in_flight == 0:  # 1 is inside run()
            await asyncio.sleep(0.005)
        second = asyncio.ensure_future(batcher.submit(13))
        await asyncio.sleep(0.01)
        assert batcher.depth == 1
        with pytest.raises(QueueFull, match="1 requests are already waiting"):
            await batcher.submit(3)
        gate.set()
        assert (await first)[0] == 1
        with pytest.raises(RuntimeError, match="unlucky"):
            await second
        assert (await batcher.submit(4))[0] == 4  # the worker lives on after a failed batch
        await batcher.stop()
        assert not batcher.running

    asyncio.run(scenario())


def test_batched_images_get_the_numbers_they_get_alone(default_backend: Any) -> None:
    images = [read_image(p) for p in sample_images()[:3]]  # two 256x256 images and one 256x320
    assert images[0].shape == images[1].shape != images[2].shape
    batched = default_backend.predict_batch(images)
    for image, found in zip(images, batched, strict=True):
        alone = default_backend.predictor(image)
        assert found.is_compact and len(found) == len(alone) > 5
        assert found.to_coco(1, [1]) == alone.to_coco(1, [1])
