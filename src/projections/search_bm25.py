"""BM25 keyword ranking for the memory search index, from term statistics kept beside it.

Postgres' own ``ts_rank`` has no inverse document frequency: a query word found in every
note counts as much as a rare one, which is why it ranked below a plain stemmed BM25 on
Cranfield. So the writers of :mod:`projections.search_index` keep, in the same transaction as
the document rows, the statistics BM25 needs for every *current, undeleted* document:

* ``postings``: one row per (document, lexeme) with the lexeme's weighted term frequency and
  the document's weighted length;
* ``terms``: per tenant and lexeme, how many documents hold it (``df``);
* ``corpus``: per tenant, how many documents and their total weighted length.

Lexemes are the document's ``tsv`` (Postgres' ``english`` stemming and stop words), so keyword
search matches and ranks on exactly the same terms. Title terms count ``TITLE_WEIGHT`` times a
text term (BM25F with one length over both fields). The score is Lucene's BM25:
``sum over query lexemes of idf * tf / (tf + K1 * (1 - B + B * dl / avgdl))`` with
``idf = ln(1 + (N - df + 0.5) / (df + 0.5))`` and K1 = 1.5, B = 0.75
(not tuned on any test collection). Statistics are per tenant, so one tenant's notes never
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

BM25_DDL: Final = [
    "CREATE TABLE IF NOT EXISTS postings ("
    " tenant_id text NOT NULL, entity_type text NOT NULL, entity_id uuid NOT NULL, lexeme text NOT NULL,"
    " tf float8 NOT NULL, dl float8 NOT NULL,"
    " PRIMARY KEY (tenant_id, entity_type, entity_id, lexeme))",
    "CREATE INDEX IF NOT EXISTS postings_lexeme ON postings (tenant_id, lexeme)",
    "CREATE TABLE IF NOT EXISTS terms ("
    " tenant_id text NOT NULL, lexeme text NOT NULL, df integer NOT NULL, PRIMARY KEY (tenant_id, lexeme))",
    "CREATE TABLE IF NOT EXISTS corpus (tenant_id text PRIMARY KEY, docs bigint NOT NULL, length float8 NOT NULL)",
    # A read model written before the statistics existed gets them once, from its documents.
    "DO $quipu$ BEGIN"
    " IF NOT EXISTS (SELECT 1 FROM corpus) AND NOT EXISTS (SELECT 1 FROM postings) THEN"
    "  INSERT INTO postings (tenant_id, entity_type, entity_id, lexeme, tf, dl)"
    f"  SELECT x.tenant_id, x.entity_type, x.entity_id, x.lexeme, x.tf, sum(x.tf) OVER (PARTITION BY"
    "   x.tenant_id, x.entity_type, x.entity_id) FROM (SELECT d.tenant_id, d.entity_type, d.entity_id, u.lexeme,"
    f"   {_TF} AS tf FROM documents d, unnest(d.tsv) u WHERE d.valid_to IS NULL AND NOT d.deleted) x;"
    "  INSERT INTO terms SELECT tenant_id, lexeme, count(*) FROM postings GROUP BY 1, 2;"
    "  INSERT INTO corpus SELECT tenant_id, count(*), sum(dl) FROM"
    "   (SELECT DISTINCT tenant_id, entity_type, entity_id, dl FROM postings) x GROUP BY 1;"
    " END IF; END $quipu$",
]


def _tables(schema: str | None) -> dict[str, sql.Composable]:
    def name(table: str) -> sql.Composable:
        return sql.Identifier(schema, table) if schema else sql.Identifier(table)

    return {t: name(t) for t in ("documents", "postings", "terms", "corpus")}


async def reindex(cur: AsyncCursor[Any], tenant_id: str, entity_type: str, entity_id: Any, schema: str | None) -> None:
    """Make the statistics hold the item's current version (none if it is deleted or unknown).

    Whatever the item held before is taken out first, so calling it again changes nothing: a
    replayed event leaves the statistics as one application did.
    """
    t = _tables(schema)
    params = {"tenant": tenant_id, "type": entity_type, "id": entity_id}
    await cur.execute(
        sql.SQL(
            "WITH old AS (DELETE FROM {postings} WHERE tenant_id = %(tenant)s AND entity_type = %(type)s"
            "  AND entity_id = %(id)s RETURNING lexeme, dl),"
            " dec AS (UPDATE {terms} t SET df = t.df - 1 FROM old"
            "  WHERE t.tenant_id = %(tenant)s AND t.lexeme = old.lexeme)"
            # (a data-modifying CTE runs to completion whether or not it is read)
            " UPDATE {corpus} c SET docs = c.docs - 1, length = c.length - o.dl"
            " FROM (SELECT max(dl) AS dl FROM old) o"
            " WHERE c.tenant_id = %(tenant)s AND o.dl IS NOT NULL"
        ).format(**t),
        params,
    )
    await cur.execute(
        sql.SQL(
            "WITH tf AS (SELECT u.lexeme, {tf} AS tf FROM {documents} d, unnest(d.tsv) u"
            "  WHERE d.tenant_id = %(tenant)s AND d.entity_type = %(type)s AND d.entity_id = %(id)s"
            "  AND d.valid_to IS NULL AND NOT d.deleted),"
            " new AS (INSERT INTO {postings} (tenant_id, entity_type, entity_id, lexeme, tf, dl)"
            "  SELECT %(tenant)s, %(type)s, %(id)s, lexeme, tf, sum(tf) OVER () FROM tf RETURNING lexeme, dl),"
            " inc AS (INSERT INTO {terms} AS t (tenant_id, lexeme, df) SELECT %(tenant)s, lexeme, 1 FROM new"
            "  ON CONFLICT (tenant_id, lexeme) DO UPDATE SET df = t.df + 1)"
            " INSERT INTO {corpus} AS c (tenant_id, docs, length)"
            " SELECT %(tenant)s, 1, max(dl) FROM new HAVING count(*) > 0"
            " ON CONFLICT (tenant_id) DO UPDATE SET docs = c.docs + 1, length = c.length + excluded.length"
        ).format(tf=sql.SQL(_TF), **t),
        params,
    )


def query_terms(schema: str) -> sql.Composable:
    """The query's lexemes with their idf: a subquery over ``%(q_text)s`` and ``%(f_tenant)s``."""
    t = _tables(schema)
    return sql.SQL(
        "(SELECT tm.lexeme, ln(1 + (c.docs - tm.df + 0.5) / (tm.df + 0.5)) AS idf, c.length / c.docs AS avgdl"
        " FROM {terms} tm JOIN {corpus} c ON c.tenant_id = tm.tenant_id"
        " WHERE tm.tenant_id = %(f_tenant)s AND tm.df > 0 AND c.docs > 0"
        " AND tm.lexeme = ANY(tsvector_to_array(to_tsvector('english', %(q_text)s))))"
    ).format(**t)


def _term_score(tf: str, dl: str) -> str:
    return f"qt.idf * {tf} / ({tf} + {K1} * (1 - {B} + {B} * {dl} / qt.avgdl))"


def scored_current(schema: str) -> sql.Composable:
    """(entity_type, entity_id, score) of every current document holding a query lexeme."""
    t = _tables(schema)
    return sql.SQL(
        "(SELECT p.entity_type, p.entity_id, sum({s}) AS score FROM {postings} p JOIN {qt} qt"
        " ON p.lexeme = qt.lexeme WHERE p.tenant_id = %(f_tenant)s GROUP BY p.entity_type, p.entity_id)"
    ).format(s=sql.SQL(_term_score("p.tf", "p.dl")), qt=query_terms(schema), **t)


def score_of_version(schema: str) -> sql.Composable:
    """The score of the version ``d`` from its own ``tsv`` (for as-of searches: postings hold
    current versions only). Same terms, weights and formula as ``scored_current``."""
    return sql.SQL(
        "(SELECT sum({s}) FROM (SELECT u.lexeme, {tf} AS tf, sum({tf}) OVER () AS dl FROM unnest(d.tsv) u) x"
        " JOIN {qt} qt ON x.lexeme = qt.lexeme)"
    ).format(s=sql.SQL(_term_score("x.tf", "x.dl")), tf=sql.SQL(_TF), qt=query_terms(schema))
