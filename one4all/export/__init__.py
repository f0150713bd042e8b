"""Export a trained forecaster for devices: merged inference graph, runtime formats, package folder."""

from one4all.export.package import export_run

__all__ = ["export_run"]
