"""`arena.ranking` is pure maths: importing it loads neither Django nor Celery."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_ranking_loads_no_django_and_no_celery() -> None:
    script = (
        "import json, sys; import arena.ranking; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded = set(json.loads(done.stdout))
    assert "arena" in loaded, "the import did not happen"
    assert "numpy" in loaded, "the import did not happen"
    assert "django" not in loaded
    assert "celery" not in loaded
    assert "models_backend" not in loaded
