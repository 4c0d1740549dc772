"""Full leaf pages for the indexes whose keys only ever grow.

B-tree leaves split at 90 % full by default, leaving room for keys that land in the
middle later. The notification ids (both tables) and the event ids (UUIDv7, time-ordered:
``domain/ids.py``) only grow, and rows are never updated or deleted (invariant 3), so
nothing ever lands in that room: at 100 % those three indexes take about a tenth less
space. Applies to pages split from now on (an existing index keeps its pages until it is
rebuilt, e.g. by ``REINDEX``, which a migration does not impose on a large table).
"""

from __future__ import annotations

NAME = "dense_ascending_indexes"
INDEXES = ("quipu_events_notification_id_idx", "event_dag_notification_id_key", "event_dag_pkey")


def statements(schema: str) -> list[str]:
    return [f"ALTER INDEX {schema}.{index} SET (fillfactor = 100)" for index in INDEXES]
