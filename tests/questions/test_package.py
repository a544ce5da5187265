import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_stays_light_and_names_are_public():
    code = (
        "import sys, nudge_rag\n"
        "from nudge_rag.questions import QuestionSet, Question, generate_questions, "
        "offline_questions, import_logs\n"
        "heavy = [m for m in ('llama_index', 'langchain_core', 'tqdm', 'torch', 'scipy') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert nudge_rag.QuestionSet is QuestionSet\n"
        "assert nudge_rag.import_logs is import_logs\n"
        "assert 'generate_questions' in dir(nudge_rag)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, env={"PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
