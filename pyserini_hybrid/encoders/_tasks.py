"""Task text for instruction-following encoders (E5-instruct): the one place it is defined.

Search, evaluation, the experiment and training all read it from here, so no step imports it from a
later one (training re-exports it from :mod:`pyserini_hybrid.train._instructions`).
"""
from __future__ import annotations

__all__ = ['INSTRUCT_TEMPLATE', 'SEARCH_TASK']

# E5-instruct query template (multilingual-e5-*-instruct); passages keep their plain prefix.
INSTRUCT_TEMPLATE = 'Instruct: {task}\nQuery: '
# The LAReQA task at search time. QA training sources share it word for word, so the instruction
# the model learns on them is the one it sees on XQuAD-R / MLQA-R.
SEARCH_TASK = 'Given a question, retrieve the sentence that answers it'
