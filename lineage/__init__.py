"""The lineage graph: nodes, edges, ingestion, graph stores, queries and exports."""
