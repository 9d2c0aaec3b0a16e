""" "Did you mean" suggestions for misspelt names."""

from __future__ import annotations

from collections.abc import Iterable


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``word`` most likely meant: same letters in another case first, then a close spelling."""
    import difflib  # only when a name is wrong: a valid manifest does not pay for importing it

    options = list(candidates)
    for option in options:
        if option.lower() == word.lower():
            return option
    matches = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if matches:
        return matches[0]
    lowered = {option.lower(): option for option in options}
    matches = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[matches[0]] if matches else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``"did you mean 'x'?"`` or ``""``."""
    match = closest(word, candidates)
    return f"did you mean {match!r}?" if match else ""
