"""Where things live: the Hydra configs and the shared benchmark data."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from one4all.errors import UserError

DATA_ENV = "ONE4ALL_DATA_ROOT"


def config_dir() -> Path:
    """Directory holding the Hydra configs (repository `configs/`, installed as `one4all.configs`)."""
    repo_configs = Path(__file__).resolve().parent.parent / "configs"
    if (repo_configs / "train.yaml").is_file():
        return repo_configs
    return Path(str(resources.files("one4all.configs")))


def default_data_root() -> Path | None:
    """The benchmark data folder: `$ONE4ALL_DATA_ROOT`, else `../shared/data` beside the checkout."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    candidates = [
        Path(__file__).resolve().parent.parent.parent / "shared" / "data",
        Path.cwd().parent / "shared" / "data",
    ]
    return next((c for c in candidates if c.is_dir()), None)


def resolve_data_file(root: str | os.PathLike | None, path: str | os.PathLike) -> Path:
    """Resolve `path` against `root` unless it is absolute; without `root`, against the working
    directory if the file is there, else the default data root.

    `pkg://package.module/file.csv` names a file shipped inside an installed package.
    """
    text = str(path)
    if text.startswith("pkg://"):
        package, _, name = text[len("pkg://"):].partition("/")
        try:
            return Path(str(resources.files(package) / name))
        except (ModuleNotFoundError, ValueError, TypeError) as err:
            raise UserError(f"{text}: no installed package {package!r} ({err}); pkg:// names a file inside an "
                            "installed Python package, e.g. pkg://tsdata.fpp3/vic_elec.csv") from None
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    if root:
        return (Path(root).expanduser() / p).resolve()
    base = default_data_root()
    # A file beside the user (`data.path=my.csv`) wins; benchmark paths fall back to the data root.
    if base is None or p.is_file():
        return p.resolve()
    return (base / p).resolve()
