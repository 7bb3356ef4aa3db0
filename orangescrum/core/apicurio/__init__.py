"""The local schema registry: Apicurio Registry, built from Maven Central and run on loopback.

Apicurio serves the Confluent Schema Registry API at /apis/ccompat/v7, so the project's
`ConfluentSchemaRegistry` client (orangescrum/core/contract/registry.py) talks to it as to any
Confluent-compatible registry. Maven Central has its modules but no runnable jar: `build`
assembles one with Maven (`maven` finds or downloads it) from pom.xml here, once per jar cache;
`server` runs it with its subjects and ids in an H2 file under the data dir.
"""
