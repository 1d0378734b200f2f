"""producer: replays batch files into the raw topic, and accepts events over HTTP."""
