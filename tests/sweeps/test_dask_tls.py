"""dlrun compare on a Dask cluster over TLS (mutual, with a CA of the test's own).

The certificates are made by the ``openssl`` command for each pytest run: a CA, one
certificate it signed (the scheduler's, the workers' and the client's), and a rogue CA
with a client certificate of its own. The cluster is a ``distributed.LocalCluster`` on
127.0.0.1 that requires encryption.
"""

from __future__ import annotations

import csv
import shutil
import subprocess

import pytest
import yaml

from dlrun.errors import ConfigError
from dlrun.sweeps.compare import compare
from dlrun.sweeps.executors import dask_security
from tests.cli.conftest import invoke
from tests.conftest import small_config

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")

EXTENSIONS = """\
basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
"""


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _key_and_request(name, subject, cwd):
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=cwd,
    )  # fmt: skip


def _ca(name, cwd):
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name}",
        cwd=cwd,
    )  # fmt: skip


def _signed(name, ca, cwd):
    _key_and_request(name, "/CN=127.0.0.1", cwd)
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", "ext.cnf", cwd=cwd,
    )  # fmt: skip


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    (d / "ext.cnf").write_text(EXTENSIONS)
    _ca("ca", d)
    _signed("node", "ca", d)
    _ca("rogue_ca", d)
    _signed("rogue", "rogue_ca", d)
    return d


@pytest.fixture(scope="module")
def cluster(certs):
    security = distributed.Security(
        tls_ca_file=str(certs / "ca.pem"),
        tls_scheduler_cert=str(certs / "node.pem"),
        tls_scheduler_key=str(certs / "node.key"),
        tls_worker_cert=str(certs / "node.pem"),
        tls_worker_key=str(certs / "node.key"),
        tls_client_cert=str(certs / "node.pem"),
        tls_client_key=str(certs / "node.key"),
        require_encryption=True,
    )
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        protocol="tls://",
        security=security,
        dashboard_address=None,
    ) as cluster:
        assert cluster.scheduler_address.startswith("tls://127.0.0.1:")
        yield cluster


def tls_options(certs, ca="ca", name="node"):
    return ["--tls-ca-file", certs / f"{ca}.pem", "--tls-cert", certs / f"{name}.pem"] + [
        "--tls-key",
        certs / f"{name}.key",
    ]


@pytest.fixture
def cfg_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(small_config(train={"epochs": 2, "batch_size": 32})))
    return path


def _numbers(path):
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    drop = ("run_dir", "seconds", "seconds_per_epoch")
    return [{k: v for k, v in r.items() if k not in drop} for r in rows]


def test_a_sweep_over_tls_gives_the_numbers_of_a_local_one(cluster, certs, cfg_file, tmp_path):
    sweep = [cfg_file, "--grid", "optimizer.name=gd,adam", "--quiet"]
    local = invoke("compare", *sweep, "--runs-dir", tmp_path / "local")
    assert local.exit_code == 0, local.output
    remote = invoke(
        "compare",
        *sweep,
        "--runs-dir",
        tmp_path / "dask",
        "--executor",
        "dask",
        "--address",
        cluster.scheduler_address,
        *tls_options(certs),
    )
    assert remote.exit_code == 0, remote.output
    numbers = _numbers(tmp_path / "dask" / "tiny" / "results.csv")
    assert [r["status"] for r in numbers] == ["completed", "completed"]
    assert numbers == _numbers(tmp_path / "local" / "tiny" / "results.csv")


@pytest.mark.parametrize(
    "how,message",
    [
        ("no certificates", "requires TLS: give this client's certificates"),
        ("plain tcp", "a scheduler that requires TLS (tls://) refuses a client without"),
        ("rogue certificates", "TLS connection to the Dask scheduler at tls://127.0.0.1"),
        ("rogue CA", "TLS connection to the Dask scheduler at tls://127.0.0.1"),
    ],
)
def test_a_client_without_the_cluster_s_certificates_is_refused(
    cluster, certs, cfg_file, tmp_path, how, message
):
    address, options = cluster.scheduler_address, []
    if how == "plain tcp":
        address = address.replace("tls://", "tcp://")
    elif how == "rogue certificates":
        options = tls_options(certs, ca="ca", name="rogue")
    elif how == "rogue CA":
        options = tls_options(certs, ca="rogue_ca", name="node")
    result = invoke(
        "compare",
        cfg_file,
        "--runs-dir",
        tmp_path / "runs",
        "--executor",
        "dask",
        "--address",
        address,
        "--timeout",
        "5",
        *options,
    )
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def test_tls_options_are_checked_before_connecting(certs, tmp_path):
    ca, cert, key = (certs / n for n in ("ca.pem", "node.pem", "node.key"))
    security = dask_security("tls://10.0.0.1:8786", ca, cert, key)
    assert security.require_encryption and security.tls_client_cert == str(cert)
    assert dask_security("tcp://10.0.0.1:8786") is None
    for args, message in (
        (("tls://h:1", ca, cert, None), "missing: --tls-key"),
        (("tcp://h:1", ca, cert, key), "TLS certificates given but the address is tcp://h:1"),
        (("tls://h:1", ca, tmp_path / "none.pem", key), "--tls-cert"),
    ):
        with pytest.raises(ConfigError, match=message):
            dask_security(*args)
    with pytest.raises(ConfigError, match="are for --executor dask"):
        compare({"base": small_config()}, runs_dir=tmp_path / "runs", tls={"ca_file": ca})
