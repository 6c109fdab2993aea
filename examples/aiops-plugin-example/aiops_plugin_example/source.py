"""A source: the number currently written in a text file, as one series."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from aiops.errors import SourceError
from aiops.plugins import Source
from aiops.types import Frame, Series


class GaugeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a typo in the config is an error, not a silent default

    path: str = Field(description="text file holding one number")
    name: str = Field("gauge", description="series name")


class GaugeFileSource(Source):
    """Reads one number from a text file at every tick (example third-party source)."""

    Params = GaugeParams
    params: GaugeParams

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        return [{"path": "value.txt"}, {"path": "value.txt", "name": "queue_depth"}]

    def collect(self, since: float | None, until: float) -> Frame:
        try:
            value = float(Path(self.params.path).read_text().strip())
        except FileNotFoundError:
            raise SourceError(f"{self.params.path} does not exist (yet)", recoverable=True) from None
        except ValueError:
            raise SourceError(f"{self.params.path} does not hold a number", recoverable=False) from None
        return Frame(source="example_gauge", collected_at=until, series=(Series(self.params.name, (until,), (value,)),))
