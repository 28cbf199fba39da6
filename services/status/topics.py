"""The desk statistics topics a closer may tag a conversation with, and their labels: one list
for the close dialog, the close and tag endpoints, and the reports."""

from __future__ import annotations

NOT_A_QUESTION = "not-a-question"
"""Spam, a wrong number, a test message: set aside from the question counts (a conversation
escalated as a crisis or flagged for a safety review stays counted, whatever it is tagged)."""

TOPIC_LABELS = {
    "circulation": "Circulation",
    "citation": "Citation",
    "research": "Research",
    "technology": "Technology",
    "hours-policies": "Hours and policies",
    "other": "Other",
    NOT_A_QUESTION: "Not a question (spam, wrong number, test)",
}
TOPICS = tuple(TOPIC_LABELS)
