"""The base of every config section: a leaf module (pydantic only), so that any component
can declare its settings without importing the rest of the config machinery."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Settings(BaseModel):
    """Base of every config section: unknown keys are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
