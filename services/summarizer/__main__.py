"""python -m services.summarizer: the same as `headrace run summarizer`."""

from headrace.cli.main import service_main

service_main("summarizer")
