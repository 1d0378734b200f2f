"""python -m services.loader: the same as `headrace run loader`."""

from headrace.runtime.errors import exit_on_operator_error
from services.loader.runner import main

exit_on_operator_error(main)
