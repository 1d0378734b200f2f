"""stager: raw -> raw zone and error -> error zone, as JSON lines in date folders of the bucket."""
