"""Data flows one way: formats (parse files) -> sources (data specs: split, scale) -> windows
(task datasets and protocols) -> datamodule (batches, across DDP ranks)."""
