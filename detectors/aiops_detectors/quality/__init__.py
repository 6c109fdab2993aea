"""Data-quality detectors: schema, null rate, value range, categories, duplicate keys, freshness, volume."""
