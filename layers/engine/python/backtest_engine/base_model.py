"""The base of every pydantic model of the engine and the service.

`defer_build`: a model's validator and serializer are built the first time it is used, not when its module
is imported. A function imports the route table and with it every request and response model of the API,
but uses a few; building all of them at import cost about 100 ms of each API function's cold start (measured
with `local/cold_start.py`: symbols 308 → 203 ms) against about 2 ms at the first request for the ones it uses.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    model_config = ConfigDict(defer_build=True)
