"""What was learned of each model, matched to the config it is loaded under.

Statistics are kept per alias, and stored with the model the alias named then
(``provider/model_id``, its ``upstream``). A config edited between two runs may rename an
alias, point an alias at another model, or drop one; what was learned belongs to the
model it was learned of, not to its name. Pure: rows in, rows placed and what to say.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import attrs

from switchman.catalog import Config
from switchman.policy._learning import ModelStats

Key = tuple[str, str]  # (alias, intent)


def upstreams(config: Config) -> dict[str, str]:
    """Each alias of ``config`` and the model it names, ``provider/model_id``."""
    return {m.alias: f"{m.provider}/{m.model_id}" for m in config.models.values()}


@attrs.frozen(kw_only=True)
class Placed:
    """Stored statistics matched to a config.

    ``stats``: under the aliases of the config that name the model they were learned of;
    ``kept``: of models the config does not name (kept for a later run that does), with
    ``kept_upstreams`` naming them; ``moved``: an old alias's rows gone to the alias that
    names its model now; ``reassigned``: an alias that names another model now, and the one
    it named, which no alias names: its rows are kept under that model's name
    (``provider/model_id``), for an alias that names it again."""

    stats: dict[Key, ModelStats]
    kept: dict[Key, ModelStats]
    kept_upstreams: dict[str, str]
    moved: dict[str, str]
    reassigned: dict[str, str]


#: the key of a record kept by its model's name (``KEPT + "provider/model_id"``) once its
#: alias names another model: never an alias (a catalog alias reads ``provider/model``)
KEPT: Final = "\x00"


def place_learned(
    stats: Mapping[Key, ModelStats], stored: Mapping[str, str], current: Mapping[str, str]
) -> Placed:
    """Place ``stats`` (with ``stored``, the model each alias named when they were saved;
    a row of an older store names none and stays with its alias) under ``current``, the
    config's aliases and their models. Aliases of one model share its record: one added
    beside another starts from it (its first call would otherwise overwrite it)."""
    by_model: dict[str, list[str]] = {}
    for alias, model in current.items():
        by_model.setdefault(model, []).append(alias)
    placed: dict[Key, ModelStats] = {}
    kept: dict[Key, ModelStats] = {}
    kept_upstreams: dict[str, str] = {}
    moved: dict[str, str] = {}
    reassigned: dict[str, str] = {}
    elsewhere: list[tuple[Key, ModelStats]] = []
    for (alias, intent), st in stats.items():
        was, now = stored.get(alias), current.get(alias)
        if was is not None and was != now:
            elsewhere.append(((alias, intent), st))
        elif now is not None:
            placed[(alias, intent)] = st
        else:  # (a model of an older store the config no longer names)
            kept[(alias, intent)] = st
    for (alias, intent), st in elsewhere:
        was = stored[alias]
        heirs = by_model.get(was, ())
        heir = next((a for a in heirs if (a, intent) not in placed), None)
        if heir is not None:  # the alias was renamed: its model's record goes with it
            placed[(heir, intent)] = st
            moved[alias] = heir
        elif heirs:
            pass  # the alias naming that model now has its own record of it for the intent
        elif alias not in current:
            kept[(alias, intent)] = st
            kept_upstreams[alias] = was
        else:  # the alias names another model now, and no alias names the old one
            kept.setdefault((KEPT + was, intent), st)
            kept_upstreams[KEPT + was] = was
            reassigned[alias] = was
    for (alias, intent), st in list(placed.items()):
        for sibling in by_model[current[alias]]:
            placed.setdefault((sibling, intent), st)
    return Placed(
        stats=placed,
        kept=kept,
        kept_upstreams=kept_upstreams,
        moved=moved,
        reassigned=reassigned,
    )
