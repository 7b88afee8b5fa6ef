import pkgutil
import subprocess
import sys

import pytest

import dlrun.data
import dlrun.nn.layers
from dlrun.config import catalog
from dlrun.config import registry as R
from dlrun.errors import ConfigError


def test_every_registry_is_filled_and_described():
    for kind, reg in catalog.load().items():
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
    reg = R.Registry("thing", "tests")

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


@pytest.mark.parametrize("package", [dlrun.nn.layers, dlrun.data])
def test_every_module_that_registers_is_imported_by_its_package(package):
    """A new layer or dataset file must be listed in its package's __init__, or it would
    silently be missing from the registry."""
    imported = {name for name, value in vars(package).items() if hasattr(value, "__file__")}
    for info in pkgutil.iter_modules(package.__path__):
        source = open(f"{package.__path__[0]}/{info.name}.py").read()
        if ".register(" in source:
            assert info.name in imported, f"{package.__name__}.{info.name} is not imported"


def test_build_makes_the_component_from_its_settings():
    opt = R.optimizers.build({"name": "rmsprop", "lr": 0.5, "beta": 0.8}, 3, "float64")
    assert type(opt).registered_name == "rmsprop"
    assert opt.config.lr == 0.5 and opt.config.beta == 0.8
    layer = R.layers.build({"type": "dense", "units": 7}, name="d")
    assert layer.name == "d" and layer.config.units == 7


def test_a_registry_whose_package_was_not_imported_says_so():
    code = (
        "from dlrun.config import registry as R\n"
        "try:\n    R.optimizers.get('adam')\n"
        "except RuntimeError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "import dlrun.optim.optimizers before looking up optimizers" in out
