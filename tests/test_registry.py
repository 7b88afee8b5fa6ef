import pytest

from dlrun import registry as R
from dlrun.errors import ConfigError


def test_every_registry_is_filled_and_described():
    for kind, reg in R.ALL.items():
        names = reg.names()
        assert names, kind
        for name, obj in reg.items():
            assert R.Registry.describe(obj), f"{kind} '{name}' has no description"


def test_unknown_name_lists_known_ones():
    with pytest.raises(
        ConfigError,
        match=r"unknown loss 'crossentropy'.*did you mean 'cross_entropy'.*known: binary_cross_entropy, cross_entropy, quadratic",
    ):
        R.losses.get("crossentropy")


def test_double_registration_is_refused():
    reg = R.Registry("thing")

    @reg.register("a")
    class A:
        """A."""

    with pytest.raises(ValueError, match="registered twice"):

        @reg.register("a")
        class B:
            """B."""


def test_course_components_are_registered():
    assert {
        "sigmoid",
        "tanh",
        "softsign",
        "relu",
        "leaky_relu",
        "softplus",
        "softmax",
        "sign",
    } <= set(R.activations.names())
    assert {"quadratic", "cross_entropy", "binary_cross_entropy"} <= set(R.losses.names())
    assert {
        "small_uniform",
        "glorot_uniform",
        "glorot_normal",
        "he_uniform",
        "he_normal",
        "zeros",
    } <= set(R.initializers.names())
    assert {
        "xor",
        "xor_noisy",
        "and",
        "or",
        "moons",
        "circles",
        "spirals",
        "blobs",
        "sine_regression",
    } <= set(R.datasets.names())
    assert {"perceptron", "sequential"} <= set(R.models.names())
