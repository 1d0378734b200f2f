"""python -m services.validator: the same as `headrace run validator`."""

from headrace.cli import service_main

service_main("validator")
