"""python -m services.producer: the same as `headrace run producer`."""

from headrace.runtime.errors import exit_on_operator_error
from services.producer.runner import main

exit_on_operator_error(main)
