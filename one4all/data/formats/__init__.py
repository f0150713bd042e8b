"""Parsers: one public file format each, into arrays, timestamps and labels, with one-line errors."""
