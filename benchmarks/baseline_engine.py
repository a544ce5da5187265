"""The array engine as it was at an earlier commit, importable beside today's (benchmarks only).

``load(ref)`` extracts ``nudge_rag/core`` and ``nudge_rag/errors.py`` of git commit ``ref`` into
a temporary package named ``nudge_rag_at_<ref>`` and returns its ``core.estimators`` module, so a
benchmark can time the old ``NudgeN``/``NudgeM`` against the new ones in the same process, on
the same data, interleaved. The core imports only numpy and its own ``errors`` module, so the
copy is complete. Nothing here is used by the library or the tests.
"""

from __future__ import annotations

import importlib
import io
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: the last commit before the dense-label engine (issue 17): what "today's figures" were
BEFORE_ISSUE_17 = "f73073a"


def load(ref: str = BEFORE_ISSUE_17, repo: Path = ROOT):
    """The ``core.estimators`` module of commit ``ref`` (``NudgeN``, ``NudgeM``)."""
    name = "nudge_rag_at_" + "".join(c if c.isalnum() else "_" for c in ref)
    if name in sys.modules:
        return importlib.import_module(f"{name}.core.estimators")
    archive = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", ref,
                              "nudge_rag/core", "nudge_rag/errors.py"],
                             check=True, capture_output=True).stdout
    folder = Path(tempfile.mkdtemp(prefix="nudge-rag-baseline-"))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    (folder / "nudge_rag").rename(folder / name)
    (folder / name / "__init__.py").write_text(f'"""nudge_rag core at {ref}"""\n')
    sys.path.insert(0, str(folder))
    return importlib.import_module(f"{name}.core.estimators")


def paper_protocol(cls, **params):
    """``cls(**params)`` with the paper's protocol (γ on the validation questions alone, no
    refit, no query memory): the defaults since issue 13 go beyond it, and engines before
    issue 13 know no other, so they take no protocol parameters."""
    import inspect

    if "selection" in inspect.signature(cls).parameters:
        params = {"selection": "validation", "refit": False, "memory": False, **params}
    return cls(**params)
