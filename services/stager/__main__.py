"""python -m services.stager: the same as `headrace run stager`."""

from headrace.cli.main import service_main

service_main("stager")
