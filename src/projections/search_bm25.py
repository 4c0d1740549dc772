"""BM25 keyword ranking for the memory search index, from term statistics kept beside it.

Postgres' own ``ts_rank`` has no inverse document frequency: a query word found in every
note counts as much as a rare one, which is why it ranked below a plain stemmed BM25 on
Cranfield. So the writers of :mod:`projections.search_index` keep, in the transaction that
writes the document rows (brought up to date at its commit, see ``reindex``), the statistics
BM25 needs for every *current, undeleted* document:

* ``postings``: one row per (document, lexeme) with the lexeme's weighted term frequency and
  the document's weighted length;
* ``terms``: per tenant and lexeme, how many documents hold it (``df``);
* ``corpus``: per tenant, how many documents and their total weighted length.

Lexemes are the document's ``tsv`` (Postgres' ``english`` stemming and stop words), so keyword
search matches and ranks on exactly the same terms. Title terms count ``TITLE_WEIGHT`` times a
text term (BM25F with one length over both fields). The score is Lucene's BM25:
``sum over query lexemes of idf * tf / (tf + K1 * (1 - B + B * dl / avgdl))`` with
``idf = ln(1 + (N - df + 0.5) / (df + 0.5))``, K1 = 1.5 and B = 0.75 (bm25s' defaults; of K1
0.9, 1.2 and 1.5, 1.5 also ranked best on the odd-numbered Cranfield queries, the ones
``projections.search_fusion`` was tuned on). Statistics are per tenant, so one tenant's notes never
shift another's ranking. A search ``as_of`` an earlier point ranks the versions then valid
with today's statistics (the history of the statistics is not kept).
"""

from __future__ import annotations

from typing import Any, Final

from psycopg import AsyncCursor, sql

K1: Final = 1.5
B: Final = 0.75
#: A title term counts this many text terms.
TITLE_WEIGHT: Final = 2.0

#: The weighted term frequency of one ``unnest(tsv)`` row ``u``: title positions carry weight A.
_TF = f"coalesce((SELECT sum(CASE WHEN w = 'A' THEN {TITLE_WEIGHT} ELSE 1 END) FROM unnest(u.weights) w), 1)::float8"

#: The transaction-local setting that says this schema's statistics are pending (one per schema,
#: so two search schemas written in one transaction keep their own).
_PENDING_FLAG = "'quipu_bm25.s' || md5(TG_TABLE_SCHEMA)"

#: Brings the statistics of the items named in ``stale`` up to date, all at once: run at commit
#: (a deferred constraint trigger), so a batch of writes costs a few set-wide statements instead
#: of several per item (4x faster ingestion). Schema-relative, so a rebuild's renamed schema works.
#: Both statements start from ``stale`` and reach postings and documents by their keys (LATERAL
#: with OFFSET 0, and a TID list for the delete), whatever the planner guesses ``stale`` holds:
#: emptied at every commit, it is bloated and unanalysed, and the planner chose to scan every
#: posting and every current document instead, so each batch cost time in proportion to the
#: whole collection (0.3 s a batch at 100,000 notes, most of the ingestion time).
_REFRESH_FUNCTION = f"""CREATE OR REPLACE FUNCTION search_statistics_refresh() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
  s text := quote_ident(TG_TABLE_SCHEMA);
  flag text := {_PENDING_FLAG};
BEGIN
  -- Fired once per stale row: the first call does the work for all of them. The flag (set by
  -- search_statistics_pending at each insert into stale, local to the transaction) lets the
  -- others return at once; checking stale itself cost a scan of its dead rows per call, which
  -- made a commit quadratic in its batch (minutes for 50,000 notes).
  IF coalesce(current_setting(flag, true), '') <> 'pending' THEN
    RETURN NULL;
  END IF;
  PERFORM set_config(flag, 'done', true);
  EXECUTE format($q$WITH old AS (DELETE FROM %1$s.postings p WHERE p.ctid = ANY (ARRAY(
        SELECT q.ctid FROM %1$s.stale x CROSS JOIN LATERAL (SELECT o.ctid FROM %1$s.postings o
          WHERE o.tenant_id = x.tenant_id AND o.entity_type = x.entity_type AND o.entity_id = x.entity_id
          OFFSET 0) q))
      RETURNING p.tenant_id, p.entity_type, p.entity_id, p.lexeme, p.dl),
    dec AS (UPDATE %1$s.terms t SET df = t.df - o.n
      FROM (SELECT tenant_id, lexeme, count(*) AS n FROM old GROUP BY 1, 2) o
      WHERE t.tenant_id = o.tenant_id AND t.lexeme = o.lexeme)
    UPDATE %1$s.corpus c SET docs = c.docs - o.docs, length = c.length - o.length
    FROM (SELECT tenant_id, count(*) AS docs, sum(dl) AS length
          FROM (SELECT DISTINCT tenant_id, entity_type, entity_id, dl FROM old) e GROUP BY 1) o
    WHERE c.tenant_id = o.tenant_id$q$, s);
  EXECUTE format($q$WITH tf AS (SELECT d.tenant_id, d.entity_type, d.entity_id, u.lexeme, {_TF} AS tf
      FROM %1$s.stale x CROSS JOIN LATERAL (SELECT * FROM %1$s.documents c WHERE c.tenant_id = x.tenant_id
      AND c.entity_type = x.entity_type AND c.entity_id = x.entity_id AND c.valid_to IS NULL AND NOT c.deleted
      OFFSET 0) d, unnest(d.tsv) u),
    new AS (INSERT INTO %1$s.postings (tenant_id, entity_type, entity_id, lexeme, tf, dl)
      SELECT tenant_id, entity_type, entity_id, lexeme, tf,
             sum(tf) OVER (PARTITION BY tenant_id, entity_type, entity_id) FROM tf
      RETURNING tenant_id, entity_type, entity_id, lexeme, dl),
    inc AS (INSERT INTO %1$s.terms AS t (tenant_id, lexeme, df)
      SELECT tenant_id, lexeme, count(*) FROM new GROUP BY 1, 2
      ON CONFLICT (tenant_id, lexeme) DO UPDATE SET df = t.df + excluded.df)
    INSERT INTO %1$s.corpus AS c (tenant_id, docs, length)
    SELECT tenant_id, count(*), sum(dl) FROM (SELECT DISTINCT tenant_id, entity_type, entity_id, dl FROM new) e
    GROUP BY 1
    ON CONFLICT (tenant_id) DO UPDATE SET docs = c.docs + excluded.docs, length = c.length + excluded.length$q$, s);
  EXECUTE format('DELETE FROM %s.stale', s);
  RETURN NULL;
END
$fn$"""

#: Marks this schema's statistics as pending for the transaction (see the refresh function).
_PENDING_FUNCTION = f"""CREATE OR REPLACE FUNCTION search_statistics_pending() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM set_config({_PENDING_FLAG}, 'pending', true);
  RETURN NULL;
END
$fn$"""

BM25_DDL: Final = [
    "CREATE TABLE IF NOT EXISTS postings ("
    " tenant_id text NOT NULL, entity_type text NOT NULL, entity_id uuid NOT NULL, lexeme text NOT NULL,"
    " tf float8 NOT NULL, dl float8 NOT NULL,"
    " PRIMARY KEY (tenant_id, entity_type, entity_id, lexeme))",
    # Covering: keyword search reads a query term's postings from the index alone.
    "CREATE INDEX IF NOT EXISTS postings_by_lexeme ON postings (tenant_id, lexeme)"
    " INCLUDE (entity_type, entity_id, tf, dl)",
    "CREATE TABLE IF NOT EXISTS terms ("
    " tenant_id text NOT NULL, lexeme text NOT NULL, df integer NOT NULL, PRIMARY KEY (tenant_id, lexeme))",
    "CREATE TABLE IF NOT EXISTS corpus (tenant_id text PRIMARY KEY, docs bigint NOT NULL, length float8 NOT NULL)",
    "CREATE TABLE IF NOT EXISTS stale ("
    " tenant_id text NOT NULL, entity_type text NOT NULL, entity_id uuid NOT NULL,"
    " PRIMARY KEY (tenant_id, entity_type, entity_id))",
    _REFRESH_FUNCTION,
    _PENDING_FUNCTION,
    "DO $quipu$ BEGIN"
    " IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'stale'::regclass AND tgname = 'stale_pending') THEN"
    "  CREATE TRIGGER stale_pending AFTER INSERT ON stale"
    "  FOR EACH STATEMENT EXECUTE FUNCTION search_statistics_pending();"
    " END IF; END $quipu$",
    "DO $quipu$ BEGIN"
    " IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'stale'::regclass AND tgname = 'stale_refresh') THEN"
    "  CREATE CONSTRAINT TRIGGER stale_refresh AFTER INSERT ON stale DEFERRABLE INITIALLY DEFERRED"
    "  FOR EACH ROW EXECUTE FUNCTION search_statistics_refresh();"
    " END IF; END $quipu$",
    # A read model written before the statistics existed gets them once, from its documents.
    "DO $quipu$ BEGIN"
    " IF NOT EXISTS (SELECT 1 FROM corpus) AND EXISTS (SELECT 1 FROM documents) THEN"
    "  INSERT INTO stale SELECT DISTINCT tenant_id, entity_type, entity_id FROM documents"
    "   WHERE valid_to IS NULL AND NOT deleted ON CONFLICT DO NOTHING;"
    " END IF; END $quipu$",
]


async def reindex(cur: AsyncCursor[Any], tenant_id: str, entity_type: str, entity_id: Any, schema: str | None) -> None:
    """Mark the item's statistics stale: at commit they are made to hold its current version
    (none if it is deleted or unknown), whatever they held before, so a replayed write changes
    nothing. Until then (inside the writing transaction) keyword scores use the old ones."""
    name = sql.Identifier(schema, "stale") if schema else sql.Identifier("stale")
    await cur.execute(
        sql.SQL("INSERT INTO {} (tenant_id, entity_type, entity_id) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING").format(
            name
        ),
        (tenant_id, entity_type, entity_id),
    )


def _tables(schema: str) -> dict[str, sql.Composable]:
    return {t: sql.Identifier(schema, t) for t in ("postings", "terms", "corpus")}


def query_terms(schema: str) -> sql.Composable:
    """The query's lexemes with their BM25 constants (``idf``; ``a`` and ``c`` in the length
    norm ``a + c * dl``): a subquery over ``%(q_text)s`` and ``%(f_tenant)s``, computed once
    per term (``OFFSET 0`` keeps the planner from repeating it for every posting)."""
    t = _tables(schema)
    return sql.SQL(
        "(SELECT tm.lexeme, ln(1 + (c.docs - tm.df + 0.5)::float8 / (tm.df + 0.5)) AS idf,"
        " {a}::float8 AS a, {kb}::float8 * c.docs / c.length AS c"
        " FROM {terms} tm JOIN {corpus} c ON c.tenant_id = tm.tenant_id"
        " WHERE tm.tenant_id = %(f_tenant)s AND tm.df > 0 AND c.docs > 0 AND c.length > 0"
        " AND tm.lexeme = ANY(tsvector_to_array(to_tsvector('english', %(q_text)s))) OFFSET 0)"
    ).format(a=sql.Literal(K1 * (1 - B)), kb=sql.Literal(K1 * B), **t)


def _term_score(tf: str, dl: str) -> str:
    return f"qt.idf * {tf} / ({tf} + qt.a + qt.c * {dl})"


def scored_current(schema: str) -> sql.Composable:
    """(entity_type, entity_id, score) of every current document holding a query lexeme."""
    t = _tables(schema)
    return sql.SQL(
        # Rounded: two documents with the same terms must tie whatever order their terms were summed in.
        "(SELECT p.entity_type, p.entity_id, round(sum({s}) * 1e9) / 1e9 AS score FROM {postings} p"
        " JOIN {qt} qt ON p.lexeme = qt.lexeme WHERE p.tenant_id = %(f_tenant)s GROUP BY p.entity_type, p.entity_id)"
    ).format(s=sql.SQL(_term_score("p.tf", "p.dl")), qt=query_terms(schema), **t)


def score_of_version(schema: str) -> sql.Composable:
    """The score of the version ``d`` from its own ``tsv`` (for as-of searches: postings hold
    current versions only). Same terms, weights and formula as ``scored_current``."""
    return sql.SQL(
        "(SELECT sum({s}) FROM (SELECT u.lexeme, {tf} AS tf, sum({tf}) OVER () AS dl FROM unnest(d.tsv) u) x"
        " JOIN {qt} qt ON x.lexeme = qt.lexeme)"
    ).format(s=sql.SQL(_term_score("x.tf", "x.dl")), tf=sql.SQL(_TF), qt=query_terms(schema))
