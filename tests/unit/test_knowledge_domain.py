"""Artifacts, notes and entity edges: guards, supersede chains, TTLs and replay, without I/O."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.aggregate import Aggregate, CommandContext
from domain.artifact import Artifact, ArtifactDraft, ArtifactPatch, TtlDuration, expiry
from domain.entity_edge import EdgeDraft, EdgePatch, EntityEdge, Participant, Provenance
from domain.errors import Conflict, ValidationFailed
from domain.events import DomainEvent, all_kinds
from domain.hashing import canonical_encoding
from domain.note import Note, NoteDraft, NotePatch

CTX = CommandContext("acme", "tester")
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def _draft(**overrides: Any) -> ArtifactDraft:
    fields: dict[str, Any] = {
        "name": "trace",
        "artifact_type": "error_log",
        "content": "boom",
        "extraction_method": "explicit",
        **overrides,
    }
    return msgspec.convert(fields, ArtifactDraft)


def _artifact(**overrides: Any) -> Artifact:
    return Artifact.create(CTX, artifact_id=uuid.uuid4(), draft=_draft(**overrides), now=NOW)


def _note(**overrides: Any) -> Note:
    draft = msgspec.convert({"title": "t", "content": "c", "note_type": "fact", **overrides}, NoteDraft)
    return Note.create(CTX, note_id=uuid.uuid4(), draft=draft, now=NOW)


def _edge_draft(*ids: uuid.UUID, **overrides: Any) -> EdgeDraft:
    parts = [{"entity_type": "note", "entity_id": str(i), "role": "member"} for i in ids]
    return msgspec.convert({"edge_type": "supports", "participants": parts, "provenance": {}, **overrides}, EdgeDraft)


def _replay(events: list[DomainEvent]) -> Aggregate:
    rebuilt = None
    for e in events:
        rebuilt = msgspec.json.decode(canonical_encoding(e), type=type(e)).mutate(rebuilt)
    assert rebuilt is not None
    return rebuilt


def test_kinds_have_their_codes() -> None:
    kinds = all_kinds()
    assert kinds["artifact.created"] == 0xD301 and kinds["artifact.deleted"] == 0xD304
    assert kinds["note.superseded"] == 0xD403 and kinds["edge.updated"] == 0xD502


def test_content_hash_is_computed_and_follows_updates() -> None:
    a = _artifact(content="hello")
    assert a.content_hash == hashlib.sha256(b"hello").hexdigest()
    a.update(CTX, ArtifactPatch(content="héllo"), now=NOW)
    assert a.content_hash == hashlib.sha256("héllo".encode()).hexdigest() and a.version == 2


def test_ttl_becomes_an_absolute_expiry() -> None:
    assert expiry("persistent", NOW) is None and expiry("session", NOW) is None
    assert expiry("ephemeral", NOW) == NOW + timedelta(hours=1)
    assert expiry(TtlDuration(duration_ms=1500), NOW) == NOW + timedelta(milliseconds=1500)
    a = _artifact(ttl={"duration_ms": 60_000})
    assert a.expires_at == NOW + timedelta(minutes=1)
    later = NOW + timedelta(days=1)
    a.update(CTX, ArtifactPatch(ttl="short_term"), now=later)
    assert a.ttl == "short_term" and a.expires_at == later + timedelta(days=1)
    a.update(CTX, ArtifactPatch(ttl="persistent"), now=later)
    assert a.expires_at is None


def test_drafts_reject_bad_input_on_decoding() -> None:
    for bad in (
        {"confidence": 1.5},
        {"ttl": {"duration_ms": 0}},
        {"ttl": "forever"},
        {"artifact_type": "poem"},
        {"surprise": 1},
        {"content": ""},
    ):
        with pytest.raises(msgspec.ValidationError):
            _draft(**bad)


def test_the_domain_keeps_the_confidence_rule_without_decoding() -> None:
    draft = ArtifactDraft(name="n", artifact_type="fact", content="c", extraction_method="inferred", confidence=2.0)
    with pytest.raises(ValidationFailed) as error:
        Artifact.create(CTX, artifact_id=uuid.uuid4(), draft=draft, now=NOW)
    assert error.value.problems[0].field == "confidence"


def test_an_update_that_changes_nothing_appends_nothing() -> None:
    a = _artifact()
    a.collect_events()
    a.update(CTX, ArtifactPatch(name="trace", content="boom"), now=NOW)
    assert a.collect_events() == [] and a.version == 1


def test_supersede_chain_links_both_ways_and_never_forks() -> None:
    old = _artifact()
    old_created = old.last_event_id
    new = Artifact.create(CTX, artifact_id=uuid.uuid4(), draft=_draft(content="v2"), now=NOW, replaces=old)
    assert new.last_event_id is not None
    old.supersede(CommandContext("acme", "tester", (new.last_event_id,)), by=new.id)
    assert new.supersedes == old.id and old.superseded_by == new.id
    (superseded,) = old.collect_events()[1:]
    assert superseded.parent_ids == (old_created, new.last_event_id)
    assert new.collect_events()[0].parent_ids == (old_created,)
    with pytest.raises(Conflict):
        old.supersede(CTX, by=uuid.uuid4())
    with pytest.raises(Conflict):
        Artifact.create(CTX, artifact_id=uuid.uuid4(), draft=_draft(), now=NOW, replaces=old)
    with pytest.raises(Conflict):
        old.update(CTX, ArtifactPatch(name="late"), now=NOW)
    with pytest.raises(Conflict):
        new.supersede(CTX, by=new.id)


def test_a_deleted_artifact_refuses_every_later_command() -> None:
    a = _artifact()
    a.delete(CTX)
    with pytest.raises(Conflict):
        a.update(CTX, ArtifactPatch(name="x"), now=NOW)
    with pytest.raises(Conflict):
        a.delete(CTX)
    with pytest.raises(Conflict):
        a.supersede(CTX, by=uuid.uuid4())
    assert a.deleted and a.version == 2


def test_replaying_an_artifact_gives_the_same_state() -> None:
    a = _artifact(ttl="ephemeral", confidence=0.5, metadata={"k": 1})
    a.update(CTX, ArtifactPatch(content="v2", metadata={"k": 2}, ttl=TtlDuration(duration_ms=10)), now=NOW)
    a.supersede(CTX, by=uuid.uuid4())
    a.delete(CTX)
    rebuilt = _replay(a.collect_events())
    assert isinstance(rebuilt, Artifact)
    fields = ("content", "content_hash", "metadata", "ttl", "expires_at", "superseded_by", "deleted", "version")
    assert [getattr(rebuilt, f) for f in fields] == [getattr(a, f) for f in fields]


def test_a_note_names_its_sources_events_as_parents() -> None:
    sources = (uuid.uuid4(), uuid.uuid4())
    cause = uuid.uuid4()
    source_note = uuid.uuid4()
    draft = NoteDraft(title="t", content="c", note_type="insight", source_note_ids=[source_note, source_note])
    n = Note.create(
        CommandContext("acme", "tester", (cause,)), note_id=uuid.uuid4(), draft=draft, now=NOW, source_events=sources
    )
    assert n.collect_events()[0].parent_ids == (*sources, cause)
    assert n.source_note_ids == [source_note] and n.abstraction_level == "raw"
    own = uuid.uuid4()
    with pytest.raises(Conflict):
        Note.create(
            CTX, note_id=own, draft=NoteDraft(title="t", content="c", note_type="fact", source_note_ids=[own]), now=NOW
        )


def test_note_updates_supersede_and_replay() -> None:
    n = _note(ttl="long_term")
    n.update(CTX, NotePatch(abstraction_level="principle", note_type="strategy"), now=NOW)
    n.update(CTX, NotePatch(abstraction_level="principle"), now=NOW)  # no change, no event
    assert n.version == 2 and n.abstraction_level == "principle" and n.expires_at == NOW + timedelta(days=90)
    n.supersede(CTX, by=uuid.uuid4())
    with pytest.raises(Conflict):
        n.supersede(CTX, by=uuid.uuid4())
    with pytest.raises(Conflict):
        n.update(CTX, NotePatch(title="late"), now=NOW)
    n.delete(CTX)
    rebuilt = _replay(n.collect_events())
    assert isinstance(rebuilt, Note)
    assert (rebuilt.note_type, rebuilt.superseded_by, rebuilt.deleted, rebuilt.version) == (
        "strategy",
        n.superseded_by,
        True,
        4,
    )


def test_edges_relate_distinct_entities_with_a_bounded_weight() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    with pytest.raises(msgspec.ValidationError):
        _edge_draft(a)  # one participant
    with pytest.raises(msgspec.ValidationError):
        _edge_draft(a, b, weight=1.5)
    with pytest.raises(ValidationFailed) as error:
        EntityEdge.create(CTX, edge_id=uuid.uuid4(), draft=_edge_draft(a, b, a))
    assert error.value.problems[0].field == "participants[2].entity_id"
    with pytest.raises(ValidationFailed):
        bad = EdgeDraft(
            edge_type="causal",
            participants=[Participant(entity_type="note", entity_id=a), Participant(entity_type="note", entity_id=b)],
            provenance=Provenance(confidence=3.0),
        )
        EntityEdge.create(CTX, edge_id=uuid.uuid4(), draft=bad)


def test_edge_update_delete_and_replay() -> None:
    e = EntityEdge.create(CTX, edge_id=uuid.uuid4(), draft=_edge_draft(uuid.uuid4(), uuid.uuid4(), weight=0.2))
    e.update(CTX, EdgePatch(weight=0.2))
    assert e.version == 1
    e.update(CTX, EdgePatch(edge_type="contradicts", weight=0.9, metadata={"why": "x"}))
    with pytest.raises(ValidationFailed):
        e.update(CTX, EdgePatch(weight=-1.0))
    e.delete(CTX)
    with pytest.raises(Conflict):
        e.update(CTX, EdgePatch(weight=0.1))
    rebuilt = _replay(e.collect_events())
    assert isinstance(rebuilt, EntityEdge)
    assert (rebuilt.edge_type, rebuilt.weight, rebuilt.deleted, rebuilt.participants) == (
        "contradicts",
        0.9,
        True,
        e.participants,
    )


patches = st.builds(
    ArtifactPatch,
    name=st.none() | st.sampled_from(["a", "b"]),
    content=st.none() | st.sampled_from(["x", "y"]),
    metadata=st.none() | st.dictionaries(st.sampled_from(["k", "j"]), st.integers(0, 2), max_size=2),
    ttl=st.none() | st.sampled_from(["persistent", "ephemeral", TtlDuration(duration_ms=5)]),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(patches, max_size=8))
def test_any_sequence_of_updates_replays_to_the_live_state(steps: list[ArtifactPatch]) -> None:
    a = _artifact()
    for step in steps:
        a.update(CTX, step, now=NOW)
    rebuilt = _replay(a.collect_events())
    assert isinstance(rebuilt, Artifact)
    fields = ("name", "content", "content_hash", "metadata", "ttl", "expires_at", "version", "last_event_id")
    assert [getattr(rebuilt, f) for f in fields] == [getattr(a, f) for f in fields]
