"""Where the project's files live on disk: the schemas, the warehouse migrations, the Kafka
poms and the broker's metrics rules.

The repository keeps them at its top (schemas/, infra/), beside the package. A wheel carries them
as package data inside the package instead (pyproject.toml maps them to headrace/schemas and
headrace/infra), because an installed package has nothing beside it but site-packages. So the
package looks inside itself first, and falls back to the checkout it sits in (an editable
install, or the source tree on sys.path). Every path to these files is built here.

docker-compose.yml and deploy/ (Prometheus and Alertmanager configuration) exist in a checkout
only: `headrace stack` runs what compose declares, so it needs the checkout.

Nothing here is a place to write: state and output (the bucket, the catalog, the local broker's
data, the demo) default to folders under the current directory, in the settings.
"""

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parents[1]
_INSTALLED = (_PACKAGE_DIR / "schemas").is_dir()

_DATA_ROOT = _PACKAGE_DIR if _INSTALLED else _PACKAGE_DIR.parent
SCHEMAS_DIR = _DATA_ROOT / "schemas"
WAREHOUSE_DDL_DIR = SCHEMAS_DIR / "warehouse"
KAFKA_POM = _DATA_ROOT / "infra" / "kafka" / "pom.xml"
KAFKA_METRICS_AGENT_POM = _DATA_ROOT / "infra" / "kafka" / "metrics-agent.pom.xml"
KAFKA_METRICS_RULES = _DATA_ROOT / "infra" / "kafka" / "kafka-metrics.yml"
COMPOSE_FILE = _PACKAGE_DIR.parent / "docker-compose.yml"
DEPLOY_DIR = _PACKAGE_DIR.parent / "deploy"
