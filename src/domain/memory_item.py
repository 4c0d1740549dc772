"""What artifacts and notes share: the vocabulary of memory items and their lifecycle rules.

Both are memory items (CELLSTATE reference) with the same rules. Quipu hashes the content
(SHA-256) itself and never takes the hash from the client. A TTL becomes an absolute
``expires_at`` when the command is decided, so every reader of the event agrees on when
the item expires. Superseding is a chain: the replacement's first event names the item
it ``supersedes``, and the old one records ``superseded_by`` - once only, since a chain
never forks. Delete appends a tombstone; the history stays. Each kind keeps its own
event classes (kinds, codes and payloads are published); ``MemoryItem`` only holds the
rules, so the two cannot drift apart.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal, Protocol, Self
from uuid import UUID

import msgspec

from domain.aggregate import Aggregate, CommandContext
from domain.errors import Conflict, FieldProblem, ValidationFailed
from domain.events import HEADER_FIELDS, DomainEvent

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Content = Annotated[str, msgspec.Meta(min_length=1, max_length=200_000)]
Metadata = Annotated[dict[str, Any], msgspec.Meta(max_length=100)]
NodeName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Confidence = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
SourceTurn = Annotated[int, msgspec.Meta(ge=0)]

ExtractionMethod = Literal[
    "explicit", "inferred", "user_provided", "llm_extraction", "tool_extraction", "memory_recall",
    "external_api", "unknown",
]  # fmt: skip

# Named lifetimes. persistent/permanent never expire; session and scope end with their
# session or scope (not with the clock), so they carry no expires_at either.
TtlName = Literal["persistent", "permanent", "session", "scope", "ephemeral", "short_term", "medium_term", "long_term"]
TTL_SPANS: dict[str, timedelta] = {
    "ephemeral": timedelta(hours=1),
    "short_term": timedelta(days=1),
    "medium_term": timedelta(days=7),
    "long_term": timedelta(days=90),
}
MAX_TTL_MS = 100 * 365 * 24 * 3600 * 1000


class TtlDuration(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An explicit lifetime in milliseconds from the moment the item is written."""

    duration_ms: Annotated[int, msgspec.Meta(gt=0, le=MAX_TTL_MS)]


Ttl = TtlName | TtlDuration


def expiry(ttl: Ttl, now: datetime) -> datetime | None:
    """When an item written at ``now`` with ``ttl`` expires (None: not by the clock)."""
    if isinstance(ttl, TtlDuration):
        return now + timedelta(milliseconds=ttl.duration_ms)
    span = TTL_SPANS.get(ttl)
    return now + span if span is not None else None


def content_hash(content: str) -> str:
    """SHA-256 of the UTF-8 content, hex: computed by Quipu so it can be trusted."""
    return hashlib.sha256(content.encode()).hexdigest()


def check_confidence(confidence: float | None, field: str = "confidence") -> None:
    """Decoding already bounds it; the domain keeps the rule for callers that skip decoding."""
    if confidence is not None and not 0.0 <= confidence <= 1.0:
        raise ValidationFailed([FieldProblem(field, "must be between 0.0 and 1.0", "range")])


class ItemDraft(Protocol):
    """The part of a create body every memory item has (read-only: drafts are frozen)."""

    @property
    def content(self) -> str: ...
    @property
    def metadata(self) -> dict[str, Any]: ...
    @property
    def ttl(self) -> Ttl: ...
    @property
    def execution_id(self) -> UUID | None: ...
    @property
    def node_id(self) -> str | None: ...


class ItemPatch(Protocol):
    """The part of a partial update every memory item has; None leaves a field as it is."""

    @property
    def content(self) -> str | None: ...
    @property
    def metadata(self) -> dict[str, Any] | None: ...
    @property
    def ttl(self) -> Ttl | None: ...


class MemoryItem(Aggregate):
    """Base of the artifact and note aggregates: the supersede chain, the tombstone, TTL
    and content hash. A subclass names its four event classes and the fields of its own
    that a patch may change; every event field is an attribute of the same name."""

    CREATED: ClassVar[type[DomainEvent]]
    UPDATED: ClassVar[type[DomainEvent]]
    SUPERSEDED: ClassVar[type[DomainEvent]]
    DELETED: ClassVar[type[DomainEvent]]
    PATCHABLE: ClassVar[tuple[str, ...]]
    # For messages: "an artifact", "a note".
    A_NOUN: ClassVar[str]

    content: str
    content_hash: str
    metadata: dict[str, Any]
    ttl: Ttl
    expires_at: datetime | None
    supersedes: UUID | None
    superseded_by: UUID | None
    execution_id: UUID | None
    node_id: str | None
    deleted: bool
    request_hash: str | None

    @classmethod
    def _create_item(
        cls,
        ctx: CommandContext,
        *,
        item_id: UUID,
        draft: ItemDraft,
        now: datetime,
        causes: tuple[UUID, ...],
        replaces: MemoryItem | None,
        request_hash: str | None,
        **own: Any,
    ) -> Self:
        """Start the stream; with ``replaces``, as the next link of that item's chain, its
        first event naming the replaced item's latest event as the first cause."""
        if replaces is not None:
            replaces.require_supersedable()
            assert replaces.last_event_id is not None
            causes = (replaces.last_event_id, *causes)
        return cls._create(
            cls.CREATED,
            CommandContext(ctx.tenant_id, ctx.actor, causes),
            aggregate_id=item_id,
            content=draft.content,
            content_hash=content_hash(draft.content),
            metadata=draft.metadata,
            ttl=draft.ttl,
            expires_at=expiry(draft.ttl, now),
            supersedes=replaces.id if replaces is not None else None,
            execution_id=draft.execution_id,
            node_id=draft.node_id,
            request_hash=request_hash,
            **own,
        )

    def _update_item(self, ctx: CommandContext, patch: ItemPatch, *, now: datetime) -> None:
        """Apply what ``patch`` gives; nothing is appended when nothing changes. A new TTL
        counts from now. The event carries every mutable field after the change."""
        self.require_live()
        if self.superseded_by is not None:
            raise Conflict(f"{self.CATEGORY} {self.id} was superseded by {self.superseded_by}; update that one")
        changed = {f: getattr(self, f) if getattr(patch, f) is None else getattr(patch, f) for f in self.PATCHABLE}
        content = self.content if patch.content is None else patch.content
        changed |= {
            "content": content,
            "content_hash": content_hash(content),
            "metadata": self.metadata if patch.metadata is None else patch.metadata,
            "ttl": self.ttl if patch.ttl is None else patch.ttl,
            "expires_at": self.expires_at if patch.ttl is None else expiry(patch.ttl, now),
        }
        if all(getattr(self, k) == v for k, v in changed.items()):
            return
        self._trigger(self.UPDATED, ctx, **changed)

    def supersede(self, ctx: CommandContext, *, by: UUID) -> None:
        """Record that ``by`` replaces this item (``ctx`` names its first event)."""
        self.require_supersedable()
        if by == self.id:
            raise Conflict(f"{self.A_NOUN} cannot supersede itself")
        self._trigger(self.SUPERSEDED, ctx, superseded_by=by)

    def delete(self, ctx: CommandContext, *, reason: str | None = None) -> None:
        self.require_live()
        self._trigger(self.DELETED, ctx, reason=reason)

    def require_live(self) -> None:
        if self.deleted:
            raise Conflict(f"{self.CATEGORY} {self.id} was deleted")

    def require_supersedable(self) -> None:
        self.require_live()
        if self.superseded_by is not None:
            raise Conflict(f"{self.CATEGORY} {self.id} was already superseded by {self.superseded_by}")

    def apply(self, event: DomainEvent) -> None:
        if isinstance(event, self.CREATED):
            self._take(event)
            self.superseded_by = None
            self.deleted = False
        elif isinstance(event, (self.UPDATED, self.SUPERSEDED)):
            self._take(event)
        elif isinstance(event, self.DELETED):
            self.deleted = True
        else:  # pragma: no cover - a new kind without a branch is a programming error
            raise TypeError(f"{type(self).__name__} cannot apply {type(event).__name__}")

    def _take(self, event: DomainEvent) -> None:
        """Copy the event's payload onto the attributes of the same names."""
        for name in event.__struct_fields__:
            if name not in HEADER_FIELDS:
                setattr(self, name, getattr(event, name))
