"""python -m services.stager: the same as `headrace run stager`."""

from headrace.runtime.errors import exit_on_operator_error
from services.stager.runner import main

exit_on_operator_error(main)
