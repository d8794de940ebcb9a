"""How many jobs each owner keeps when the store holds more than its bound.

Pure arithmetic, no I/O: the store counts its jobs per owner and asks
:func:`fair_cap` for the per-owner cap; each owner over it loses its oldest
finished jobs beyond it. The cap is found by water-filling: the largest ``c``
with ``sum(min(count_i, c)) <= bound``. An owner holding no more than ``c``
jobs keeps every one of them, so one key's flood of jobs only ever evicts that
key's own (and those of other owners holding even more).
"""

from __future__ import annotations

from collections.abc import Iterable


def fair_cap(counts: Iterable[int], bound: int) -> int | None:
    """The largest per-owner cap ``c`` with ``sum(min(n, c) for n in counts) <= bound``;
    None when the counts already fit within ``bound`` (nothing to prune).

    ``bound`` below 0 counts as 0. Raises ``ValueError`` for a negative count.
    """
    ordered = sorted(counts)
    if ordered and ordered[0] < 0:
        raise ValueError(f"a count cannot be negative: {ordered[0]}")
    bound = max(bound, 0)
    if sum(ordered) <= bound:
        return None
    below = 0  # jobs of the owners holding fewer than the cap being tried
    for i, n in enumerate(ordered):
        above = len(ordered) - i  # owners holding n or more
        cap = (bound - below) // above
        if cap < n:
            return cap
        below += n
    raise AssertionError("unreachable: the counts exceed the bound")  # pragma: no cover
