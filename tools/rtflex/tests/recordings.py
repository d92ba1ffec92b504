"""The recorded guest logs of tests/data/ (data/README.md says where each
one comes from)."""

import os

from rtflex import protocol
from rtflex.problems import ConsoleProblems

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def path(name):
    return os.path.join(DATA, name)


def text(name):
    """A recording as the runner reads it (UTF-8, invalid bytes replaced)."""
    with open(path(name), "rb") as f:
        return f.read().decode("utf-8", "replace")


def results(name):
    """The parsed results stream of DATA/<name>-results.log."""
    return protocol.parse(text(f"{name}-results.log"))


def console(name, patterns=None):
    """The console problems of DATA/<name>-console.log."""
    return ConsoleProblems(patterns).feed_text(text(f"{name}-console.log"))
