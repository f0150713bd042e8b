"""Where things live: the Hydra configs and the shared benchmark data."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

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
    """Resolve `path` against `root` (or the default data root) unless it is absolute.

    `pkg://package.module/file.csv` names a file shipped inside an installed package.
    """
    text = str(path)
    if text.startswith("pkg://"):
        package, _, name = text[len("pkg://"):].partition("/")
        return Path(str(resources.files(package) / name))
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    base = Path(root).expanduser() if root else default_data_root()
    if base is None:
        # Relative to the working directory, as a user typing a path expects.
        return p.resolve()
    return (base / p).resolve()
