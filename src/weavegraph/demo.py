"""The bundled demo workflow that ``weavegraph demo`` (and ``make demo``) runs.

A small "research assistant": it plans a question into topics, fans out to three researchers that
run in parallel (one of them hits a recoverable rate limit and records it in the ``errors``
channel instead of failing), joins their findings, drafts an answer with a fake local "model" that
streams tokens like an LLM, and reviews the draft in a bounded loop before publishing it.

Everything is local and deterministic; ``token_delay`` only slows the fake model down so a person
can watch the stream. Given a real chat model (``weavegraph demo --model openai:MODEL``, or
``WEAVEGRAPH_DEMO_MODEL``), the draft step asks it instead, streaming its tokens the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import weavegraph as wg

DEFAULT_QUESTION = "How do supersteps keep concurrent workflow nodes deterministic?"
MODEL_ENV = "WEAVEGRAPH_DEMO_MODEL"
"""Names the real model the draft step asks (``openai:MODEL``) when ``--model`` is not given."""
MAX_REVISIONS = 3
"""The review loop's bound: the draft is revised at most this many times."""

RESEARCHERS = ("search_papers", "search_docs", "search_code")

_FINDINGS: dict[str, str] = {
    "search_papers": "Pregel (2010) runs vertices in supersteps separated by global barriers.",
    "search_docs": "Partial updates are merged by reducers in a fixed order at each barrier.",
    "search_code": "Each node reads the same immutable snapshot, so no node sees another's writes.",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeModel:
    """A deterministic stand-in for an LLM: it "generates" text word by word."""

    token_delay: float = 0.0

    async def generate(self, ctx: wg.NodeContext, prompt: str, revision: int) -> str:
        """Stream an answer to ``prompt`` as LLM chunk events and return the whole text."""
        words = _compose(prompt, revision).split(" ")
        stream_id = f"draft-{revision}"
        for index, word in enumerate(words):
            chunk = word if index == 0 else f" {word}"
            ctx.emit_llm_chunk(chunk, stream_id=stream_id, model="fake-local-model")
            if self.token_delay:
                await asyncio.sleep(self.token_delay)
        text = " ".join(words)
        ctx.emit_llm_final(text, stream_id=stream_id, model="fake-local-model", tokens=len(words))
        return text


def _compose(prompt: str, revision: int) -> str:
    base = (
        "Supersteps run every ready node on one frozen snapshot, then merge their updates "
        "with reducers in frontier order at a barrier."
    )
    if revision == 0:
        return base
    detail = [
        "The merged state is checkpointed before routing picks the next frontier.",
        "Because merge order never depends on timing, reruns give identical state.",
        f"Sources considered: {prompt}.",
    ]
    return " ".join([base, *detail[:revision]])


async def plan(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    """Turn the user's question into research topics."""
    question = next((m.content for m in snapshot.messages if m.role == wg.Role.USER), None)
    if question is None:
        raise wg.MissingInput("a user message with the question")
    ctx.emit("plan", f"planning research for: {question}")
    return wg.NodePartial(extra={"question": question, "topics": list(RESEARCHERS)})


def _researcher(name: str, *, rate_limited: bool = False) -> Any:
    async def research(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        ctx.emit("research", f"{name} is looking into {snapshot.extra.get('question')!r}")
        await asyncio.sleep(0)
        partial = wg.NodePartial(extra={"findings": [{"source": name, "text": _FINDINGS[name]}]})
        if rate_limited:
            # A recoverable problem: record it and carry on with cached results.
            problem = wg.ErrorEvent(
                message=f"{name}: rate limited by the index, used cached results",
                node_id=ctx.node_id,
                step=ctx.step,
                error_type="ProviderError",
                tags=("recoverable",),
            )
            ctx.emit_diagnostic("research", problem.message)
            partial = partial.with_errors([problem])
        return partial

    research.__name__ = name
    return research


def _findings(snapshot: wg.StateSnapshot) -> list[Mapping[str, Any]]:
    found: Any = snapshot.extra.get("findings") or []
    return [item for item in found if isinstance(item, Mapping)]


async def collect(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    """The join: runs once all researchers have reported."""
    ctx.emit("collect", f"collected {len(_findings(snapshot))} findings")
    return wg.NodePartial(extra={"revision": 0})


def _draft(model: FakeModel | wg.llm.ChatModel) -> Any:
    async def draft(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        revision = int(snapshot.extra.get("revision") or 0)
        if isinstance(model, FakeModel):
            sources = ", ".join(str(f.get("source")) for f in _findings(snapshot))
            text = await model.generate(ctx, sources, revision)
        else:
            answer = await wg.llm.respond(ctx, model, _draft_prompt(snapshot, revision))
            text = answer.content
        return wg.NodePartial(extra={"draft": text})

    return draft


def _draft_prompt(snapshot: wg.StateSnapshot, revision: int) -> list[wg.Message]:
    """What a real model is asked: the question, the findings, and on revisions for more depth."""
    findings = "\n".join(f"- {f.get('source')}: {f.get('text')}" for f in _findings(snapshot))
    ask = f"Question: {snapshot.extra.get('question')}\nFindings:\n{findings}"
    if revision:
        previous = str(snapshot.extra.get("draft") or "")
        ask += (
            f"\nYour previous draft was too short:\n{previous}\nWrite a longer, more detailed one."
        )
    system = "Draft an answer to the question from the findings, in plain prose, 60 to 120 words."
    return [wg.Message.system(system), wg.Message.user(ask)]


async def review(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    """Score the draft; the router below decides whether to revise or publish."""
    draft = str(snapshot.extra.get("draft") or "")
    revision = int(snapshot.extra.get("revision") or 0)
    score = min(10, len(draft.split()) // 6)
    ctx.emit("review", f"revision {revision} scored {score}/10")
    return wg.NodePartial(extra={"score": score, "revision": revision + 1})


def route_after_review(snapshot: wg.StateSnapshot) -> str:
    """Revise until the score is good enough, at most MAX_REVISIONS times."""
    score = int(snapshot.extra.get("score") or 0)
    revisions = int(snapshot.extra.get("revision") or 0)
    if score >= 8 or revisions > MAX_REVISIONS:
        return "publish"
    return "draft"


async def publish(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    """Post the final answer as the assistant's message."""
    draft = str(snapshot.extra.get("draft") or "")
    ctx.emit("publish", f"published {len(draft.split())} words")
    return wg.NodePartial(messages=(wg.Message.assistant(draft),), extra={"published": True})


def build_demo(
    *, token_delay: float = 0.0, model: wg.llm.ChatModel | None = None
) -> wg.GraphBuilder:
    """The demo graph, not yet compiled (so callers can add to it); ``model`` drafts the answer
    instead of the fake local model."""
    builder = wg.GraphBuilder()
    builder.add_node("plan", plan)
    for index, name in enumerate(RESEARCHERS):
        builder.add_node(name, _researcher(name, rate_limited=index == 1))
    builder.add_node("collect", collect)
    builder.add_node("draft", _draft(model or FakeModel(token_delay=token_delay)))
    builder.add_node("review", review)
    builder.add_node("publish", publish)
    builder.add_edge(wg.START, "plan")
    for name in RESEARCHERS:
        builder.add_edge("plan", name)
    builder.add_edge(list(RESEARCHERS), "collect")
    builder.add_edge("collect", "draft")
    builder.add_edge("draft", "review")
    builder.add_conditional_edge("review", route_after_review, targets=["draft", "publish"])
    builder.add_edge("publish", wg.END)
    builder.with_extra_reducer("findings", wg.reducers.append)
    builder.with_max_steps(50)
    return builder


def demo_app(*, token_delay: float = 0.0, model: wg.llm.ChatModel | None = None) -> wg.App:
    """The compiled demo workflow (also loadable as ``weavegraph.demo:demo_app``)."""
    return build_demo(token_delay=token_delay, model=model).compile()


def initial_state(question: str = DEFAULT_QUESTION) -> wg.VersionedState:
    """The demo's starting state: the user's question."""
    return wg.VersionedState.new_with_user_message(question)
