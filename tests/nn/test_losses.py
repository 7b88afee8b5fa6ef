"""The losses' guards: a kernel that indexes with labels never sees one out of range."""

import numpy as np
import pytest

from dlrun.errors import DataError
from dlrun.nn.losses import CrossEntropy, Quadratic


@pytest.mark.parametrize("labels", [[0, 3], [-1, 0], [0, 1, 2]])
def test_cross_entropy_refuses_labels_the_output_cannot_index(labels):
    logits = np.zeros((2, 3))
    with pytest.raises(DataError, match="cross_entropy"):
        CrossEntropy().value_and_grad(logits, np.array(labels))


def test_cross_entropy_takes_valid_labels():
    value, grad = CrossEntropy().value_and_grad(np.zeros((2, 3)), np.array([0, 2]))
    assert value == pytest.approx(np.log(3))
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-15)


def test_quadratic_refuses_targets_of_another_size():
    with pytest.raises(DataError, match="3 target values for an output of 4 values"):
        Quadratic().value_and_grad(np.zeros((2, 2)), np.zeros(3))
