"""The peer: LangGraph with its Postgres checkpointer, on the bench's own Postgres.

The workflow has the shape of the orchestration phase's (``bench.orchestration.SHAPE``):
start -> a -> (b, c, d) -> e -> (f, g) -> h -> end, each task a no-op node that returns
no update, compiled with ``PostgresSaver`` and invoked with ``durability="sync"`` (every
step's checkpoint is committed before the next step starts), so a finished run is as
durable as a finished Quipu run. Each thread has a saver and a connection of its own, as
separate worker processes would: one saver shared by threads serialises on its lock.

The time-travel history: a one-node graph that loops ``steps`` times (one checkpoint per
step, the counter changing each time); ``get_state`` at a checkpoint of it is the figure.

langgraph and langgraph-checkpoint-postgres are bench-only (the ``bench`` extra); this
module imports them when a peer is built, so the rest of the bench runs without them.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, TypedDict

import psycopg
from psycopg.rows import dict_row

from bench.orchestration import INPUT, SHAPE

TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes", "checkpoint_migrations")


class RunState(TypedDict):
    topic: str
    note: str


class LoopState(TypedDict):
    count: int


def _noop(state: RunState) -> dict[str, Any]:
    return {}


def ten_node_graph(saver: Any) -> Any:
    """The orchestration phase's ten-node shape, every task a no-op."""
    from langgraph.graph import END, START, StateGraph

    graph = StateGraph(RunState)
    for node in "abcdefgh":
        graph.add_node(node, _noop)
    graph.add_edge(START, "a")
    joins: dict[str, list[str]] = {}
    for source, targets in SHAPE.items():
        for target in targets:
            joins.setdefault(target, []).append(source)
    for target, sources in joins.items():
        # A join waits for all of its sources, as Quipu's does.
        graph.add_edge(sources if len(sources) > 1 else sources[0], target)
    graph.add_edge("h", END)
    return graph.compile(checkpointer=saver)


def loop_graph(saver: Any, steps: int) -> Any:
    from langgraph.graph import END, START, StateGraph

    def step(state: LoopState) -> dict[str, Any]:
        return {"count": state["count"] + 1}

    graph = StateGraph(LoopState)
    graph.add_node("step", step)
    graph.add_edge(START, "step")
    graph.add_conditional_edges("step", lambda s: "step" if s["count"] < steps else END)
    return graph.compile(checkpointer=saver)


def _connect(database_url: str) -> psycopg.Connection[Any]:
    # The connection PostgresSaver.from_conn_string opens.
    return psycopg.connect(database_url, autocommit=True, prepare_threshold=0, row_factory=dict_row)


class LangGraphPeer:
    """``threads`` compiled ten-node graphs, each with its saver and connection."""

    def __init__(self, database_url: str, threads: int) -> None:
        from langgraph.checkpoint.postgres import PostgresSaver

        self.conns = [_connect(database_url) for _ in range(threads)]
        savers = [PostgresSaver(conn) for conn in self.conns]
        savers[0].setup()
        self.graphs = [ten_node_graph(saver) for saver in savers]
        self.run_once(self.graphs[0])  # warm-up, untimed

    @staticmethod
    def run_once(graph: Any) -> None:
        config = {"configurable": {"thread_id": str(uuid.uuid4())}}
        out = graph.invoke(dict(INPUT), config, durability="sync")
        if out != INPUT:
            raise RuntimeError(f"LangGraph run ended with {out!r}")

    def run(self, n: int) -> float:
        """Seconds for ``n`` runs spread over the threads."""
        return run_threads(lambda k: self.run_once(self.graphs[k]), n, len(self.graphs))

    def close(self) -> None:
        for conn in self.conns:
            conn.close()


def run_threads(one: Callable[[int], None], n: int, threads: int) -> float:
    """Seconds for ``n`` calls of ``one(thread index)`` spread over ``threads`` threads."""
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for _ in range(k, n, threads):
                one(k)
        except BaseException as error:
            errors.append(error)

    pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    t0 = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return elapsed


class LangGraphHistory:
    """One thread of ``steps`` checkpoints; ``get_state`` at any of them."""

    def __init__(self, database_url: str, steps: int) -> None:
        from langgraph.checkpoint.postgres import PostgresSaver

        self.conn = _connect(database_url)
        self.saver = PostgresSaver(self.conn)
        self.saver.setup()
        thread = str(uuid.uuid4())
        t0 = time.perf_counter()
        with _connect(database_url) as build_conn:
            # Building is not measured: commits need not wait for the disk here.
            build_conn.execute("SET synchronous_commit = off")
            builder = loop_graph(PostgresSaver(build_conn), steps)
            builder.invoke({"count": 0}, {"configurable": {"thread_id": thread}, "recursion_limit": steps + 10})
        self.build_s = time.perf_counter() - t0
        self.graph = loop_graph(self.saver, steps)
        listed = self.saver.list({"configurable": {"thread_id": thread}})
        self.ids = [t.config["configurable"]["checkpoint_id"] for t in listed][::-1]  # oldest first
        self.thread = thread

    def get_state_ms(self, fraction: float) -> float:
        """``get_state`` at the checkpoint this far (0..1) into the history."""
        checkpoint = self.ids[min(int(fraction * len(self.ids)), len(self.ids) - 1)]
        config = {"configurable": {"thread_id": self.thread, "checkpoint_id": checkpoint}}
        t0 = time.perf_counter()
        snapshot = self.graph.get_state(config)
        ms = (time.perf_counter() - t0) * 1000
        if snapshot.config["configurable"]["checkpoint_id"] != checkpoint or "count" not in snapshot.values:
            raise RuntimeError(f"get_state at {checkpoint} gave {snapshot!r}")
        return ms

    def close(self) -> None:
        self.conn.close()
