"""The dev server runs the template's scheduled functions (the holds-sweeper) on their rate."""

import threading

import pytest

from local.schedules import Schedule, ScheduleRunner, schedules
from local.template import Template, load_template


def test_the_sweeper_runs_every_minute() -> None:
    assert Schedule("HoldsSweeperFunction", 60) in schedules(load_template())


def test_cron_expressions_are_refused_clearly() -> None:
    template = Template(
        {
            "Resources": {
                "F": {
                    "Type": "AWS::Serverless::Function",
                    "Properties": {
                        "CodeUri": "x",
                        "Handler": "m.f",
                        "Events": {
                            "E": {
                                "Type": "ScheduleV2",
                                "Properties": {"ScheduleExpression": "cron(0 * * * ? *)"},
                            }
                        },
                    },
                }
            }
        }
    )
    with pytest.raises(ValueError, match="only rate"):
        schedules(template)


def test_a_runner_invokes_until_stopped() -> None:
    ran = threading.Event()
    events: list[dict[str, object]] = []

    def invoke(event: dict[str, object]) -> None:
        events.append(event)
        ran.set()

    runner = ScheduleRunner(Schedule("F", 0), invoke).start()
    assert ran.wait(5)
    runner.stop()
    assert events[0]["detail-type"] == "Scheduled Event"
