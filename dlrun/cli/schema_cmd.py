"""dlrun schema"""

from __future__ import annotations

import json

from dlrun.cli import app
from dlrun.cli._util import handle_errors


@app.command()
def schema() -> None:
    """Print the JSON Schema of config files (for editor completion and checking)."""
    from dlrun.config.schema import json_schema

    with handle_errors():
        print(json.dumps(json_schema(), indent=2))
