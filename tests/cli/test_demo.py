from .conftest import run


def test_demo_writes_everything_and_prints_before_after(demo_dir):
    for name in ("index/docstore.json", "delta/delta.json", "train.jsonl", "val.jsonl",
                 "test.jsonl"):
        assert (demo_dir / name).is_file(), name


def test_demo_output(tmp_path, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text(
        "# Bees\n\nHoney bees live in colonies with one queen. Worker bees collect nectar "
        "from flowers and turn it into honey. Drones mate with the queen.\n\nBees dance to "
        "tell other bees where flowers are. The waggle dance encodes distance and direction.",
        encoding="utf-8")
    (docs / "b.txt").write_text(
        "Volcanoes form where magma reaches the surface. Lava flows cool into basalt. "
        "Explosive eruptions throw ash high into the atmosphere.\n\nThe Ring of Fire "
        "circles the Pacific Ocean and holds most active volcanoes on Earth.",
        encoding="utf-8")
    (docs / "skip.bin").write_bytes(b"\x00\x01")
    out = tmp_path / "out"
    assert run("demo", "--docs", docs, "--out", out, "--chunk-size", 32, "--per-chunk", 4,
               "--no-progress") == 0
    text = capsys.readouterr().out
    assert "2 documents" in text
    assert "before" in text and "after" in text and "ndcg@10" in text
    assert (out / "delta" / "delta.json").is_file()


def test_demo_refuses_missing_docs(tmp_path, capsys):
    assert run("demo", "--docs", tmp_path / "nope", "--out", tmp_path / "o") == 1
    err = capsys.readouterr().err
    assert "is not a folder" in err and "Traceback" not in err
