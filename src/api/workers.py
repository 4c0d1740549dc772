"""/api/v1/workers/credentials: a worker trades its API key for NATS access to its own tasks."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Response, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.params import JSONBody

from api.auth import Principal
from api.context import ApiContext, WorkerCredentials

AgentType = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
WorkerName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.:@-]{1,200}$")]


class CredentialsRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    agent_types: Annotated[list[AgentType], msgspec.Meta(min_length=1, max_length=32)]
    name: WorkerName = "worker"  # shows in NATS connection lists and Quipu's logs


class WorkerController(Controller):
    path = "/api/v1/workers"
    tags = ["workers"]

    @post("/credentials", operation_id="issueWorkerCredentials", opt={"scope": "worker"}, status_code=200)
    async def credentials(
        self,
        data: JSONBody[CredentialsRequest],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
    ) -> Response[WorkerCredentials]:
        """NATS credentials for a worker of the key's tenant, for the given agent types.

        The answer names the NATS URL, a `.creds` text (user JWT and nkey seed; `null` when the
        bus runs without authentication), the inbox prefix to connect with, and the durable
        consumer of each agent type. The credentials reach only this tenant's tasks of those
        types and its report subject, and expire at `expires_at`: ask again before then (the
        worker helper does). Needs a key with the `worker` scope (or `write`/`admin`).
        503 while NATS is unreachable.
        """
        if ctx.worker_credentials is None:
            raise HTTPException(status_code=503, detail="this API process hands out no NATS credentials")
        names = list(dict.fromkeys(data.agent_types))
        grant = await ctx.worker_credentials(principal.tenant_id, names, data.name)
        return Response(
            grant,
            headers={"Cache-Control": "no-store"},  # a secret: never kept by a cache on the way
        )
