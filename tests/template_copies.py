"""Copies of template.yaml with one thing changed, for the tests that prove a check reads
the template (the local IAM check, the web app's headers)."""

from __future__ import annotations


def without_action(template: str, function: str, sid: str, action: str) -> str:
    """The template text with `action` taken out of one statement of one function."""
    start = template.index(f"\n  {function}:\n")
    statement = template.index(f"Sid: {sid}\n", start)
    line = f"                - {action}\n"
    at = template.index(line, statement)
    following = template.find("Sid: ", statement + len(sid))
    assert following == -1 or at < following, f"{action} is not in {function}'s {sid}"
    return template[:at] + template[at + len(line) :]
