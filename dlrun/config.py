"""Config files: YAML load, ``extends:``, dotted overrides, validation.

(The loader is filled in below the settings base class.)
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Settings(BaseModel):
    """Base of every config section: unknown keys are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
