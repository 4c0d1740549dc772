"""The write side as the start-up code created it before migrations existed.

Every statement is idempotent, so a database that code created (it has all of these
objects and no migrations table) is recorded as at version 1 without a change. The
events table, its row type, its index and the library's insert function are
eventsourcing's DDL for an application recorder named ``quipu`` (its DDL as of 9.5),
frozen here so a library upgrade cannot change what version 1 means.
"""

from __future__ import annotations

NAME = "initial"

# eventsourcing's defaults for a large, append-only table: vacuum rarely, analyse often.
_AUTOVACUUM = (
    "WITH (autovacuum_enabled = true, autovacuum_vacuum_threshold = 100000000,"
    " autovacuum_vacuum_scale_factor = 0.5, autovacuum_analyze_threshold = 1000,"
    " autovacuum_analyze_scale_factor = 0.01)"
)
EVENTS = "quipu_events"
SNAPSHOTS = "quipu_snapshots"


def statements(schema: str) -> list[str]:
    s = schema
    return [
        # The row type the library's batch insert unnests (CREATE TYPE has no IF NOT EXISTS).
        f"""DO $$ BEGIN
            CREATE TYPE {s}.stored_event_uuid AS
                (originator_id uuid, originator_version bigint, topic text, state bytea);
        EXCEPTION WHEN duplicate_object THEN NULL;
        END $$""",
        f"""CREATE TABLE IF NOT EXISTS {s}.{EVENTS} (
            originator_id uuid NOT NULL,
            originator_version bigint NOT NULL,
            topic text,
            state bytea,
            notification_id bigserial,
            PRIMARY KEY (originator_id, originator_version)
        ) {_AUTOVACUUM}""",
        f"CREATE UNIQUE INDEX IF NOT EXISTS {EVENTS}_notification_id_idx ON {s}.{EVENTS} (notification_id ASC)",
        # Unused (POSTGRES_ENABLE_DB_FUNCTIONS is off, docs/decisions/0001-group-commit.md), but
        # the library always created it; kept so every database has the same objects.
        f"""CREATE OR REPLACE FUNCTION {s}.es_insert_events_uuid(events {s}.stored_event_uuid[])
            RETURNS SETOF bigint LANGUAGE plpgsql AS $$
            BEGIN
                SET LOCAL lock_timeout = '10s';
                NOTIFY "{EVENTS}";
                RETURN QUERY
                INSERT INTO {s}.{EVENTS} AS t (originator_id, originator_version, topic, state)
                SELECT originator_id, originator_version, topic, state FROM unnest(events)
                RETURNING notification_id;
            END $$""",
        f"""CREATE TABLE IF NOT EXISTS {s}.{SNAPSHOTS} (
            originator_id uuid NOT NULL,
            originator_version bigint NOT NULL,
            topic text,
            state bytea,
            PRIMARY KEY (originator_id, originator_version)
        ) {_AUTOVACUUM}""",
        f"""CREATE TABLE IF NOT EXISTS {s}.event_dag (
            event_id uuid PRIMARY KEY,
            notification_id bigint NOT NULL UNIQUE,
            tenant_id text NOT NULL,
            stream_id uuid NOT NULL,
            version bigint NOT NULL,
            kind text NOT NULL,
            code integer NOT NULL,
            correlation_id uuid NOT NULL,
            parent_ids uuid[] NOT NULL,
            depth integer NOT NULL,
            hash char(64) NOT NULL,
            occurred_at timestamptz NOT NULL
        )""",
        f"CREATE INDEX IF NOT EXISTS event_dag_correlation_idx"
        f" ON {s}.event_dag (tenant_id, correlation_id, notification_id)",
        f"CREATE INDEX IF NOT EXISTS event_dag_kind_idx ON {s}.event_dag (tenant_id, kind, depth)",
        f"""CREATE TABLE IF NOT EXISTS {s}.event_edges (
            parent_id uuid NOT NULL REFERENCES {s}.event_dag (event_id),
            child_id uuid NOT NULL REFERENCES {s}.event_dag (event_id),
            PRIMARY KEY (parent_id, child_id)
        )""",
        # Invariant 3 (docs/architecture.md): the database itself refuses to change history.
        f"""CREATE OR REPLACE FUNCTION {s}.quipu_refuse_change() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'quipu: % on % is not allowed: events are immutable',
                    TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
            END $$""",
        *[
            stmt
            for table in (EVENTS, "event_dag", "event_edges")
            for stmt in (
                f"DROP TRIGGER IF EXISTS {table}_immutable_rows ON {s}.{table}",
                f"CREATE TRIGGER {table}_immutable_rows BEFORE UPDATE OR DELETE ON {s}.{table}"
                f" FOR EACH ROW EXECUTE FUNCTION {s}.quipu_refuse_change()",
                f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {s}.{table}",
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {s}.{table}"
                f" FOR EACH STATEMENT EXECUTE FUNCTION {s}.quipu_refuse_change()",
            )
        ],
        # Breadth-first walk in one round trip. Distances are shortest hop counts, as a
        # graph library's BFS gives them; the walk stops at max_depth or max_nodes.
        f"""CREATE OR REPLACE FUNCTION {s}.quipu_walk(
                start uuid, tenant text, upward boolean, max_depth integer, max_nodes integer)
            RETURNS TABLE (event_id uuid, distance integer)
            LANGUAGE plpgsql STABLE AS $$
            DECLARE
                frontier uuid[] := ARRAY[start];
                seen uuid[] := ARRAY[start];
                level integer := 0;
                found integer := 0;
            BEGIN
                WHILE cardinality(frontier) > 0 AND level < max_depth AND found < max_nodes LOOP
                    level := level + 1;
                    IF upward THEN
                        SELECT coalesce(array_agg(DISTINCT p), '{{}}') INTO frontier
                        FROM {s}.event_dag d, unnest(d.parent_ids) AS p
                        WHERE d.event_id = ANY(frontier) AND d.tenant_id = tenant
                          AND NOT p = ANY(seen);
                    ELSE
                        SELECT coalesce(array_agg(DISTINCT e.child_id), '{{}}') INTO frontier
                        FROM {s}.event_edges e
                        WHERE e.parent_id = ANY(frontier) AND NOT e.child_id = ANY(seen);
                    END IF;
                    seen := seen || frontier;
                    found := found + cardinality(frontier);
                    RETURN QUERY SELECT f, level FROM unnest(frontier) AS f;
                END LOOP;
            END $$""",
    ]
