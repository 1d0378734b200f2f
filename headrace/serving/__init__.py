"""The service process shell: settings, logging, health server and consumer loop together."""
