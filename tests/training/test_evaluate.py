from pathlib import Path

import numpy as np
import pytest

from dlrun.training.evaluation import confusion_matrix, evaluate_run
from dlrun.training.train import train
from tests.conftest import small_config

HAVE_FASHION = Path("/usr/share/datasets/fashion-mnist").is_dir()


def test_confusion_matrix_counts():
    cm = confusion_matrix(np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 2, 0]), 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 1]])


def test_eval_reports_the_confusion_matrix(runs_dir):
    result = train(small_config(), runs_dir=runs_dir)
    m = evaluate_run(result.run_dir, "test", "last")
    cm = m["confusion"]
    assert cm.sum() == m["n"] == 40
    assert np.trace(cm) / cm.sum() == pytest.approx(m["accuracy"])
    assert (result.run_dir / "plots" / "confusion.png").is_file()


@pytest.mark.skipif(
    not HAVE_FASHION, reason="needs Debian's dataset-fashion-mnist (CI installs it)"
)
def test_cnn_run_pictures(runs_dir):
    cfg = {
        "data": {"name": "fashion_mnist", "n_train": 600, "download": False},
        "model": {
            "type": "sequential",
            "init": "he_normal",
            "layers": [
                {"type": "conv2d", "filters": 4, "kernel_size": 3, "padding": "same"},
                {"type": "relu"},
                {"type": "maxpool2d", "size": 2},
                {"type": "flatten"},
                {"type": "dense", "units": 10},
                {"type": "softmax"},
            ],
        },
        "optimizer": {"name": "adam", "lr": 0.003},
        "train": {"epochs": 1, "batch_size": 64, "augment": {"rotation": 10, "translate": 0.1}},
    }
    result = train(cfg, runs_dir=runs_dir)
    plots = result.run_dir / "plots"
    assert (plots / "filters.png").is_file() and (plots / "feature_maps.png").is_file()
    assert (plots / "augmentation.png").is_file()
    m = evaluate_run(result.run_dir, "test", "best")
    assert m["n"] == 10000 and m["confusion"].shape == (10, 10)
    assert m["class_names"][0] == "T-shirt/top"
    assert (plots / "misclassified.png").is_file()
    assert m["accuracy"] > 0.4  # far above chance (0.1) after 600 images
