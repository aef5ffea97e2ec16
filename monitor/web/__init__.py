"""The read-only web page of `monitor serve` (see :mod:`monitor.web.app`)."""
