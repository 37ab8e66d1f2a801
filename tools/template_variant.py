"""template.yaml with other parameter defaults, text for text otherwise, so that a static
checker that evaluates conditions from the defaults (checkov) sees each deploy shape; the
checkov skips in the resources' Metadata come along unchanged.

    python -m tools.template_variant OUT.yaml DeployWebApp=true CognitoDomainPrefix=demo
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from local.template import TEMPLATE_PATH, load_template


def with_defaults(text: str, defaults: dict[str, str]) -> str:
    """The template text with each named parameter's `Default:` line replaced."""
    known = load_template().raw["Parameters"]
    for name, value in defaults.items():
        assert name in known, f"{name} is not a parameter of template.yaml"
        assert "Default" in known[name], f"{name} has no Default line to replace"
        block = re.search(rf"(?m)^  {re.escape(name)}:\n((?:    .*\n|\n)+?)(?=^  \S|^\S)", text)
        assert block is not None, name
        body = re.sub(r"(?m)^    Default: .*$", f'    Default: "{value}"', block.group(1), count=1)
        text = text[: block.start(1)] + body + text[block.end(1) :]
    return text


def main(argv: list[str]) -> int:
    out, *pairs = argv
    defaults = dict(pair.split("=", 1) for pair in pairs)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(with_defaults(TEMPLATE_PATH.read_text(), defaults))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
