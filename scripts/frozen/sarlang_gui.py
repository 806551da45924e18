"""Entry script of the frozen GUI (pyinstaller.spec): the same `sarlang` as the pip install."""
import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from app.main import main

    sys.exit(main())
