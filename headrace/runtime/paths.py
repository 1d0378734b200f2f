"""Where the project's files live on disk."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCHEMAS_DIR = PROJECT_ROOT / "schemas"
WAREHOUSE_DDL_DIR = SCHEMAS_DIR / "warehouse"
