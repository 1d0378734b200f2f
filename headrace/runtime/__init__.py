"""What every process runs on: settings, errors, paths, metrics, HTTP, crash points."""
