"""Hybrid search with weighted score fusion (what the search service serves), its halves run
in turn or in parallel on two connections, against the fusion of the two lists it fuses."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import AsyncConnection

from projections.search_fusion import weighted_fuse
from projections.search_query import SearchFilters, hybrid_search, keyword_search, vector_search
from tests.integration.test_search_index import corpus, index, pgvector_admin_url  # noqa: F401 (fixtures)


async def test_weighted_hybrid_is_the_weighted_fusion_of_both_lists(
    index: AsyncConnection[Any],  # noqa: F811
    corpus: dict[str, uuid.UUID],  # noqa: F811
) -> None:
    query = "heat and pressure in fast airflow over a plate"
    words = await keyword_search(index, "acme", query, limit=100)
    vectors = await vector_search(index, "acme", query, limit=100)
    expected = weighted_fuse(
        [((h.entity_type, h.entity_id), h.score) for h in words],
        [((h.entity_type, h.entity_id), h.score) for h in vectors],
    )
    info = index.info
    async with await AsyncConnection.connect(
        f"host={info.host} port={info.port} dbname={info.dbname} user={info.user} password={info.password}",
        autocommit=True,
    ) as other:
        for keyword_conn in (None, other):
            hybrid = await hybrid_search(index, "acme", query, limit=100, fusion="weighted", keyword_conn=keyword_conn)
            assert [(h.entity_type, h.entity_id) for h in hybrid] == [f.key for f in expected]
            assert [h.score for h in hybrid] == [f.score for f in expected]
            assert [(h.keyword_rank, h.vector_rank) for h in hybrid] == [f.ranks for f in expected]
            page = await hybrid_search(
                index, "acme", query, limit=2, offset=1, fusion="weighted", keyword_conn=keyword_conn
            )
            assert [h.entity_id for h in page] == [h.entity_id for h in hybrid][1:3]
        # Filters hold in both halves.
        only = SearchFilters(entity_types=["artifact"])
        assert await hybrid_search(index, "acme", query, filters=only, fusion="weighted", keyword_conn=other) == []
