"""Exporters to monitoring systems: ``callmetrics.exporters.prometheus`` and ``.otel``."""
