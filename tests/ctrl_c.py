"""Running batchrun's CLI in a child process that a test presses Ctrl-C in.

A test runner (or a CI job started in the background) may run the tests with SIGINT ignored, which a child
Python inherits and keeps: ``python -c WITH_CTRL_C ARGS`` restores Ctrl-C before running ``batchrun ARGS``."""

WITH_CTRL_C = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from batchrun.cli.main import main; main()"
)
