"""Package discovery only (metadata is in pyproject.toml): ship configs/ as one4all.configs, and the
package's data files (published results, the dataset registry)."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["one4all", "one4all.*"]), "one4all.configs"],
    package_dir={"one4all.configs": "configs"},
    package_data={"one4all.configs": ["*.yaml", "*/*.yaml", "*/*/*.yaml", "*/*/*/*.yaml"],
                  "one4all.report": ["*.csv"], "one4all.data": ["*.yaml"]},
)
