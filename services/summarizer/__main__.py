"""python -m services.summarizer: the same as `headrace run summarizer`."""

from headrace.cli import service_main

service_main("summarizer")
