"""Write a folder of markdown files from a BEIR corpus, for timing ``nudge-rag demo --docs``
on a folder of realistic size (the records become sections of ``--files`` files).

Run: python benchmarks/demo_folder.py --data DATA_DIR/scifact --out FOLDER \\
         [--files 64] [--records 3000]
then: time nudge-rag demo --docs FOLDER --out DEMO_OUT
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nudge_rag.datasets import load_beir  # noqa: E402


def write_folder(data_dir, out, files: int, records: int) -> int:
    data = load_beir(data_dir)
    ids = sorted(data.corpus)[:records]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=False)
    for k in range(files):
        part = ids[k::files]
        sections = []
        for doc_id in part:
            doc = data.corpus[doc_id]
            sections.append(f"## {doc.get('title') or doc_id}\n\n{doc.get('text', '')}\n")
        (out / f"file{k:02d}.md").write_text(f"# Part {k}\n\n" + "\n".join(sections),
                                             encoding="utf-8")
    return len(ids)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a BEIR folder (corpus.jsonl)")
    ap.add_argument("--out", required=True, help="folder to create")
    ap.add_argument("--files", type=int, default=64)
    ap.add_argument("--records", type=int, default=3000)
    args = ap.parse_args(argv)
    n = write_folder(args.data, args.out, args.files, args.records)
    print(f"wrote {n} records into {args.files} files under {args.out}")


if __name__ == "__main__":
    main()
