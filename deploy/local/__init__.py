"""The local dev stack and the tools that run on it: the Kafka and schema-registry runners (``kafka``,
``registry``, ``jvm``; the Maven poms they fetch with are in ``java/``), ``demo``, ``status`` and ``bench``.

Imported by the CLI and the tests only, never by schemas, the core, producers or consumers (``lint-imports``)."""
