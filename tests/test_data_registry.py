"""`one4all data list|check|fetch`: the registry, verification, and downloads from a local HTTP server."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading

import pytest
import yaml

from one4all.cli import main
from one4all.config import compose_config
from one4all.data.registry import digest, load_registry

SUITE = ("etth1", "etth2", "ettm1", "ettm2", "weather", "electricity", "traffic", "exchange", "illness")
GOOD = b"date,a,OT\n2020-01-01 00:00:00,1.0,2.0\n2020-01-01 01:00:00,1.5,2.5\n"


@pytest.fixture()
def server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving tmp_path/www: good.csv, corrupt.csv (one byte changed), long.csv."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "good.csv").write_bytes(GOOD)
    (www / "corrupt.csv").write_bytes(GOOD.replace(b"1.5", b"1.6"))
    (www / "long.csv").write_bytes(GOOD + b"2020-01-01 02:00:00,1.7,2.7\n")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep the test output clean
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def registry_file(tmp_path, base: str) -> str:
    sha = hashlib.sha256(GOOD).hexdigest()
    entry = {"path": "toy/toy.csv", "bytes": len(GOOD), "sha256": sha, "source": "test server"}
    datasets = {
        "good": {"files": [{**entry, "url": f"{base}/good.csv"}]},
        "corrupt": {"files": [{**entry, "url": f"{base}/corrupt.csv"}]},
        "long": {"files": [{**entry, "url": f"{base}/long.csv"}]},
        "missing": {"files": [{**entry, "url": f"{base}/none.csv"}]},
        "nosum": {"files": [{"path": "nosum/toy.csv", "url": f"{base}/good.csv", "rows": 2, "source": "test"}]},
    }
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump({"datasets": datasets}))
    return str(path)


def test_list_shows_the_suite_with_sources(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in SUITE:
        assert f"| {name} | data=" in out
    assert "| etth1 | data=etth1 | ETTh1/ETTh1.csv | 2,589,657 | sha256 f18de3ad269cef59… |" in out
    assert "| weather | data=weather | weather/weather.csv | ? | unknown (unverified) | no direct download" in out


def test_every_registry_config_composes_and_points_at_its_file():
    registry = load_registry()
    for name in SUITE:
        cfg, _ = compose_config([registry[name].config])
        assert cfg.data.path == registry[name].files[0].path


def test_fetch_stores_a_verified_download(tmp_path, server, capsys):
    reg, root = registry_file(tmp_path, server), tmp_path / "data"
    assert main(["data", "--registry", reg, "fetch", "good", "--root", str(root)]) == 0
    assert (root / "toy" / "toy.csv").read_bytes() == GOOD
    assert "toy/toy.csv: stored, 66 bytes, sha256 verified" in capsys.readouterr().out
    assert main(["data", "--registry", reg, "fetch", "good", "--root", str(root)]) == 0  # already there: verified
    assert "already there, 66 bytes, sha256 verified" in capsys.readouterr().out


@pytest.mark.parametrize("name, reason", [("corrupt", "fails verification (sha256"),
                                          ("long", "is corrupt (more than the expected 66 bytes)"),
                                          ("missing", "cannot download toy/toy.csv")])
def test_fetch_refuses_a_bad_download_and_leaves_nothing(tmp_path, server, capsys, name, reason):
    reg, root = registry_file(tmp_path, server), tmp_path / "data"
    assert main(["data", "--registry", reg, "fetch", name, "--root", str(root)]) == 2
    assert reason in capsys.readouterr().err
    assert list(root.rglob("*")) == []  # no file, no temp file, no folder made for it


def test_fetch_never_overwrites_an_existing_file(tmp_path, server, capsys):
    reg, root = registry_file(tmp_path, server), tmp_path / "data"
    (root / "toy").mkdir(parents=True)
    (root / "toy" / "toy.csv").write_bytes(b"mine")
    assert main(["data", "--registry", reg, "fetch", "good", "--root", str(root)]) == 2
    assert "exists but fails verification (4 bytes, expected 66); it is left as it is" in capsys.readouterr().err
    assert (root / "toy" / "toy.csv").read_bytes() == b"mine"


def test_a_file_without_checksum_is_stored_only_when_allowed(tmp_path, server, capsys):
    reg, root = registry_file(tmp_path, server), tmp_path / "data"
    assert main(["data", "--registry", reg, "fetch", "nosum", "--root", str(root)]) == 2
    assert "no published checksum" in capsys.readouterr().err
    assert list(root.rglob("*")) == []
    assert main(["data", "--registry", reg, "fetch", "nosum", "--root", str(root), "--allow-unverified"]) == 0
    sha = digest(root / "nosum" / "toy.csv").sha256
    assert f"stored, 66 bytes, 2 rows as expected; no published checksum to compare (sha256 {sha})" in (
        capsys.readouterr().out)


def test_check_verifies_what_is_there(tmp_path, server, capsys):
    reg, root = registry_file(tmp_path, server), tmp_path / "data"
    (root / "toy").mkdir(parents=True)
    (root / "toy" / "toy.csv").write_bytes(GOOD)
    assert main(["data", "--registry", reg, "check", "good", "nosum", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "ok         good" in out and "missing    nosum" in out and out.rstrip().endswith("1 missing, 1 ok")
    (root / "toy" / "toy.csv").write_bytes(GOOD[:-5])
    assert main(["data", "--registry", reg, "check", "good", "--root", str(root)]) == 1
    assert "failed     good             toy/toy.csv: 61 bytes, expected 66" in capsys.readouterr().out


def test_check_on_the_shared_data(data_root, tmp_path, capsys):
    assert main(["data", "check", "--root", str(data_root)]) == 0
    out = capsys.readouterr().out
    assert "ok         etth1            ETTh1/ETTh1.csv: 2,589,657 bytes, sha256 verified" in out
    assert "ok         ettm1            ETTm1/ETTm1.csv: 10,360,719 bytes, sha256 verified" in out
    (tmp_path / "ETTh1").mkdir()
    (tmp_path / "ETTh1" / "ETTh1.csv").write_bytes((data_root / "ETTh1" / "ETTh1.csv").read_bytes()[:100_000])
    assert main(["data", "check", "etth1", "--root", str(tmp_path)]) == 1
    assert "failed     etth1            ETTh1/ETTh1.csv: 100,000 bytes, expected 2,589,657" in capsys.readouterr().out


def test_a_malformed_registry_is_one_line(tmp_path, capsys):
    bad = tmp_path / "r.yaml"
    bad.write_text("datasets:\n  x:\n    files:\n      - path: ../../etc/passwd\n")
    assert main(["data", "--registry", str(bad), "list"]) == 2
    assert "must stay inside the data root" in capsys.readouterr().err
