"""Commands in a fresh interpreter: nothing imported by other tests can hide a registry
that the command itself forgot to fill."""

import subprocess
import sys

import pytest


def dlrun(*args: str) -> subprocess.CompletedProcess:
    code = "import sys; from dlrun.cli import main; sys.argv[0] = 'dlrun'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "kind, name",
    [("optimizers", "nadam"), ("layers", "lstm"), ("datasets", "spirals"), ("losses", "quadratic")],
)
def test_list_in_a_fresh_process_shows_the_registered_components(kind, name):
    result = dlrun("list", kind)
    assert result.returncode == 0, result.stderr
    assert name in result.stdout


def test_schema_in_a_fresh_process_types_clip_and_augment():
    import json

    result = dlrun("schema")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    defs = json.dumps(schema)
    # the train section's clip and augment are typed sections, not free-form objects
    assert '"ClipConfig"' in defs and '"AugmentConfig"' in defs
    assert '"global_norm"' in defs and '"rotation"' in defs
