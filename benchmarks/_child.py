"""Run one measurement in a fresh Python process and read back its JSON result."""

import json
import os
import subprocess
import sys


def run_in_child(statement, environment=None):
    """Execute ``statement`` (which prints one JSON value last) in a new interpreter.

    A fresh process gives each measurement its own peak resident-set size.
    ``environment`` adds variables to the child's environment only.
    """
    out = subprocess.run(
        [sys.executable, "-c", f"import json; {statement}"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(environment or {})},
    )
    record = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps(record), flush=True)
    return record
