"""Entry script of the frozen command line (pyinstaller.spec): the same `sarlang-cli`."""
import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from sarlang_core.cli import main

    sys.exit(main())
