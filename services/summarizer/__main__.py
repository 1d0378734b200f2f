"""python -m services.summarizer: the same as `headrace run summarizer`."""

from headrace.runtime.errors import exit_on_operator_error
from services.summarizer.runner import main

exit_on_operator_error(main)
