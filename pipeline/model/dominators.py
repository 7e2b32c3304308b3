"""Which layers every path to the class scores passes through (the output's dominators in the layer graph).

``target_layer: auto`` takes the last 4-D map larger than 1×1 among these: a map on one branch of an
Inception block (192 of a block's 1,280 channels) explains only what that branch sees. :func:`dominators`
is pure graph logic on (node -> parents); :func:`model_dominators` reads a Keras 3 model's graph, nested
models included (``outer/inner`` paths). TensorFlow is not imported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Hashable, Mapping, Sequence

if TYPE_CHECKING:
    import keras


def dominators(parents: Mapping[Hashable, Sequence[Hashable]], sources: Sequence[Hashable], sink: Hashable) -> set[Hashable]:
    """The nodes every path from ``sources`` to ``sink`` passes through (``sink`` itself included, sources excluded
    unless they are the sink): node v dominates when the sink cannot be reached from the sources without v."""
    children: dict[Hashable, list[Hashable]] = {n: [] for n in parents}
    for node, ps in parents.items():
        for p in ps:
            children.setdefault(p, []).append(node)
    on_a_path = _reaching(parents, sink) & _reached(children, sources)
    out = {sink}
    for v in on_a_path:
        if v in sources or v == sink:
            continue
        if sink not in _reached(children, sources, without=v):
            out.add(v)
    return out


def _reached(children: Mapping[Hashable, Sequence[Hashable]], sources: Sequence[Hashable], without: Hashable = None) -> set[Hashable]:
    seen = {s for s in sources if s != without}
    stack = list(seen)
    while stack:
        for c in children.get(stack.pop(), ()):
            if c != without and c not in seen:
                seen.add(c)
                stack.append(c)
    return seen


def _reaching(parents: Mapping[Hashable, Sequence[Hashable]], sink: Hashable) -> set[Hashable]:
    seen, stack = {sink}, [sink]
    while stack:
        for p in parents.get(stack.pop(), ()):
            if p not in seen:
                seen.add(p)
                stack.append(p)
    return seen


def model_dominators(model: keras.Model, leaves: Callable[[keras.Model], list[str]], prefix: str = "") -> set[str] | None:
    """``outer/inner`` paths of the layers every path from the input to the output passes through, nested
    models expanded where the nested model itself dominates; None when the graph cannot be read (a
    subclassed model), so every layer counts as one (the rule before dominators). ``leaves(model)``: the
    leaf paths of a nested model whose own graph cannot be read (all of them count)."""
    import keras

    graph = getattr(model, "_functional", None) if isinstance(model, keras.Sequential) else model
    by_depth = getattr(graph, "_nodes_by_depth", None)
    if not by_depth or len(getattr(graph, "outputs", None) or ()) != 1:
        return None
    nodes = {n for level in by_depth.values() for n in level}
    parents = {n: [p for p in n.parent_nodes if p in nodes] for n in nodes}
    sources = [n for n in nodes if not parents[n]]
    sink_op = graph.outputs[0]._keras_history.operation
    sinks = [n for n in nodes if n.operation is sink_op]
    if len(sinks) != 1:
        return None
    calls: dict[int, int] = {}
    for n in nodes:
        calls[id(n.operation)] = calls.get(id(n.operation), 0) + 1
    out: set[str] = set()
    for node in dominators(parents, sources, sinks[0]):
        op = node.operation
        if isinstance(op, keras.layers.InputLayer) or calls[id(op)] > 1:  # a layer called twice is no single map
            continue
        out.add(f"{prefix}{op.name}")
        if isinstance(op, keras.Model):
            inner = model_dominators(op, leaves, f"{prefix}{op.name}/")
            out |= inner if inner is not None else {f"{prefix}{op.name}/{p}" for p in leaves(op)}
    return out
