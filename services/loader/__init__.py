"""loader: validated -> clean-zone Parquet + warehouse tables, offsets in the same transaction."""
