"""The command line: thin commands, clear errors, exit codes."""

import json
import re

import pytest
import yaml

from dlrun import __version__
from dlrun.cli import app
from tests.cli.conftest import invoke, runner
from tests.conftest import CONFIGS, REGRESSION, small_config
from tests.training.test_evaluate import SIZES, reference_metrics, split_sizes_run


@pytest.fixture
def cfg_file(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(small_config()))
    return path


def test_help_and_version():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("train", "gradcheck", "eval", "runs", "config", "schema", "list", "plot"):
        assert command in result.output
    assert invoke("--version").output.strip() == f"dlrun {__version__}"
    train_help = invoke("train", "--help").output
    for option in ("--set", "--runs-dir", "--name", "--resume", "--quiet"):
        assert option in train_help


def test_train_runs_and_eval(cfg_file, tmp_path):
    runs = tmp_path / "runs"
    result = invoke(
        "train", cfg_file, "--runs-dir", runs, "--quiet", "--set", "train.epochs=2", "--name", "cli"
    )
    assert result.exit_code == 0, result.output
    assert "epoch 2/2" in result.output and "status: completed" in result.output
    run_dir = next(runs.iterdir())
    assert run_dir.name.startswith("cli-")
    table = invoke("runs", runs)
    assert table.exit_code == 0 and run_dir.name in table.output and "completed" in table.output
    ev = invoke("eval", run_dir, "--split", "val", "--checkpoint", "last")
    assert ev.exit_code == 0 and "accuracy" in ev.output
    assert invoke("eval", run_dir, "--split", "nope").exit_code == 2


def test_tables_written_to_a_pipe_keep_their_cells_whole(cfg_file, tmp_path, monkeypatch):
    """rich cuts a table to 80 columns when it is not writing to a terminal: a long run
    name then squeezed the status and best-metric cells to "comp…" and "val_…"."""
    from dlrun.cli import _util

    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr(_util, "console", _util.make_console())
    runs = tmp_path / "runs"
    name = "a-run-name-long-enough-to-fill-half-a-line"
    assert invoke("train", cfg_file, "--runs-dir", runs, "-q", "--name", name).exit_code == 0
    monkeypatch.setattr("dlrun.cli.runs_cmd.console", _util.console)
    out = invoke("runs", runs).output
    assert name in out and "completed" in out and "val_loss 0." in out, out
    assert "…" not in out, out
    assert _util.console.width == _util.PIPE_WIDTH
    monkeypatch.setenv("COLUMNS", "90")
    assert _util.make_console().width == 90


def test_config_error_is_one_message_exit_2_no_traceback(tmp_path):
    cfg = small_config()
    cfg["optimiser"] = {"name": "gd"}
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(cfg))
    result = invoke("train", path, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2
    assert (
        "unknown key 'optimiser'" in result.output and "did you mean 'optimizer'" in result.output
    )
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def test_debug_shows_the_traceback(tmp_path):
    result = runner.invoke(app, ["--debug", "train", str(tmp_path / "missing.yaml")])
    assert result.exit_code != 0 and result.exception is not None
    assert "missing.yaml" in str(result.exception)


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "nope.yaml"], "config file not found: nope.yaml"),
        (["train"], "give a CONFIG file"),
        (["train", "{cfg}", "--set", "model.layers[9].units=1"], "does not exist"),
        (["train", "--resume", "{tmp}"], "is not a run directory"),
        (["eval", "{tmp}"], "is not a run directory"),
        (["config", "show", "{cfg}", "--set", "train.batch_size=-4"], "batch_size"),
        (["list", "nothing"], "unknown registry"),
        (["gradcheck", "denze"], "did you mean 'dense'"),
    ],
)
def test_errors_exit_2(cfg_file, tmp_path, args, message):
    args = [a.format(cfg=cfg_file, tmp=tmp_path) for a in args]
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_config_show_prints_the_resolved_config(cfg_file):
    result = invoke("config", "show", cfg_file, "--set", "optimizer.lr=0.01")
    assert result.exit_code == 0
    shown = yaml.safe_load(result.output)
    assert shown["optimizer"]["lr"] == 0.01 and shown["model"]["layers"][0]["bias_init"] == "zeros"


def test_schema_is_json_schema():
    result = invoke("schema")
    schema = json.loads(result.output)
    assert schema["title"] == "dlrun config" and "model" in schema["properties"]


def test_list_shows_every_registry_with_descriptions():
    out = invoke("list").output
    for word in (
        "layers",
        "activations",
        "losses",
        "optimizers",
        "initializers",
        "datasets",
        "models",
        "leaky_relu",
        "perceptron",
        "spirals",
        "Glorot",
    ):
        assert word in out
    assert "dense" in invoke("list", "layers").output


def test_plot_activations(tmp_path):
    out = tmp_path / "acts.png"
    result = invoke("plot", "activations", "--out", out)
    assert result.exit_code == 0 and out.stat().st_size > 10_000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gradcheck_named_and_config():
    result = invoke("gradcheck", "dense", "relu", "cross_entropy")
    assert result.exit_code == 0, result.output
    assert "all" in result.output and "passed" in result.output
    result = invoke("gradcheck", "--config", CONFIGS / "xor_mlp.yaml")
    assert result.exit_code == 0, result.output
    assert "network (end to end" in result.output


def test_gradcheck_fails_with_exit_1(monkeypatch):
    from dlrun.nn.layers.dense import Dense

    original = Dense.backward

    def wrong(self, dy):
        dx = original(self, dy)
        self.grads["b"] *= 2
        return dx

    monkeypatch.setattr(Dense, "backward", wrong)
    result = invoke("gradcheck", "dense")
    assert result.exit_code == 1 and "FAIL" in result.output


def test_error_messages_keep_square_brackets(cfg_file):
    # rich would read "[9]" as markup and drop it; the message must reach the user whole
    result = invoke("train", cfg_file, "--set", "model.layers[9].units=1")
    assert result.exit_code == 2
    assert (
        "model.layers[9].units=1" in result.output
        and "model.layers[9] does not exist" in result.output
    )


def test_resume_with_a_corrupt_checkpoint_is_exit_2_and_touches_nothing(cfg_file, tmp_path):
    runs = tmp_path / "runs"
    assert invoke("train", cfg_file, "--runs-dir", runs, "-q").exit_code == 0
    run_dir = next(runs.iterdir())
    (run_dir / "summary.json").write_text('{"status": "interrupted"}')
    last = run_dir / "checkpoints" / "last.npz"
    last.write_bytes(b"garbage")
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")}
    result = invoke("train", "--resume", run_dir)
    assert result.exit_code == 2 and "last.npz is corrupt" in result.output
    assert "Traceback" not in result.output
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")} == before


def test_a_diverging_run_says_where_and_exits_nonzero(tmp_path):
    cfg = small_config(**REGRESSION, optimizer={"name": "gd", "lr": 1e4})
    path = tmp_path / "boom.yaml"
    path.write_text(yaml.safe_dump(cfg))
    result = invoke("train", path, "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 1
    assert (
        "status: diverged" in result.output
        and "non-finite" in result.output
        and "dense_" in result.output
    )
    run_dir = next((tmp_path / "runs").iterdir())
    assert (run_dir / "checkpoints" / "last.npz").is_file()


def table_values(output):
    """{metric: value} from the metric table that ``dlrun eval`` prints."""
    return {
        m.group(1): float(m.group(2))
        for m in re.finditer(r"^│ (\w+)\s+│\s+([-+.\deE]+) │$", output, re.MULTILINE)
    }


@pytest.fixture(scope="module")
def sized_run(tmp_path_factory):
    return split_sizes_run(tmp_path_factory.mktemp("runs")).run_dir


@pytest.mark.parametrize("which", ["best", "last"])
@pytest.mark.parametrize("split", ["val", "test"])
def test_eval_reports_the_split_and_checkpoint_asked_for(sized_run, split, which):
    """val (20 samples) and test (60) differ in size; best (lowest val_loss) and last differ."""
    result = invoke("eval", sized_run, "--split", split, "--checkpoint", which)
    assert result.exit_code == 0, result.output
    assert f"({which}, {split})" in result.output
    shown = table_values(result.output)
    ref = reference_metrics(sized_run, split, which)
    assert set(shown) == {"loss", "accuracy", "n"}, result.output
    assert shown["n"] == ref["n"] == SIZES[split]
    assert shown["loss"] == pytest.approx(ref["loss"], rel=2e-5)  # printed to 6 digits
    assert shown["accuracy"] == pytest.approx(ref["accuracy"], rel=2e-5)
