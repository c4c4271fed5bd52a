"""Send a job's stderr (tracebacks included) and logging to its log file."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TextIO


def log_to_file(log_path: str | Path) -> TextIO:
    """Redirect stdout, stderr and the root logger of this process to ``log_path``.

    Called first by every workflow script, so that a failing job's traceback,
    its progress messages and Keras' epoch lines land in the job's declared log.
    """
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    handle = open(log_path, "w", buffering=1, encoding="utf-8")
    # file descriptors too, so that output of compiled libraries (TensorFlow's
    # C++ logging, torch) lands in the log rather than on the console
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(handle.fileno(), 1)
    os.dup2(handle.fileno(), 2)
    sys.stderr = handle
    sys.stdout = handle
    logging.basicConfig(
        stream=handle,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    return handle
