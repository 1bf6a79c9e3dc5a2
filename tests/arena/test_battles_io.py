from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from arena.battles.io import imported_set_name
from arena.battles.rules import Owner
from arena.battles.sampler import battle_next
from arena.models import (
    Answer,
    Battle,
    Campaign,
    Contestant,
    Question,
    QuestionSet,
    RatingSnapshot,
    Vote,
)
from arena.ratings.snapshot import campaign_scope
from tests import factories

pytestmark = pytest.mark.django_db

T0 = 1_723_600_000.25


def battle(**fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "model_a": "alpha",
        "model_b": "beta",
        "winner": "model_a",
        "tstamp": T0,
        "judge": "arena_user_1",
        "language": "English",
        "turn": 1,
    }
    row.update(fields)
    return row


BATTLES = [
    battle(question_id="q1"),
    battle(question_id="q1", model_a="beta", model_b="alpha", winner="tie", tstamp=T0 + 60),
    battle(question_id="q2", winner="tie (bothbad)", tstamp=T0 + 120, language="한국어", turn=2),
    battle(question_id="q3", model_b="gamma", winner="model_b", tstamp=T0 + 180.5, judge="j2"),
    battle(model_a="gamma", model_b="beta", tstamp=T0 + 240),
]


@pytest.fixture
def campaign() -> Campaign:
    for name in ("alpha", "beta", "gamma"):
        factories.ContestantFactory(name=name, slug=name)
    return factories.CampaignFactory(slug="target")


def write(tmp_path: Path, rows: Any, name: str = "battles.json", *, lines: bool = False) -> Path:
    path = tmp_path / name
    if isinstance(rows, str):
        path.write_text(rows, encoding="utf-8")
    elif lines:
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    else:
        path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def import_file(path: Path, slug: str = "target", *flags: str) -> str:
    out = io.StringIO()
    call_command("import_battles", str(path), "--campaign", slug, *flags, stdout=out)
    return out.getvalue()


def export(slug: str = "target", *args: str) -> list[dict[str, Any]]:
    out = io.StringIO()
    call_command("export_battles", "--campaign", slug, *args, stdout=out, stderr=io.StringIO())
    return list(json.loads(out.getvalue()))


def db_state() -> dict[str, Any]:
    return {
        model.__name__: sorted(model.objects.values_list("pk", flat=True))
        for model in (Contestant, QuestionSet, Question, Answer, Battle, Vote)
    }


def test_import_creates_voted_battles_that_are_never_served(
    tmp_path: Path, campaign: Campaign
) -> None:
    campaign.question_sets.add(factories.QuestionSetFactory())
    import_file(write(tmp_path, BATTLES))

    votes = list(Vote.objects.filter(campaign=campaign).order_by("created_at"))
    assert [v.outcome for v in votes] == ["a", "tie", "both_bad", "b", "a"]
    assert votes[0].created_at == dt.datetime.fromtimestamp(T0, tz=dt.UTC)
    assert [v.contestant_a.name for v in votes] == ["alpha", "beta", "alpha", "alpha", "gamma"]
    battles = Battle.objects.filter(campaign=campaign)
    assert {b.state for b in battles} == {Battle.State.VOTED}
    assert {b.session_key for b in battles} == {"import:arena_user_1", "import:j2"}
    assert all(b.evaluator_id is None for b in battles)
    imported = QuestionSet.objects.get(name=imported_set_name(campaign))
    assert not imported.campaigns.exists()
    assert Question.objects.filter(question_set=imported).count() == 4  # q1, q2, q3, one unnamed
    assert Question.objects.get(question_set=imported, external_id="q2").turns != []
    answers = Answer.objects.filter(question__question_set=imported)
    assert answers.count() == 2 + 2 + 2 + 2
    assert all(a.flagged and not a.released and a.shown_text == "" for a in answers)
    # Even with the imported set attached, flagged placeholder answers are never served.
    campaign.question_sets.add(imported)
    campaign.contestants.add(*Contestant.objects.all())
    assert battle_next(campaign=campaign, owner=Owner(user=factories.UserFactory())) is None


def test_import_then_export_round_trips(tmp_path: Path, campaign: Campaign) -> None:
    import_file(write(tmp_path, BATTLES))
    exported = export()
    named = [
        {k: v for k, v in row.items() if k not in ("question_id", "counted")} for row in exported
    ]
    originals = [{k: v for k, v in row.items() if k != "question_id"} for row in BATTLES]
    assert named == originals
    assert all(row["counted"] is True for row in exported)  # imported votes are not tainted
    assert [row["question_id"] for row in exported[:4]] == ["q1", "q1", "q2", "q3"]
    assert exported[4]["question_id"].startswith("battle:")

    factories.CampaignFactory(slug="copy")
    import_file(write(tmp_path, exported, "again.jsonl", lines=True), "copy")
    assert export("copy") == exported


def test_export_names_the_judge_and_counts_turns(tmp_path: Path) -> None:
    campaign, cs, questions = factories.campaign_with_answers(contestants=2, questions=1)
    questions[0].turns = ["And then?", "Why?"]
    questions[0].save()
    user = factories.UserFactory(username="rater7")
    answers = {a.contestant_id: a for a in Answer.objects.filter(question=questions[0])}
    for evaluator, key in ((user, ""), (None, "some-session")):
        b = factories.BattleFactory(
            campaign=campaign,
            question=questions[0],
            evaluator=evaluator,
            session_key=key,
            answer_a=answers[cs[0].pk],
            answer_b=answers[cs[1].pk],
            state=Battle.State.VOTED,
        )
        Vote.objects.create(
            battle=b,
            campaign=campaign,
            evaluator=evaluator,
            question=questions[0],
            contestant_a=cs[0],
            contestant_b=cs[1],
            outcome="b",
        )
    rows = export(campaign.slug)
    assert [r["judge"] for r in rows] == ["rater7", "anonymous"]
    assert {r["turn"] for r in rows} == {3}
    assert {r["winner"] for r in rows} == {"model_b"}
    assert rows[0]["model_a"] == cs[0].name


def test_jsonl_export_writes_one_battle_per_line(tmp_path: Path, campaign: Campaign) -> None:
    import_file(write(tmp_path, BATTLES))
    target = tmp_path / "out.jsonl"
    call_command("export_battles", "--campaign", "target", "-o", str(target), stderr=io.StringIO())
    lines = target.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(BATTLES)
    assert json.loads(lines[2])["language"] == "한국어"


def test_unknown_models_need_create_contestants(tmp_path: Path, campaign: Campaign) -> None:
    path = write(tmp_path, [*BATTLES, battle(model_a="delta-7b", tstamp=T0 + 999)])
    before = db_state()
    err = io.StringIO()
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_battles", str(path), "--campaign", "target", stderr=err)
    assert 'unknown model "delta-7b"' in err.getvalue()
    assert "--create-contestants" in err.getvalue()
    assert db_state() == before

    out = import_file(path, "target", "--create-contestants")
    assert "delta-7b" in out
    placeholder = Contestant.objects.get(name="delta-7b")
    assert placeholder.active is False
    assert placeholder.backend == Contestant.Backend.VLLM
    assert placeholder.model == "imported:delta-7b"
    assert Vote.objects.filter(campaign=campaign).count() == len(BATTLES) + 1


BAD_FILES: list[tuple[str, Any, str]] = [
    ("malformed array", '[\n {"model_a": "alpha",\n  "model_b": }\n]', "line 3: Malformed JSON"),
    (
        "malformed line",
        json.dumps(battle()) + "\n" + json.dumps(battle(tstamp=T0 + 1)) + "\n{oops\n",
        "line 3: Malformed JSON",
    ),
    ("unknown winner", [battle(), battle(winner="model_c")], 'unknown winner "model_c"'),
    ("unknown model", [battle(), battle(model_b="zeta")], 'unknown model "zeta"'),
    ("missing field", [battle(), {"model_a": "alpha", "model_b": "beta"}], "missing field(s)"),
    ("same model twice", [battle(model_b="alpha")], "the same model"),
    ("tstamp as text", [battle(tstamp="yesterday")], "tstamp must be"),
    ("negative tstamp", [battle(tstamp=-5)], "tstamp must be"),
    ("boolean tstamp", [battle(tstamp=True)], "tstamp must be"),
    (
        "not a number",
        '[{"model_a": "alpha", "model_b": "beta", "winner": "tie", '
        '"tstamp": NaN, "judge": "j", "language": "en", "turn": 1}]',
        "tstamp must be",
    ),
    ("turn zero", [battle(turn=0)], "turn must be"),
    ("not an object", [battle(), ["alpha", "beta"]], "must be a JSON object"),
    (
        "question with two languages",
        [battle(question_id="x"), battle(question_id="x", language="ko", tstamp=T0 + 5)],
        'question_id "x" has language',
    ),
    ("empty file", "  \n", "The file is empty."),
    ("empty array", "[]", "holds no battles"),
]


@pytest.mark.parametrize(("_label", "content", "message"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_input_is_refused_and_leaves_the_database_as_it_was(
    tmp_path: Path, campaign: Campaign, _label: str, content: Any, message: str
) -> None:
    import_file(write(tmp_path, BATTLES[:2], "earlier.json"))
    path = write(tmp_path, content, "bad.json")
    before = db_state()
    err = io.StringIO()
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_battles", str(path), "--campaign", "target", stderr=err)
    assert message in err.getvalue()
    assert db_state() == before


def test_every_bad_row_is_reported_with_its_line(tmp_path: Path, campaign: Campaign) -> None:
    path = write(tmp_path, [battle(), battle(winner="x"), battle(), battle(turn="2")])
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_battles", str(path), "--campaign", "target", stderr=err)
    # indent=1 puts each battle's opening brace on line 2 + 9 * position.
    assert f"{path}: line 11: unknown winner" in err.getvalue()
    assert f"{path}: line 29: turn must be" in err.getvalue()


def test_importing_the_same_file_twice_is_refused(tmp_path: Path, campaign: Campaign) -> None:
    path = write(tmp_path, BATTLES)
    import_file(path)
    before = db_state()
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_battles", str(path), "--campaign", "target", stderr=err)
    assert "imported before" in err.getvalue()
    assert db_state() == before
    # The same battles into another campaign are new there.
    factories.CampaignFactory(slug="second")
    import_file(path, "second")
    assert Vote.objects.filter(campaign__slug="second").count() == len(BATTLES)


def test_import_can_recompute_the_ratings(
    tmp_path: Path, campaign: Campaign, settings: Any
) -> None:
    settings.ARENA_BOOTSTRAP_ROUNDS = 10
    out = import_file(write(tmp_path, BATTLES), "target", "--recompute")
    assert "ratings recomputed" in out
    assert RatingSnapshot.objects.get(scope=campaign_scope(campaign.pk)).vote_count == len(BATTLES)


def test_unknown_campaign_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no campaign"):
        import_file(write(tmp_path, BATTLES), "missing")
    with pytest.raises(CommandError, match="no campaign"):
        export("missing")


def test_recompute_command_reports_each_campaign(campaign: Campaign, settings: Any) -> None:
    settings.ARENA_BOOTSTRAP_ROUNDS = 10
    out = io.StringIO()
    call_command("recompute_ratings", "--campaign", "target", stdout=out)
    assert f"campaign {campaign.pk}: 0 votes, 1 scopes" in out.getvalue()
    with pytest.raises(CommandError, match="nope"):
        call_command("recompute_ratings", "--campaign", "nope", stdout=io.StringIO())
