"""Generate docs/reference/configuration.md from the Hydra configs in configs/.

    python scripts/config_reference.py            # rewrite the page
    python scripts/config_reference.py --check    # exit 1 if the page is out of date (tests run this)

Every config group is a section, every option file a subsection: its leading comment, then each
key with its default and the comment on its line. The configs are the single source: change a
comment or a default there and regenerate.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"
PAGE = REPO / "docs" / "reference" / "configuration.md"
# Groups in the order a reader meets them; any other folder follows alphabetically.
ORDER = ["task", "data", "model", "adapter", "trainer", "callbacks", "logger", "debug", "scheduler", "experiment"]
_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w.@/-]*):(?P<value>[^#]*?)\s*(?:#\s?(?P<comment>.*))?$")


def leading_comment(lines: list[str]) -> str:
    """The comment block at the top of a file (without `# @package` directives)."""
    text = []
    for line in lines:
        if not line.startswith("#"):
            break
        body = line[1:].strip()
        if not body.startswith("@package"):
            text.append(body)
    return " ".join(t for t in text if t)


def keys(lines: list[str]) -> list[tuple[str, str, str]]:
    """(dotted key, default, comment) of every mapping key outside the defaults list."""
    rows, stack, in_defaults, above, started = [], [], False, [], False
    for line in lines:
        if line.lstrip().startswith("#"):
            # A comment block right above a key describes that key; the file's leading block does not.
            if started:
                above.append(line.strip()[1:].strip())
            continue
        started = started or bool(line.strip())
        if not line.strip():
            above = []
            continue
        described, above = " ".join(above), []
        if line.lstrip().startswith("- "):
            continue  # list items: the defaults list or a list value spelled over lines
        match = _KEY.match(line)
        if match is None:
            continue
        depth = len(match["indent"]) // 2
        stack = stack[:depth] + [match["key"]]
        if depth == 0:
            in_defaults = match["key"] == "defaults"
        if in_defaults:
            continue
        value = match["value"].strip()
        comment = (match["comment"] or "").strip() or described
        if value or comment:
            rows.append((".".join(stack), value or "(see below)", comment))
    return rows


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def render() -> str:
    """The whole reference page."""
    groups = sorted((p for p in CONFIGS.iterdir() if p.is_dir() and not p.name.startswith("_")),
                    key=lambda p: (ORDER.index(p.name) if p.name in ORDER else len(ORDER), p.name))
    out = ["# Configuration reference", "",
           "Generated from `configs/` by `python scripts/config_reference.py`; do not edit by hand.",
           "Pick an option of a group with `group=option` (e.g. `data=csv`), override a key with",
           "`key=value` (e.g. `data.batch_size=64`). `train.yaml`, `compare.yaml` and `backtest.yaml` are the "
           "entry configs.", ""]
    for entry in ("train.yaml", "compare.yaml", "backtest.yaml"):
        out += section(CONFIGS / entry, f"## `{entry}`")
    for group in groups:
        out += [f"## `{group.name}/`", ""]
        for path in sorted(group.rglob("*.yaml")):
            option = path.relative_to(group).with_suffix("").as_posix()
            # Keys of a plain group file live under the group's name; `_global_` files say where.
            prefix = "" if "@package" in path.read_text() or "/" in option else f"{group.name}."
            # A file in a subfolder is an option of a nested group (model/backbone/minilm.yaml: model/backbone=minilm).
            subgroup, _, name = option.rpartition("/")
            out += section(path, f"### `{'/'.join(filter(None, (group.name, subgroup)))}={name}`", prefix)
    return "\n".join(out).rstrip() + "\n"


def section(path: Path, title: str, prefix: str = "") -> list[str]:
    lines = path.read_text().splitlines()
    out = [title, ""]
    about = leading_comment(lines)
    if about:
        out += [about, ""]
    rows = keys(lines)
    if rows:
        out += ["| key | default | about |", "|---|---|---|"]
        out += [f"| `{cell(prefix + k)}` | `{cell(v)}` | {cell(c)} |" for k, v, c in rows]
        out.append("")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the page differs from the configs")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = PAGE.read_text() if PAGE.is_file() else ""
        if current != text:
            print(f"{PAGE.relative_to(REPO)} is out of date: run python scripts/config_reference.py", file=sys.stderr)
            return 1
        return 0
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(text)
    print(f"wrote {PAGE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
