"""Example data that ships with ragtune (a fictional domain no model has seen)."""

from pathlib import Path

EXAMPLES = Path(__file__).parent
GLIMMERDB = EXAMPLES / "glimmerdb"  # corpus: guide.md, api.jsonl, faq.html, changelog.txt
GLIMMERDB_QUESTIONS = EXAMPLES / "glimmerdb_questions.jsonl"
