"""A clean exit for short-lived processes that used the Temporal client.

The SDK's Rust core can abort the interpreter during finalisation (sdk-python #300), turning
a successful command into SIGABRT. Flush what we have to say, then leave without finalising.
"""
from __future__ import annotations

import logging
import os
import sys


def exit_now(code: int = 0) -> "NoReturn":  # noqa: F821
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed pipe must not change the exit code
            pass
    os._exit(code)
