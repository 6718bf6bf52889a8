from __future__ import annotations

import sys

from modeling.ml.cli import main

sys.exit(main())
