"""The package's version: the bottom of the import graph, importing nothing."""

__version__ = "0.1.0"
