"""Entry script of the frozen build on Linux and macOS (pyinstaller.spec): one program for both
commands. `sarlang-cli` is a symbolic link to `sarlang`; the name it was started by picks the
command line or the GUI. (Two programs would each carry the whole Python archive: 27 MB more.)
Windows keeps two programs, a console one and a windowed one."""
import multiprocessing
import os
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    if os.path.basename(sys.argv[0]).startswith("sarlang-cli"):
        from sarlang_core.cli import main
    else:
        from app.main import main
    sys.exit(main())
