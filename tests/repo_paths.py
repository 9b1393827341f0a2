"""Where the tests find the repository and their own helpers, wherever a test file sits under tests/."""

from pathlib import Path

#: The tests' own folder (helpers such as contract.py and data/ live here).
TESTS_DIR = Path(__file__).resolve().parent
#: The repository's root (pyproject.toml, README.md, the package).
REPO_ROOT = TESTS_DIR.parent
