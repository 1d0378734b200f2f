"""The bucket and the warehouse: zones, zone files, the DuckLake catalog and its lock."""
