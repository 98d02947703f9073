"""The resumable pipeline: rewrite, validate and write every row, batch by batch.

Kept rows (with ``rephrased`` and ``rephrase_flags``) go to ``--out``, rejected ones (with
``raw_output`` and ``reasons``) to the side file ``*.rejected.jsonl``; both are appended and flushed
batch by batch, so ``resume`` continues a killed run without writing any id twice. ``summarize``
counts both files; ``load_rows`` reads the input with all its columns.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corerl.rephrase.prompt import MARKERS_MALFORMED, MARKERS_MISSING, Candidate
from corerl.rephrase.rephrasers import ANSWERS_DISAGREE, Rephraser
from corerl.rephrase.rules import REJECT_RULES, RULES, failed_rules

logger = logging.getLogger(__name__)


@dataclass
class RephraseSummary:
    """Counts over everything in the output and rejected files (resumed runs included)."""

    kept: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    flags: Counter[str] = field(default_factory=Counter)
    consistency_checked: int = 0
    consistency_agreed: int = 0

    @property
    def total(self) -> int:
        return self.kept + self.rejected

    @property
    def agreement_rate(self) -> float | None:
        """Share of checked pairs whose two majority answers agree (None when none was checked)."""
        return self.consistency_agreed / self.consistency_checked if self.consistency_checked else None

    def format(self) -> str:
        lines = [f"rows: {self.total}  kept: {self.kept}  rejected: {self.rejected}"]
        lines += [f"  rejected by {name}: {count}" for name, count in _ordered(self.reasons)]
        lines += [f"  flagged {name} (kept): {count}" for name, count in _ordered(self.flags)]
        if self.agreement_rate is not None:
            lines.append(
                f"  answer consistency: {self.consistency_agreed}/{self.consistency_checked} pairs agree "
                f"({self.agreement_rate:.1%})"
            )
        return "\n".join(lines)


def _ordered(counts: Counter[str]) -> list[tuple[str, int]]:
    order = [*RULES, MARKERS_MISSING, MARKERS_MALFORMED, ANSWERS_DISAGREE]
    return sorted(
        counts.items(), key=lambda item: (order.index(item[0]) if item[0] in order else len(order), item[0])
    )


def output_paths(out: str | Path) -> tuple[Path, Path]:
    """(kept rows JSONL, rejected rows JSONL) for ``--out``; a ``.parquet`` out is written at the end.

    >>> [str(path) for path in output_paths("runs/math.jsonl")]
    ['runs/math.jsonl', 'runs/math.rejected.jsonl']
    >>> [str(path) for path in output_paths("runs/math.parquet")]
    ['runs/math.partial.jsonl', 'runs/math.rejected.jsonl']
    """
    out = Path(out)
    if out.suffix not in (".jsonl", ".parquet"):
        raise ValueError(f"--out {out}: write .jsonl (or .parquet, converted at the end)")
    stem = out.with_suffix("")
    kept = out if out.suffix == ".jsonl" else stem.with_name(stem.name + ".partial.jsonl")
    return kept, stem.with_name(stem.name + ".rejected.jsonl")


def read_jsonl_rows(path: Path, *, repair: bool = False) -> list[dict[str, Any]]:
    """Rows of a JSONL file written by this module; a torn last line (a kill mid-write) is cut off
    when ``repair`` (its row is then made again), else it raises ValueError naming the file."""
    if not path.exists():
        return []
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if len(complete) != len(data):
        if not repair:
            raise ValueError(f"{path}: the last line is incomplete")
        logger.warning("%s: dropping an incomplete last line (%d bytes)", path, len(data) - len(complete))
        path.write_bytes(complete)
    rows = []
    for number, line in enumerate(complete.decode("utf-8").splitlines(), start=1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: line {number} is not JSON ({error.msg})") from None
    return rows


def summarize(
    kept_rows: Iterable[Mapping[str, Any]], rejected_rows: Iterable[Mapping[str, Any]]
) -> RephraseSummary:
    """Per-rule counts over written rows (kept rows carry ``rephrase_flags``, rejected ``reasons``)."""
    summary = RephraseSummary()
    for row in kept_rows:
        summary.kept += 1
        summary.flags.update(row.get("rephrase_flags") or [])
        if "consistency" in row:
            summary.consistency_checked += 1
            summary.consistency_agreed += bool(row["consistency"]["agree"])
    for row in rejected_rows:
        summary.rejected += 1
        summary.reasons.update(row.get("reasons") or [])
        if "consistency" in row:
            summary.consistency_checked += 1
            summary.consistency_agreed += bool(row["consistency"]["agree"])
    return summary


def rephrase_rows(
    rows: Sequence[Mapping[str, Any]],
    rephraser: Rephraser,
    out: str | Path,
    *,
    reject: Sequence[str] = REJECT_RULES,
    consistency: Callable[[Sequence[tuple[str, str]]], list[dict[str, Any]]] | None = None,
    batch_size: int = 64,
    resume: bool = False,
    progress: bool = True,
) -> RephraseSummary:
    """Rewrite, validate and write every row; returns the summary over both output files.

    Each row goes, with all its columns, either to the kept file with ``rephrased`` and
    ``rephrase_flags`` (the failed rules not in ``reject``) or to the rejected file with ``rephrased``
    (None when unparsed), ``raw_output`` and ``reasons``. With ``consistency``, rows that pass the
    rules are also checked for answer agreement (a ``consistency`` record is added; disagreement is
    the reason ``answers_disagree``). Rows are appended and flushed batch by batch; ``resume`` skips
    the ids already in either file, so an interrupted run finishes with every id written once.
    """
    unknown = [name for name in reject if name not in RULES]
    if unknown:
        raise ValueError(f"unknown rule(s) {unknown} in --reject; expected some of {list(RULES)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    out = Path(out)
    kept_path, rejected_path = output_paths(out)
    ids = [str(row["id"]) for row in rows]
    if len(set(ids)) != len(ids):
        raise ValueError("input ids are not unique; resuming needs one id per row")
    existing = [path for path in (kept_path, rejected_path, out) if path.exists()]
    if existing and not resume:
        raise ValueError(f"{existing[0]} exists; pass --resume to continue that run, or remove it")
    if out.suffix == ".parquet" and out.exists():  # a finished run: nothing left to do
        kept_rows = _read_parquet_rows(out)
        return summarize(kept_rows, read_jsonl_rows(rejected_path))
    done = _keep_own_rows(rows, kept_path, rejected_path)
    pending = [row for row in rows if str(row["id"]) not in done]
    if done:
        logger.info("resuming: %d rows already written, %d to go", len(done), len(pending))
    skipped = getattr(rephraser, "skip_rules", ())
    reject = [name for name in reject if name not in skipped]
    flag_rules = [name for name in RULES if name not in reject and name not in skipped]
    out.parent.mkdir(parents=True, exist_ok=True)

    from tqdm.auto import tqdm

    with (
        kept_path.open("a", encoding="utf-8") as kept_file,
        rejected_path.open("a", encoding="utf-8") as rejected_file,
        tqdm(
            total=len(rows),
            initial=len(rows) - len(pending),
            desc="rephrase",
            unit="row",
            disable=not progress,
        ) as bar,
    ):
        for start in range(0, len(pending), batch_size):
            batch = pending[start : start + batch_size]
            candidates = rephraser(batch)
            if len(candidates) != len(batch):
                raise RuntimeError(f"the rephraser returned {len(candidates)} rewrites for {len(batch)} rows")
            records = [
                _judge(row, candidate, reject, flag_rules)
                for row, candidate in zip(batch, candidates, strict=True)
            ]
            if consistency is not None:
                _check_consistency(records, consistency)
            for record in records:
                target = rejected_file if record.get("reasons") else kept_file
                target.write(json.dumps(record, ensure_ascii=False) + "\n")
            kept_file.flush()
            rejected_file.flush()
            bar.update(len(batch))

    kept_rows = read_jsonl_rows(kept_path)
    if out.suffix == ".parquet":
        _write_parquet_rows(kept_rows, out)
        kept_path.unlink()
    return summarize(kept_rows, read_jsonl_rows(rejected_path))


def _keep_own_rows(rows: Sequence[Mapping[str, Any]], kept_path: Path, rejected_path: Path) -> set[str]:
    """The ids already written, once each; written rows that are not the input's (an id it lacks, or
    its id with another question) and second rows of an id are removed from the files, with a warning,
    so that a resumed run ends with exactly one row per input row."""
    questions = {str(row["id"]): row["question"] for row in rows}
    done: set[str] = set()
    for path in (kept_path, rejected_path):
        written = read_jsonl_rows(path, repair=True)
        own = []
        for record in written:
            key = str(record.get("id")) if isinstance(record, dict) else None
            if key in questions and key not in done and record.get("question") == questions[key]:
                done.add(key)
                own.append(record)
        if len(own) != len(written):
            logger.warning(
                "%s: removing %d row(s) that repeat an id or are not rows of the input",
                path,
                len(written) - len(own),
            )
            path.write_text(
                "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in own), encoding="utf-8"
            )
    return done


def _judge(
    row: Mapping[str, Any], candidate: Candidate, reject: Sequence[str], flag_rules: Sequence[str]
) -> dict[str, Any]:
    record = dict(row)
    record["rephrased"] = candidate.rephrased
    if candidate.parse_error is not None:
        record["raw_output"] = candidate.raw
        record["reasons"] = [candidate.parse_error]
        return record
    reasons = failed_rules(row["question"], candidate.rephrased, reject)
    if reasons:
        record["raw_output"] = candidate.raw
        record["reasons"] = reasons
    else:
        record["rephrase_flags"] = failed_rules(row["question"], candidate.rephrased, flag_rules)
    return record


def _check_consistency(
    records: list[dict[str, Any]], consistency: Callable[[Sequence[tuple[str, str]]], list[dict[str, Any]]]
) -> None:
    passing = [record for record in records if not record.get("reasons")]
    verdicts = consistency([(record["question"], record["rephrased"]) for record in passing])
    for record, verdict in zip(passing, verdicts, strict=True):
        record["consistency"] = verdict
        if not verdict["agree"]:
            record.pop("rephrase_flags", None)
            record["reasons"] = [ANSWERS_DISAGREE]


def _read_parquet_rows(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def _write_parquet_rows(rows: list[dict[str, Any]], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path, compression="zstd")


def load_rows(name_or_path: str, *, limit: int | None = None) -> list[dict[str, Any]]:
    """Rows of a dataset in the package schema, with the file's other columns (``forms``, ``level``...).

    The schema (ids, a non-blank question) is checked by ``corerl.data.load_dataset``; columns it
    does not map are read back from a JSONL or Parquet file and carried through unchanged.
    """
    from corerl.data import load_dataset

    rows = load_dataset(name_or_path, limit=limit).to_list()
    path = Path(name_or_path)
    if path.suffix == ".jsonl" and path.is_file():  # as load_dataset reads it: blank lines, no final newline
        lines = path.read_text(encoding="utf-8").splitlines()
        raw = [json.loads(line) for line in lines if line.strip()]
    elif path.suffix == ".parquet" and path.is_file():
        raw = _read_parquet_rows(path)
    else:
        return rows
    for row, record in zip(rows, raw[: len(rows)], strict=True):
        for column, value in record.items():
            row.setdefault(column, value)
    return rows
