"""The base layer: what every stage shares and nothing of the project above it.

Settings, errors, the lake layout and its filesystems, the event contract (schemas, registry,
topics), managed processes (the local broker, the JVM jar cache) and logging. Enforced by the
import-linter contracts in pyproject.toml.
"""
