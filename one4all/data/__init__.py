"""Data flows one way: readers -> splits -> sources -> windows -> datamodule."""
