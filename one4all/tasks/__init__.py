"""Task modules: one LightningModule per task, sharing tasks.base.TaskModule."""
