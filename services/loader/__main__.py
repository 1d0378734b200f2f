"""python -m services.loader: the same as `headrace run loader`."""

from headrace.cli.main import service_main

service_main("loader")
