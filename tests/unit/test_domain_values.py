"""`make lint` refuses a domain module that builds or reads a DynamoDB attribute value."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tools import check_domain_values


@pytest.fixture
def domain(tmp_path: Path) -> Path:
    copy = tmp_path / "domain"
    shutil.copytree(check_domain_values.DOMAIN, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_the_domain_holds_no_dynamodb_value(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_domain_values.main([]) == 0
    assert "no DynamoDB attribute value" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("planted", "said"),
    [
        ('CAUSE = {"reason": {"S": "planted"}}\n', "builds a DynamoDB attribute value {'S'"),
        ("COUNT = {'N': str(3)}\n", "builds a DynamoDB attribute value {'N'"),
        ('def amount(item):\n    return int(item["amount_mt"]["N"])\n', "reads a DynamoDB"),
    ],
)
def test_a_planted_value_fails_naming_its_module(
    domain: Path, planted: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    module = domain / "debits.py"
    module.write_text(module.read_text() + "\n\n" + planted)
    assert check_domain_values.main([str(domain)]) == 1
    out = capsys.readouterr().out
    assert "debits.py:" in out
    assert said in out
