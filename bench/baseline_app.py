"""The baseline every HTTP benchmark divides by: a bare FastAPI POST with a pydantic body.

Served exactly as `pesan serve` serves pesan (uvicorn, one process, the same options), so
that a ratio against it measures what pesan adds, not the machine's mood at the time.

    .venv/bin/python bench/baseline_app.py PORT
"""

import sys

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, Field


class Body(BaseModel):
    content: str = Field(min_length=1, max_length=8000)
    clientMessageId: str | None = None


class Answer(BaseModel):
    id: str
    content: str
    clientMessageId: str | None


app = FastAPI()
_count = 0


@app.post("/echo/{conversation_id}/messages", status_code=201, response_model=Answer)
async def echo(conversation_id: str, body: Body) -> Answer:
    global _count
    _count += 1
    return Answer(
        id=f"{conversation_id}-{_count}", content=body.content, clientMessageId=body.clientMessageId
    )


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, proxy_headers=True)
