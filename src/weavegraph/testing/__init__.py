"""What users need to test their graphs and backends (see ``weavegraph.testing.conformance``)."""
