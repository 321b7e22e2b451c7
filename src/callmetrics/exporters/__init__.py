"""Exporters to monitoring systems: ``callmetrics.exporters.prometheus`` and ``.otel``.

Each needs its extra (``pip install 'callmetrics[prometheus]'`` or
``'callmetrics[otel]'``); this package itself imports neither, so ``import
callmetrics`` works without them.  The format-neutral parts are modules here:
``buckets`` (classic bounds), ``native`` (sketch to exponential histogram),
``model`` (families and namings), ``exemplars``, ``protobuf`` (the Prometheus
protobuf exposition), ``assets`` (the shipped Grafana dashboard and Prometheus rules).
"""

from callmetrics.exporters.buckets import DEFAULT_BUCKETS

__all__ = ["DEFAULT_BUCKETS"]
