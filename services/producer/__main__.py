"""python -m services.producer: the same as `headrace run producer`."""

from headrace.cli.main import service_main

service_main("producer")
