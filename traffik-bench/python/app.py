"""traffik-bench's Python targets: the Python library Traffik on FastAPI + uvicorn.

The harness (`traffik-bench run --with-python`) installs this into its virtualenv and starts
it with uvicorn; the environment says what to serve:

- BENCH_MODE: "dependency" (`Depends(HTTPThrottle)` on GET /test), "middleware"
  (`ThrottleMiddleware` on /test) or "websocket" (`WebSocketThrottle` per message on /ws)
- BENCH_RATE: the limit, e.g. "100/min"
- BENCH_BACKEND: "inmemory" (default) or "redis", with BENCH_REDIS_URL

Clients are told apart by the X-Client-ID header (else the peer address), as in the Rust
targets. GET /__bench__/health is never throttled.
"""

import os

from fastapi import Depends, FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import PlainTextResponse
from traffik import HTTPThrottle, WebSocketThrottle, is_throttled
from traffik.backends.inmemory import InMemoryBackend

MODE = os.environ.get("BENCH_MODE", "dependency")
RATE = os.environ["BENCH_RATE"]
BACKEND = os.environ.get("BENCH_BACKEND", "inmemory")


async def client_id(connection):
    return connection.headers.get("x-client-id") or connection.client.host


if BACKEND == "redis":
    from traffik.backends.redis import RedisBackend

    backend = RedisBackend(
        connection=os.environ["BENCH_REDIS_URL"], namespace="traffik-bench-py"
    )
else:
    backend = InMemoryBackend(namespace="traffik-bench-py")

app = FastAPI(lifespan=backend.lifespan)


@app.get("/__bench__/health")
async def health():
    return PlainTextResponse("ok")


if MODE == "dependency":
    throttle = HTTPThrottle("bench", rate=RATE, identifier=client_id)

    @app.get("/test", dependencies=[Depends(throttle)])
    async def test():
        return PlainTextResponse("ok")

elif MODE == "middleware":
    from traffik.middleware import MiddlewareThrottle, ThrottleMiddleware

    throttle = HTTPThrottle("bench", rate=RATE, identifier=client_id)
    app.add_middleware(
        ThrottleMiddleware,
        middleware_throttles=[MiddlewareThrottle(throttle, path="/test")],
        backend=backend,
    )

    @app.get("/test")
    async def test():
        return PlainTextResponse("ok")

elif MODE == "websocket":
    messages = WebSocketThrottle("bench", rate=RATE, identifier=client_id)

    @app.websocket("/ws")
    async def echo(websocket: WebSocket):
        await websocket.accept()
        try:
            while True:
                data = await websocket.receive_text()
                await messages(websocket)
                if is_throttled(websocket):
                    continue  # the client got a rate_limit frame
                await websocket.send_text(data)
        except WebSocketDisconnect:
            pass

else:
    raise SystemExit(f"unknown BENCH_MODE {MODE!r}")
