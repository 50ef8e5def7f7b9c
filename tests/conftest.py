import os
import signal

os.environ.setdefault("DVC_NO_ANALYTICS", "1")

# A suite started in the background of a script (`bash .ci/run &`) inherits SIGINT ignored, and so
# would every stage it starts: the Ctrl-C tests (tests/test_bad_inputs.py) need it delivered, as
# in a terminal. Python's own handler here; the processes the tests start get the default back at exec.
signal.signal(signal.SIGINT, signal.default_int_handler)
