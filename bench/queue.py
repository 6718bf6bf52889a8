"""Benchmark: the labeling queue under load. This is the name the benchmark plan gives; the code
lives in bench/labeling_queue.py (run either: ``python bench/queue.py`` takes the same options).

A file called queue.py in the script's folder would shadow the standard library's `queue` for
everything imported after it (threading pools, logging, gunicorn), so the folder is swapped for
the repository root on the import path before anything else is imported.
"""

import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from bench.labeling_queue import main  # noqa: E402

if __name__ == "__main__":
    main()
