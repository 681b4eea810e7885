"""Curriculum generation: annotations -> validated visual QA records, through any LLM backend.

Entry point: `curriculum.api.generate_curriculum(cfg)` (run/generate_curriculum_part1.py,
part2.py and run/demos/generate_curriculum.py). Backends: `curriculum.backends`. Records:
`dataset.qa_records`. Stores: `${paths.curriculum_dir}/<module>/records.jsonl`.
"""
