"""The phases that measure Quipu against its own baselines: append, read-model lag, DAG walks,
time travel and locks. Each turns its module's measurement into table rows and JSON figures."""

from __future__ import annotations

from bench import append, dag, lag, locks, time_travel
from bench.common import fmt, pct
from bench.phase import Context, Outcome, Row


def append_phase(ctx: Context) -> Outcome:
    out = Outcome()
    for a in append.measure(ctx.store, ctx.database_url, int(ctx.sizes["append_n"])):
        ratio = a.quipu_eps / a.raw_eps
        out.rows.append(
            (
                f"Append throughput, {a.threads} thread{'s' if a.threads > 1 else ''} (Workflow.create via save_all; "
                f"baseline raw INSERT+COMMIT of {a.state_bytes}-byte rows)",
                fmt(a.quipu_eps, "events/s"),
                fmt(a.raw_eps, "rows/s"),
                f"{ratio * 100:.0f}% / goal >= {50 if a.threads == 1 else 80}%"
                f" {'OK' if ratio >= (0.5 if a.threads == 1 else 0.8) else 'MISS'}",
            )
        )
        out.figures |= {
            f"append_ratio_{a.threads}": ratio,
            f"append_eps_{a.threads}": a.quipu_eps,
            f"append_raw_eps_{a.threads}": a.raw_eps,
        }
    return out


def lag_phase(ctx: Context) -> Outcome:
    s = ctx.sizes
    lags = lag.measure(ctx.store, ctx.database_url, ctx.nats_url, s["lag_rate"], s["lag_s"])
    l50, l99 = pct(lags.lags_ms, 50), pct(lags.lags_ms, 99)
    note = (
        f"{len(lags.lags_ms)} events at {lags.achieved_rate:.0f}/s (target {lags.target_rate:.0f}/s)"
        f"{'; ' + str(lags.missing) + ' missing from read model' if lags.missing else ''}"
    )
    return Outcome(
        rows=[
            (f"Append -> rm_workflows lag p50 ({note})", fmt(l50, "ms"), "-", f"goal <= 10 ms {_ok(l50 <= 10)}"),
            ("Append -> rm_workflows lag p99", fmt(l99, "ms"), "-", f"goal <= 50 ms {_ok(l99 <= 50)}"),
        ],
        figures={"lag_p50_ms": l50, "lag_p99_ms": l99},
    )


def dag_phase(ctx: Context) -> Outcome:
    walks = dag.measure(ctx.store, ctx.database_url, int(ctx.sizes["dag_n"]), int(ctx.sizes["samples"]))
    s50, s99 = pct(walks.select1_ms, 50), pct(walks.select1_ms, 99)
    scale = f"{walks.events:,}-event DAG, max depth {walks.max_depth}"
    rows: list[Row] = []
    for name, values, mean in (
        ("Ancestors", walks.up_ms, walks.mean_returned_up),
        ("Descendants", walks.down_ms, walks.mean_returned_down),
    ):
        p50, p99 = pct(values, 50), pct(values, 99)
        rows.append(
            (
                f"{name} walk p50 ({scale}, built in {walks.build_s:.0f} s; max_depth=100, limit=100;"
                f" avg {mean:.0f} returned; baseline SELECT 1)",
                fmt(p50, "ms"),
                fmt(s50, "ms"),
                f"{p50 / s50:.0f}x",
            )
        )
        rows.append(
            (
                f"{name} walk p99 (goal is for 1M events; measured at {walks.events:,})",
                fmt(p99, "ms"),
                fmt(s99, "ms"),
                f"{p99 / s99:.0f}x / goal p99 <= 10 ms {_ok(p99 <= 10)}",
            )
        )
    p99_both = max(pct(walks.up_ms, 99), pct(walks.down_ms, 99))
    return Outcome(rows=rows, figures={"walk_p99_ms": p99_both, "walk_events": float(walks.events)})


def time_travel_phase(ctx: Context) -> Outcome:
    t = time_travel.measure(ctx.store, ctx.database_url, int(ctx.sizes["tt_events"]), int(ctx.sizes["tt_repeats"]))
    ctx.shared["time_travel"] = t  # the peer phase measures LangGraph against this execution
    w50, b50 = t.with_p50, t.without_p50
    rows: list[Row] = [
        (
            f"State of a {t.events:,}-event execution as of its middle event, p50 (resolve the event id, then"
            f" load from the latest snapshot, one every {t.interval} events, {t.snapshots} written;"
            f" baseline the same load replaying every event from version 1; {len(t.with_ms)} repeats)",
            fmt(w50, "ms"),
            fmt(b50, "ms"),
            f"{b50 / w50:.0f}x faster / goal <= 50 ms {_ok(w50 <= 50)}",
        ),
        (
            f"Replay rate, the same execution as NDJSON (the replay endpoint's reader;"
            f" baseline the global log reader over the same {t.events:,} events)",
            fmt(t.replay_eps, "events/s"),
            fmt(t.log_read_eps, "events/s"),
            f"{t.replay_eps / t.log_read_eps * 100:.0f}%",
        ),
        (
            f"Projection rebuild rate (`quipu projector rebuild timeline` over the whole bench log,"
            f" {t.rebuild_events:,} events)",
            fmt(t.rebuild_eps, "events/s"),
            "-",
            f"goal >= 20,000 events/s {_ok(t.rebuild_eps >= 20_000)}",
        ),
    ]
    figures: dict[str, float | None] = {"state_as_of_p50_ms": w50, "time_travel_events": float(t.events)}
    figures["rebuild_eps"] = t.rebuild_eps
    return Outcome(rows=rows, figures=figures)


def locks_phase(ctx: Context) -> Outcome:
    r = locks.measure(ctx.store, ctx.database_url, int(ctx.sizes["lock_trips"]))
    return Outcome(rows=locks.rows(r), figures={"lock_round_trips_per_s": r.quipu_rps})


def _ok(ok: bool) -> str:
    return "OK" if ok else "MISS"
