"""A walk that returns each reached event's DAG row, reading every row once.

``quipu_walk`` (0001) returns ids and distances only, so the ancestor and descendant
queries joined ``event_dag`` again for every id it returned; an upward walk had already
read those rows to follow their parents. ``quipu_walk_rows`` keeps each level's rows
(kind, depth, hash, position, stream and version: what a caller joins on or orders by) and
follows the parents from them. Same breadth-first order, distances and limits as
``quipu_walk``, which stays for anything that wants ids only.
"""

from __future__ import annotations

NAME = "walk_rows"


def statements(schema: str) -> list[str]:
    s = schema
    return [
        f"""CREATE OR REPLACE FUNCTION {s}.quipu_walk_rows(
                start uuid, tenant text, upward boolean, max_depth integer, max_nodes integer)
            RETURNS TABLE (event_id uuid, distance integer, notification_id bigint, kind text,
                           depth integer, hash character(64), stream_id uuid, version bigint)
            LANGUAGE plpgsql STABLE AS $$
            DECLARE
                frontier uuid[] := ARRAY[start];
                seen uuid[] := ARRAY[start];
                nexts uuid[];
                level_rows {s}.event_dag[];
                level integer := 0;
                found integer := 0;
            BEGIN
                IF upward THEN
                    SELECT d.parent_ids INTO nexts FROM {s}.event_dag d
                    WHERE d.event_id = start AND d.tenant_id = tenant;
                END IF;
                WHILE level < max_depth AND found < max_nodes LOOP
                    level := level + 1;
                    IF upward THEN
                        SELECT coalesce(array_agg(d), '{{}}') INTO level_rows FROM {s}.event_dag d
                        WHERE d.event_id = ANY(ARRAY(
                                SELECT DISTINCT p FROM unnest(nexts) AS p WHERE NOT p = ANY(seen)))
                          AND d.tenant_id = tenant;
                        SELECT coalesce(array_agg(DISTINCT p), '{{}}') INTO nexts
                        FROM unnest(level_rows) AS r, unnest(r.parent_ids) AS p;
                    ELSE
                        SELECT coalesce(array_agg(d), '{{}}') INTO level_rows FROM {s}.event_dag d
                        WHERE d.event_id = ANY(ARRAY(
                                SELECT DISTINCT e.child_id FROM {s}.event_edges e
                                WHERE e.parent_id = ANY(frontier) AND NOT e.child_id = ANY(seen)))
                          AND d.tenant_id = tenant;
                    END IF;
                    EXIT WHEN cardinality(level_rows) = 0;
                    frontier := ARRAY(SELECT r.event_id FROM unnest(level_rows) AS r);
                    seen := seen || frontier;
                    found := found + cardinality(frontier);
                    RETURN QUERY SELECT r.event_id, level, r.notification_id, r.kind, r.depth, r.hash,
                                        r.stream_id, r.version
                                 FROM unnest(level_rows) AS r;
                END LOOP;
            END $$""",
    ]
