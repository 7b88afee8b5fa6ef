"""The viewer itself: ``tensorboard --logdir`` on 127.0.0.1 serves a dlrun run's scalar tags,
each step once after a crash and a resume, and the run's hyper-parameters."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from dlrun.runs.rundir import RunDir
from dlrun.training.train import train
from tests.training.tensorboard_common import require_tensorboard
from tests.training.test_tensorboard import BATCHES, logged


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(base: str, path: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + path, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


@pytest.mark.slow  # about 20 s on the shared 2 cores, most of it TensorBoard starting
def test_tensorboard_serves_the_runs_scalars_once_each_and_its_hparams(runs_dir, tmp_path):
    require_tensorboard()
    cfg = logged(epochs=4)
    cfg["train"]["checkpoint_every"] = 3

    def crash(trainer):  # in epoch 3, after the last checkpoint (epoch 0): steps to drop
        if trainer.step == 2 * BATCHES + 3:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError):
        train(cfg, runs_dir=runs_dir, overrides=["optimizer.lr=0.2"], callbacks=[crash])
    (run_dir,) = runs_dir.iterdir()
    train({}, resume=run_dir)
    rows = RunDir(run_dir).metrics()
    port = free_port()
    log = open(tmp_path / "tensorboard.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(runs_dir)]
        + ["--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    run = f"{run_dir.name}/tensorboard"
    try:
        deadline = time.monotonic() + 90
        tags: dict = {}
        while time.monotonic() < deadline:
            assert server.poll() is None, (tmp_path / "tensorboard.log").read_text()
            try:
                tags = get(base, "/data/plugin/scalars/tags")
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                tags = {}
            if "test_accuracy" in tags.get(run, {}):  # the last tag written: all loaded
                break
            time.sleep(0.5)
        assert set(tags.get(run, {})) >= {"loss", "val_loss", "grad_norm/dense_0", "seconds"}
        query = urllib.parse.urlencode({"run": run, "tag": "seconds"})
        points = get(base, f"/data/plugin/scalars/scalars?{query}")
        # [wall time, step, value]: each epoch once, with the resumed process's value
        assert [p[1] for p in points] == [r["epoch"] for r in rows]
        assert [p[2] for p in points] == pytest.approx([r["seconds"] for r in rows], rel=1e-6)
        experiment = get(base, "/data/plugin/hparams/experiment", {"experimentName": ""})
        names = {h["name"] for h in experiment["hparamInfos"]}
        assert names >= {"optimizer.lr", "optimizer.name", "train.batch_size", "seed"}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
