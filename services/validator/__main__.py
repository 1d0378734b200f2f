"""python -m services.validator: the same as `headrace run validator`."""

from headrace.runtime.errors import exit_on_operator_error
from services.validator.runner import main

exit_on_operator_error(main)
