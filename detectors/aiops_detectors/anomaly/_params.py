"""The likelihood and debounce parameters that every likelihood-normalised detector shares.

``default``, ``knn``, ``bocpd`` (and ``multivariate``, through ``default``) turn a raw score into a calibrated
surprise with the same anomaly likelihood and page through the same debounce (``_base.Likelihood``,
``_base.Debounce`` and their compiled twins). Declaring the knobs once keeps their names, bounds and
meaning the same in every detector's configuration; a detector changes only a default it tunes differently.
"""

from __future__ import annotations

from pydantic import Field

from aiops.detection import SeriesDetectorParams


class CalibratedParams(SeriesDetectorParams):
    """A detector's threshold, the anomaly likelihood behind its score, and the debounce of its alerts."""

    threshold: float = Field(
        0.6, ge=0.0, le=1.0, description="anomaly score at or above which a finding is raised (= alert_level)"
    )
    history: int = Field(5000, ge=50, description="raw scores behind the likelihood")
    min_std: float = Field(0.2, ge=0.0, description="floor of the raw score's deviation in the likelihood")
    learn: int = Field(150, ge=0, description="points of learning transient kept out of the likelihood")
    warmup: int = Field(30, ge=0, description="points after 'learn' before anything is reported")
    rest: int = Field(100, ge=0, description="points muted after an alert")
    alert_level: float = Field(0.6, gt=0.0, le=1.0, description="score that starts a rest period")
    cooldown: int = Field(500, ge=0, description="points after an alert during which cooldown_level applies")
    cooldown_level: float = Field(0.8, gt=0.0, le=1.0, description="score needed to alert again in cooldown")
