"""The baseline for the /api/metrics benchmark: a bare FastAPI endpoint served the same way as the gateway."""

import sys

import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.get("/api/metrics")
async def metrics() -> dict[str, int]:
    return {"ok": 1}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False, lifespan="off")
