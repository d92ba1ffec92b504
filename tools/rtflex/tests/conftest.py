"""pytest setup of the host tool's tests: the package from tools/ (so
`pytest-3 tools/rtflex/tests` works without PYTHONPATH)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
