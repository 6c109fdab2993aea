"""Readable Python versions of what the compiled detector kernels compute, kept only to check them.

The detectors run the numba kernels (``aiops_detectors.anomaly._default_kernel`` and friends); these
classes compute the same arithmetic step by step, so a test can compare the two point by point.
"""
