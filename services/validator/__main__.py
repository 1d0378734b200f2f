"""python -m services.validator: the same as `headrace run validator`."""

from headrace.cli.main import service_main

service_main("validator")
