"""The plan's measurements: one quality task per chunk and rendition, after its chunk's encode.

A plan asked for quality records the metrics (and the measurement's rate) in its details;
the tasks follow from them and the encodes, so the stored plan stays as small as before.
Each `quality-NNNN-<rendition>` task waits until the encode that makes its chunk is done
(that encode's finish releases it), so early chunks are measured while later ones are
still encoding; the assemble waits for them all (they count in the fan-in) and gathers
their results per rendition. Pure: no I/O, no ffmpeg.
"""

from __future__ import annotations

from dataclasses import replace

from chalicelib.graph.plan import Estimate, Kind, Limits, Mode, Plan, Source, TaskSpec

# CPU seconds per source second to measure one rendition of a 720p30 source: libvmaf with
# PSNR and SSIM, both decodes and the upscale (measured 0.97 on one vCPU); scaled by the
# source's pixels and frame rate.
MEASURE_RATE_720P = 1.0


def task_id(chunk: int, rendition: str) -> str:
    return f"quality-{chunk:04d}-{rendition}"


def metrics(p: Plan) -> tuple[str, ...]:
    return tuple((p.details.get("quality") or {}).get("metrics") or ())


def with_measures(p: Plan, wanted: tuple[str, ...], source: Source, limits: Limits) -> Plan:
    """The plan with its quality tasks, if any metric is wanted and there is video to measure."""
    if not wanted or not source.has_video or not p.renditions:
        return p
    pixels = ((source.height or 720) / 720) ** 2
    rate = MEASURE_RATE_720P * pixels * (float(source.fps / 30) if source.fps else 1.0)
    asked = {"metrics": list(wanted), "rate": rate}
    measured = restore(replace(p, details={**p.details, "quality": asked}))
    added = [t for t in measured.tasks if t.kind is Kind.QUALITY]
    cpu = sum(t.weight for t in added) + limits.overhead_seconds * len(added)
    # The last chunk's measurement runs after its encode: the tail the job waits for.
    tail = max(t.weight for t in added) + limits.overhead_seconds
    usd = 0.0 if p.mode is Mode.DROPLET else cpu * limits.lambda_usd_per_second
    estimate = Estimate(p.estimate.seconds + tail, p.estimate.cost_usd + usd)
    return replace(measured, estimate=estimate)


def restore(p: Plan) -> Plan:
    """A plan read back from its record, with the quality tasks it had when it was made."""
    rate = float((p.details.get("quality") or {}).get("rate") or 0.0)
    if not metrics(p) or any(t.kind is Kind.QUALITY for t in p.tasks):
        return p
    duration = p.shape.duration if p.shape is not None else 0.0
    measures = []
    for encode in (t for t in p.tasks if t.kind is Kind.ENCODE):
        assert encode.chunk is not None
        chunk = p.chunk(encode.chunk)
        length = max((chunk.end if chunk.end is not None else duration) - chunk.start, 0.0)
        for name in encode.renditions or (encode.rendition or "",):
            measures.append(TaskSpec(id=task_id(chunk.index, name), kind=Kind.QUALITY,
                                     chunk=chunk.index, rendition=name, weight=length * rate,
                                     renditions=(name,)))  # fmt: skip
    assemble = [t for t in p.tasks if t.kind is Kind.ASSEMBLE]
    rest = [t for t in p.tasks if t.kind is not Kind.ASSEMBLE]
    return replace(p, tasks=tuple(rest + measures + assemble))


def after(p: Plan, spec: TaskSpec) -> str | None:
    """The task a measurement waits for (its chunk's encode); None for any other task."""
    if spec.kind is not Kind.QUALITY:
        return None
    return next(
        t.id
        for t in p.tasks
        if t.kind is Kind.ENCODE
        and t.chunk == spec.chunk
        and spec.rendition in (t.renditions or (t.rendition,))
    )


def waiting_on(p: Plan, task: str) -> list[TaskSpec]:
    """The measurements a finished task releases (an encode's, of its chunk's renditions)."""
    encode = next((t for t in p.tasks if t.id == task), None)
    if encode is None or encode.kind is not Kind.ENCODE:
        return []
    made = encode.renditions or (encode.rendition,)
    return [
        t
        for t in p.tasks
        if t.kind is Kind.QUALITY and t.chunk == encode.chunk and t.rendition in made
    ]
