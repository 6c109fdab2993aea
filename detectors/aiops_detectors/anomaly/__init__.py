"""Streaming metric anomaly detectors (NAB-tuned) and the ``default`` ensemble."""
