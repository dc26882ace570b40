"""Example data that ships with ragtune (a fictional domain no model has seen)."""

from pathlib import Path

EXAMPLES = Path(__file__).parent
GLIMMERDB = EXAMPLES / "glimmerdb"  # corpus: guide.md, api.jsonl, faq.html, changelog.txt
GLIMMERDB_QUESTIONS = EXAMPLES / "glimmerdb_questions.jsonl"
STORY_API = EXAMPLES / "story" / "glimmer_api.jsonl"  # 48 fictional API records (RAFT story)
FILM_CATALOG = EXAMPLES / "film_catalog"  # kb.tsv + questions.jsonl (the RoG story)
