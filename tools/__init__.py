"""Development tools that are not part of the runtime (the image does not carry them)."""
