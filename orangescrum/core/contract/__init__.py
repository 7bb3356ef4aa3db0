"""The event contract every stage shares: the Avro schemas, their registry and the vocabulary.

The producer writes it and the stream reads it, so it lives in the base layer rather than in
either stage.
"""

from pathlib import Path

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
# Subject -> version -> schema id of the file-backed registry, committed with the schemas.
REGISTRY_FILE = SCHEMA_DIR / "registry.json"
