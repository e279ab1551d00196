"""Text that ships with Python: the documentation of ``help()`` in ``pydoc_data.topics``."""

from __future__ import annotations

__all__ = ["pydoc_text"]


def pydoc_text() -> str:
    """The ``pydoc_data.topics`` help pages, in sorted topic order, joined by blank lines.

    About 460 KB of English prose and code examples on Python 3.11 (the exact text
    follows the Python version). No download: every CPython ships it.

    Examples:
        >>> text = pydoc_text()
        >>> len(text) > 300_000, "lambda" in text
        (True, True)
    """
    from pydoc_data.topics import topics

    return "\n\n".join(topics[name].strip() for name in sorted(topics))
