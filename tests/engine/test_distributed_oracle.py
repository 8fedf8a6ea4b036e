"""DDP checked by value in a few seconds: 2 gloo ranks spawned in-process against 1 process on the same data.

- the collective helpers return every rank's values (not rank 0's), ``any_true`` is a true OR;
- 2 ranks x batch 1 x accumulate 2 give the weights of 1 process x batch 4 (a wrong ``no_sync`` placement,
  a missing gradient average or a per-rank data order that overlaps would not);
- evaluation shards the validation images (each image on exactly one rank) and rank 0's gathered figures equal a
  1-process evaluation of the same weights; only rank 0 writes the run folder, the checkpoint holds both ranks'
  RNG states.
"""

from __future__ import annotations

import csv
import json
import socket
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from ddp_oracle_worker import CountingEvaluator, build_trainer, oracle_config, run_rank
from engine_testdata import write_synthetic

from instseg.data.coco import CocoDataset
from instseg.data.collate import collate_batch
from instseg.data.loader import build_loader
from instseg.engine.checkpoint import load_checkpoint
from instseg.engine.distributed import all_gather_object, any_true, broadcast_object, get_rank, get_world_size
from instseg.engine.evaluate import evaluate_model


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_helpers_degrade_to_one_process() -> None:
    assert (get_rank(), get_world_size()) == (0, 1)
    assert all_gather_object({"a": 1}) == [{"a": 1}]
    assert any_true(True) is True and any_true(False) is False
    assert broadcast_object("x") == "x"


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The synthetic data folder and the output folder of one 2-rank run (``ddp/`` + ``rank{0,1}.json``)."""
    root = tmp_path_factory.mktemp("ddp_oracle")
    data = write_synthetic(root / "data", num_train=8, num_val=5)
    out = root / "out"
    out.mkdir()
    # forked, not spawned: the ranks inherit the imported modules (a spawned rank re-imports torch and instseg,
    # which took most of a minute on 2 busy cores); each rank sets 1 torch thread before any computation
    context = mp.start_processes(
        run_rank, args=(_free_port(), str(data), str(out)), nprocs=2, join=False, daemon=True, start_method="fork"
    )
    deadline = time.monotonic() + 180  # a rank stuck in a collective must fail the test, not hang it
    while not context.join(timeout=1):  # raises when a rank raised
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the 2-rank run did not finish within 180 s")
    return data, out


def test_two_ranks_accumulating_equal_one_process_with_the_global_batch(ddp_run: tuple[Path, Path]) -> None:
    data, out = ddp_run
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one, _ = build_trainer(oracle_config(batch_size=4, accumulate=1), data, out / "one")
        start = {k: v.clone() for k, v in one.model.state_dict().items()}
        one.train()
    finally:
        torch.set_num_threads(threads)
    ddp, ref = load_checkpoint(out / "ddp" / "last.pt"), load_checkpoint(out / "one" / "last.pt")
    assert ddp["step"] == ref["step"] == 3
    moved = 0.0
    for key, value in ref["model"].items():
        torch.testing.assert_close(ddp["model"][key], value, rtol=1e-5, atol=1e-6, msg=key)
        moved += float((value - start[key]).abs().sum())
    assert moved > 1e-2  # the steps changed the weights: the comparison is not between two initial states
    # every rank's position in the data: 3 steps x 2 micro-batches of 1 image = 6 of its 4 images per epoch
    assert ddp["data"] == {"epoch": 1, "batches_done": 2} and ref["data"] == {"epoch": 1, "batches_done": 1}
    assert len(ddp["rng"]) == 2 and not torch.equal(ddp["rng"][0]["torch"], ddp["rng"][1]["torch"])
    # the loss rows of metrics.csv: the same steps and losses (the mean over both ranks' images is not needed:
    # rank 0 logs its own mean), one row per step, written once
    with open(out / "ddp" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows if r["loss"]] == ["1", "2", "3"]
    assert [r["step"] for r in rows if r["match/F1@0.5"]] == ["2", "3"]


def test_evaluation_is_sharded_and_gathered(ddp_run: tuple[Path, Path]) -> None:
    data, out = ddp_run
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    val = CocoDataset(data / "annotations" / "instances_val.json", data / "images")
    all_ids = sorted(int(val.image_info(i)["id"]) for i in range(len(val)))
    seen = [r["seen"] for r in ranks]
    assert sorted(seen[0] + seen[1]) == all_ids and len(seen[0]) == 3 and len(seen[1]) == 2  # no image twice
    assert ranks[1]["metrics"] == {}  # figures live on rank 0
    state = load_checkpoint(out / "ddp" / "last.pt")
    assert state["metrics"] == pytest.approx(ranks[0]["metrics"])
    # the same weights evaluated by one process on all validation images
    model, _ = build_trainer(oracle_config(batch_size=1, accumulate=1), data, out / "unused")
    model.model.load_state_dict(state["model"])
    evaluator = CountingEvaluator(val.to_coco_dict(), val.category_ids, max_dets=100, score_thr=0.0)
    loader = build_loader(val, 2, shuffle=False, num_workers=0, collate_fn=collate_batch)  # type: ignore[arg-type]
    alone = evaluate_model(model.model, loader, evaluator, "cpu")
    assert sorted(evaluator.seen) == all_ids
    assert set(alone) == set(ranks[0]["metrics"])
    for key, value in alone.items():
        assert ranks[0]["metrics"][key] == pytest.approx(value, abs=1e-12), key
    assert 0.0 < alone["match/F1@0.5"] < 1.0 or 0.0 < alone["segm/AP"] < 1.0  # figures that depend on the weights
    assert not (out / "unused").exists()  # a trainer writes nothing before it trains
