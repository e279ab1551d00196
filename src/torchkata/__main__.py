import os
import sys

from torchkata.cli import main

status = main()
if "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # a process that torchrun started
    from torchkata.distributed import exit_process

    exit_process(status)  # skips the interpreter's teardown, where gloo can abort
sys.exit(status)
