"""build_loader: batches, shuffling and augmentation reproducible from (seed, epoch), samplers, distributed."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

from instseg.data.loader import ShardSampler, WorkerSeeder, build_loader
from instseg.data.synthetic import SyntheticShapes
from instseg.transforms import build_train_transforms


def small_set(n: int = 10, augment: bool = False) -> SyntheticShapes:
    transforms = (
        build_train_transforms(min_size=(24, 32), max_size=48, vflip=True, color_jitter=0.3) if augment else None
    )
    return SyntheticShapes(num_images=n, image_size=32, num_classes=3, seed=0, max_objects=4, transforms=transforms)


def epoch_fingerprint(loader) -> list[tuple[list[int], float]]:
    """Image ids and a pixel checksum per batch: equal fingerprints mean equal data and augmentation."""
    return [([m["image_id"] for m in metas], float(images.tensor.sum())) for images, _, metas in loader]


def test_batches_and_drop_last():
    loader = build_loader(small_set(10), batch_size=4, shuffle=True, seed=0)
    batches = list(loader)
    assert len(batches) == len(loader) == 2  # 10 images: the short last batch is dropped when training
    images, targets, metas = batches[0]
    assert images.tensor.shape[0] == len(targets) == len(metas) == 4
    assert images.original_sizes == [(32, 32)] * 4
    eval_loader = build_loader(small_set(10), batch_size=4, shuffle=False)
    assert [m["image_id"] for _, _, metas in eval_loader for m in metas] == list(range(1, 11))
    assert loader.pin_memory == torch.cuda.is_available()


def test_shuffle_depends_on_seed_and_epoch_only():
    ds = small_set(10)
    a = build_loader(ds, batch_size=2, shuffle=True, seed=3)
    b = build_loader(ds, batch_size=2, shuffle=True, seed=3)
    assert epoch_fingerprint(a) == epoch_fingerprint(b)
    first = epoch_fingerprint(a)
    a.sampler.set_epoch(1)
    assert epoch_fingerprint(a) != first
    a.sampler.set_epoch(0)
    assert epoch_fingerprint(a) == first


@pytest.mark.slow
def test_worker_augmentation_is_reproducible_per_epoch():
    ds = small_set(8, augment=True)
    runs = []
    for _ in range(2):
        loader = build_loader(ds, batch_size=2, shuffle=True, num_workers=2, seed=5)
        epochs = []
        for epoch in (0, 1):
            loader.sampler.set_epoch(epoch)
            epochs.append(epoch_fingerprint(loader))
        runs.append(epochs)
    assert runs[0] == runs[1]
    assert runs[0][0] != runs[0][1]


def test_worker_seeder_is_a_function_of_seed_rank_epoch_worker():
    sampler = ShardSampler(4)
    seeds = {}
    for rank in (0, 1):
        for epoch in (0, 1):
            sampler.set_epoch(epoch)
            for worker in (0, 1):
                WorkerSeeder(7, rank, sampler)(worker)
                seeds[(rank, epoch, worker)] = torch.initial_seed()
                WorkerSeeder(7, rank, sampler)(worker)
                assert torch.initial_seed() == seeds[(rank, epoch, worker)]
    assert len(set(seeds.values())) == len(seeds)


def test_shard_sampler_splits_without_padding():
    shards = [ShardSampler(10, num_replicas=3, rank=r, shuffle=True, seed=1) for r in range(3)]
    indices = [list(s) for s in shards]
    assert sorted(i for shard in indices for i in shard) == list(range(10))
    assert [len(s) for s in shards] == [4, 3, 3]
    for s in shards:
        s.set_epoch(2)
    assert [list(s) for s in shards] != indices
    assert list(ShardSampler(5)) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="rank 3"):
        ShardSampler(5, num_replicas=3, rank=3)


def test_distributed_needs_an_initialised_group_and_picks_samplers(tmp_path):
    with pytest.raises(ValueError, match="initialised"):
        build_loader(small_set(4), batch_size=2, shuffle=True, distributed=True)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        train = build_loader(small_set(4), batch_size=2, shuffle=True, distributed=True)
        assert isinstance(train.sampler, DistributedSampler)
        assert len(list(train)) == 2
        evaluation = build_loader(small_set(5), batch_size=2, shuffle=False, distributed=True)
        assert isinstance(evaluation.sampler, ShardSampler)
        assert sum(len(metas) for _, _, metas in evaluation) == 5
    finally:
        dist.destroy_process_group()


def test_argument_checks():
    with pytest.raises(ValueError, match="batch_size"):
        build_loader(small_set(2), batch_size=0, shuffle=False)
    with pytest.raises(ValueError, match="num_workers"):
        build_loader(small_set(2), batch_size=1, shuffle=False, num_workers=-1)
