"""The stemmed BM25 baseline for search quality: bm25s with its defaults and PyStemmer's
English (Snowball) stemmer, the usual strong lexical baseline in IR papers.

Each Cranfield abstract is indexed as the same text Quipu's notes hold (title, then the
``.W`` text; ``bench.memory_search`` posts them as title and content; the ``.W`` text alone
scores a little lower, 0.365 nDCG@10), tokenized by bm25s's
default tokenizer (lower-case, English stop words removed, stemmed), scored with bm25s's
default BM25 (Lucene variant, k1 1.5, b 0.75); the top 100 per query are scored with the
same judgements and metrics as Quipu's modes (``bench.search_quality.evaluate``).

bm25s and PyStemmer are bench-only (the ``bench`` extra), imported when the baseline runs.
``python -m bench.bm25_baseline`` prints the figures alone (a second or two).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bench.search_quality import cranfield_docs, cranfield_qrels, cranfield_queries, evaluate

TOP = 100


@dataclass
class Bm25Result:
    collection: str
    documents: int
    queries: int
    ndcg10: float
    recall100: float


def rank(docs: list[tuple[int, str]], queries: list[tuple[int, str]], top: int = TOP) -> dict[int, list[int]]:
    """{query id: doc ids, best first} for (doc id, text) and (query id, text) pairs."""
    import bm25s
    import Stemmer

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # one DEBUG line per index otherwise
    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25()
    doc_tokens = bm25s.tokenize([text for _, text in docs], stemmer=stemmer, show_progress=False)
    retriever.index(doc_tokens, show_progress=False)
    query_tokens = bm25s.tokenize([text for _, text in queries], stemmer=stemmer, show_progress=False)
    results, _ = retriever.retrieve(query_tokens, k=min(top, len(docs)), show_progress=False, n_threads=1)
    return {qid: [docs[int(i)][0] for i in row] for (qid, _), row in zip(queries, results, strict=True)}


def cranfield() -> Bm25Result:
    docs = [(doc_id, f"{title} {text}".strip()) for doc_id, title, text in cranfield_docs()]
    qrels = cranfield_qrels()
    ndcg, recall = evaluate(rank(docs, cranfield_queries()), qrels)
    return Bm25Result("Cranfield", len(docs), len(qrels), ndcg, recall)


if __name__ == "__main__":
    r = cranfield()
    print(f"{r.collection}: stemmed BM25 nDCG@10 {r.ndcg10:.4f}, recall@100 {r.recall100:.4f} ({r.queries} queries)")
