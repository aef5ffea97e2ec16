"""registry-monitor: watch clinical-trial registry records and say what changed."""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
