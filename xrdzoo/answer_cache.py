"""A member's answers remembered on disk: identify asks the same candidate formulas of a chemical system for every
measurement of that system, so the second identification of a system neither loads the member nor predicts.

An entry is one formula's answer, a ``.npz`` file (arrays of numbers and strings only, read with
``allow_pickle=False``) in ``$XRDZOO_HOME/answers`` (else the user cache folder's ``xrdzoo/answers``), named by the
sha256 of the member's identity (a weight's sha256 and its parts', or a checkpoint file's own sha256), the xrdzoo
version (the same weights answer differently when the code that answers changes) and the formula: whichever
formulas a measurement's shortlist picks, those asked before are remembered. The entry keeps the largest ``top``
asked so far and answers any smaller one with its first candidates (a member ranks best first, so its best five are
the first five of its best twelve; ``identify --phases``, which ranks again by the first five of twelve and the known
structures among them, predicts nothing). An entry that cannot be read is answered afresh and written again.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np

from xrdzoo.contracts import Answers, Candidate
from xrdzoo.files import atomic_path
from xrdzoo.version import __version__
from xrdzoo.xrd.pattern import N_POINTS

FOLDER = "answers"


class CachedMember:
    """``answer(formulas, top)`` of the member ``name`` (a weight name or checkpoint path), from the cache where it
    holds them; the member is loaded by ``load(name)`` (``xrdzoo.load``) on the first miss only."""

    def __init__(self, name: str, load, folder: Path | None = None):
        from xrdzoo import hub

        self.name, self.load, self._member = name, load, None
        self.folder = folder or hub.cache_dir().parent / FOLDER
        path = Path(name).expanduser()
        if path.is_file():
            self.identity = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            config = hub.get_config(name)
            self.identity = " ".join([config.sha256, *(hub.get_config(p).sha256 for p in config.parts)])

    @property
    def member(self):
        """The member itself, loaded once, answering with its structures alone as identification asks
        (:func:`xrdzoo.identify.structures_only`: what is remembered does not depend on its consensus)."""
        from xrdzoo.identify import structures_only

        if self._member is None:
            self._member = structures_only(self.load(self.name))
        return self._member

    def answer(self, formulas, top: int = 1) -> Answers:
        """The member's ``answer(formulas, top=top)``, each formula's remembered."""
        formulas, found = list(formulas), {}
        distinct = list(dict.fromkeys(formulas))
        for formula in distinct:
            try:
                answer, asked = _read(self._entry([formula], ".npz"))
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
                continue  # not remembered yet, or damaged: answered afresh and replaced
            if asked >= top or isinstance(answer, str) or len(answer) < asked:  # all it has, or all that is asked
                found[formula] = answer
        missing = [f for f in distinct if f not in found]
        if missing:
            answers = self.member.answer(missing, top=top) if top > 1 else self.member.answer(missing)
            for formula, answer in answers.by_formula(missing).items():
                with atomic_path(self._entry([formula], ".npz")) as temporary, open(temporary, "wb") as handle:
                    np.savez(handle, top=np.array(top), **_arrays(answer))
                found[formula] = answer
        return Answers.of_formulas(formulas, found, top)

    def known_formulas(self, elements, max_above_hull: float | None = None) -> list[str]:
        """The member's ``known_formulas(elements, max_above_hull)`` (none where it holds no structures),
        remembered."""
        from xrdzoo.contracts import KnowsStructures

        path = self._entry(["known", sorted(set(elements)), max_above_hull], ".json")
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            pass  # not remembered yet, or damaged: asked afresh
        known = (self.member.known_formulas(elements, max_above_hull) if isinstance(self.member, KnowsStructures)
                 else [])
        with atomic_path(path) as temporary:
            Path(temporary).write_text(json.dumps(known))
        return known

    def _entry(self, question: list, suffix: str) -> Path:
        """The file of this member's answer to ``question`` (JSON-able), named by the sha256 of both and the
        version."""
        key = json.dumps([__version__, self.identity, *question])
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()}{suffix}"


def _arrays(answer: list[Candidate] | str) -> dict[str, np.ndarray]:
    """One formula's entry: its ranked candidates, or the reason it was refused."""
    refused = answer if isinstance(answer, str) else ""
    found = [] if refused else answer
    return {"refused": np.array(refused),
            "patterns": np.array([c.pattern for c in found], np.float32).reshape(len(found), N_POINTS),
            "spacegroups": np.array([c.spacegroup for c in found], np.int64),
            "sources": np.array([c.source for c in found], dtype=str),
            "hows": np.array([c.how for c in found], dtype=str),
            "scores": np.array([np.nan if c.score is None else c.score for c in found], np.float64)}


def _read(path: Path) -> tuple[list[Candidate] | str, int]:
    """An entry's answer (as :func:`_arrays` takes it) and the ``top`` it was asked with."""
    with np.load(path, allow_pickle=False) as data:
        if str(data["refused"]):
            return str(data["refused"]), int(data["top"])
        return [Candidate(p, int(g), str(s), str(h), None if np.isnan(v) else float(v)) for p, g, s, h, v in
                zip(data["patterns"], data["spacegroups"], data["sources"], data["hows"], data["scores"])], \
            int(data["top"])
