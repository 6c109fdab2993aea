"""Detector plugins for aiops: metric anomaly, drift, data quality. Found by the daemon through entry points."""
