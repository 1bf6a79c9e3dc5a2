from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from arena.models import Answer, Question, QuestionSet
from arena.questions.imports import QuestionImportError, question_set_import
from tests import factories

pytestmark = pytest.mark.django_db
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
KOREAN = "서울의 봄 날씨를 설명해 주세요. 😊"


def db_state() -> list[tuple[Any, ...]]:
    sets = list(QuestionSet.objects.order_by("id").values_list("id", "name"))
    questions = list(
        Question.objects.order_by("id").values_list(
            "id", "question_set_id", "external_id", "text", "category", "language", "turns"
        )
    )
    return [*sets, *questions]


def run_import(data: bytes | str, filename: str, **kwargs: Any) -> Any:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return question_set_import(
        data=data, filename=filename, set_name=kwargs.pop("set_name", "S"), **kwargs
    )


def refused(data: bytes | str, filename: str, **kwargs: Any) -> list[str]:
    before = db_state()
    with pytest.raises(QuestionImportError) as info:
        run_import(data, filename, **kwargs)
    assert db_state() == before, "a refused file must leave the database exactly as it was"
    return [str(e) for e in info.value.errors]


KOREAN_FILES = {
    "q.csv": f'id,prompt,language,turns\nk1,"{KOREAN}",ko,"[""더 자세히""]"\n',
    "q.json": json.dumps(
        [{"id": "k1", "prompt": KOREAN, "language": "ko", "turns": ["더 자세히"]}],
        ensure_ascii=False,
    ),
    "q.jsonl": json.dumps(
        {"id": "k1", "prompt": KOREAN, "language": "ko", "turns": ["더 자세히"]},
        ensure_ascii=False,
    )
    + "\n",
}


@pytest.mark.parametrize("filename", sorted(KOREAN_FILES))
def test_each_format_round_trips_korean_text(filename: str) -> None:
    result = run_import(KOREAN_FILES[filename], filename)
    assert result.created == 1
    question = Question.objects.get(question_set=result.question_set, external_id="k1")
    assert question.text == KOREAN
    assert question.language == "ko"
    assert question.turns == ["더 자세히"]


def test_utf8_byte_order_mark_is_tolerated() -> None:
    data = b"\xef\xbb\xbf" + "id,prompt\nb1,안녕하세요\n".encode()
    result = run_import(data, "bom.csv")
    assert Question.objects.get(external_id="b1").text == "안녕하세요"
    assert result.created == 1


@pytest.mark.parametrize(
    "path",
    ["questions.csv", "questions.json", "questions_ko.jsonl"],
)
def test_example_files_import(path: str) -> None:
    result = run_import((EXAMPLES / path).read_bytes(), path, set_name=path)
    assert result.created >= 3
    assert Question.objects.filter(question_set=result.question_set).count() == result.created


def test_missing_prompt_is_reported_with_its_line() -> None:
    errors = refused("id,prompt\na,hello\nb,\nc,  \n", "q.csv")
    assert errors == ["line 3: missing or empty prompt", "line 4: missing or empty prompt"]


def test_unknown_column_is_reported() -> None:
    errors = refused('{"prompt": "hi", "colour": "red"}\n', "q.jsonl")
    assert errors == ["line 1: unknown column 'colour'"]


def test_duplicate_external_id_in_one_file_is_reported() -> None:
    errors = refused("id,prompt\nx,one\ny,two\nx,three\n", "q.csv")
    assert errors == ["line 4: duplicate id 'x' (first on line 2)"]


def test_same_prompt_without_ids_counts_as_a_duplicate() -> None:
    errors = refused('{"prompt": "same"}\n{"prompt": "same"}\n', "q.jsonl")
    assert len(errors) == 1
    assert "duplicate id" in errors[0]
    assert errors[0].startswith("line 2:")


@override_settings(ARENA_MAX_QUESTION_CHARS=10)
def test_over_long_text_is_reported() -> None:
    errors = refused("id,prompt\na,short\nb,this one is far too long\n", "q.csv")
    assert errors == ["line 3: prompt is 24 characters, over the limit of 10"]


def test_bad_encoding_is_reported_with_its_line() -> None:
    errors = refused(b"id,prompt\na,fine\nb,caf\xe9\n", "q.csv")
    assert len(errors) == 1
    assert errors[0].startswith("line 3: The file is not valid UTF-8")


@pytest.mark.parametrize("data", [b"", b"   \n\n", b"\xef\xbb\xbf"])
def test_empty_file_is_refused(data: bytes) -> None:
    assert refused(data, "q.jsonl") == ["The file is empty."]


def test_header_only_csv_holds_no_questions() -> None:
    assert refused("id,prompt\n", "q.csv") == ["The file holds no questions."]


@override_settings(ARENA_MAX_UPLOAD_BYTES=100)
def test_file_over_the_size_limit_is_refused() -> None:
    errors = refused("id,prompt\n" + "a,b\n" * 50, "q.csv")
    assert errors == ["The file is 210 bytes, over the limit of 100 bytes."]


def test_malformed_json_is_reported_with_its_line() -> None:
    errors = refused('[\n {"prompt": "a"},\n {"prompt": "b",,}\n]', "q.json")
    assert len(errors) == 1
    assert errors[0].startswith("line 3: Malformed JSON")


def test_malformed_jsonl_line_is_reported_and_nothing_is_kept() -> None:
    errors = refused('{"prompt": "ok"}\n{"prompt": \n{"prompt": "also ok"}\n', "q.jsonl")
    assert len(errors) == 1
    assert errors[0].startswith("line 2: malformed JSON")


def test_json_must_be_an_array_of_objects() -> None:
    assert refused('{"prompt": "x"}', "q.json") == [
        "line 1: A JSON file must hold an array of question objects."
    ]
    assert refused('["just a string"]', "q.json") == ["line 1: not a JSON object"]


def test_csv_row_with_the_wrong_number_of_columns_is_reported() -> None:
    assert refused("id,prompt\na,b,c\n", "q.csv") == ["line 2: expected 2 columns, found 3"]


def test_turns_must_be_a_list_of_strings() -> None:
    errors = refused(
        '{"prompt": "a", "turns": "not json"}\n{"prompt": "b", "turns": [1]}\n', "q.jsonl"
    )
    assert errors == [
        "line 1: turns must be a JSON list of strings",
        "line 2: turns must be a list of non-empty strings",
    ]


def test_unknown_file_type_is_refused() -> None:
    assert refused("whatever", "q.txt") == ["Unknown file type: use a .csv, .json or .jsonl file."]


def test_one_bad_row_keeps_every_good_row_out() -> None:
    factories.QuestionSetFactory(name="S")
    refused("id,prompt\na,good\nb,good too\nc,\n", "q.csv")
    assert Question.objects.count() == 0


def test_reimporting_the_same_file_is_refused_without_duplicates() -> None:
    data = "id,prompt\na,one\nb,two\n"
    run_import(data, "q.csv")
    errors = refused(data, "q.csv")
    assert errors[0] == (
        "line 2: id 'a' is already in the set 'S'; import in update mode to change it"
    )
    assert Question.objects.count() == 2


def test_reimport_in_update_mode_updates_in_place_and_adds_new_rows() -> None:
    run_import("id,prompt,category\na,one,x\nb,two,x\n", "q.csv")
    ids = dict(Question.objects.values_list("external_id", "id"))
    result = run_import("id,prompt,category\na,one,x\nb,TWO,y\nc,three,x\n", "q.csv", mode="update")
    assert (result.created, result.updated, result.unchanged) == (1, 1, 1)
    assert Question.objects.count() == 3
    assert dict(Question.objects.values_list("external_id", "id"))["b"] == ids["b"]
    assert Question.objects.get(external_id="b").text == "TWO"


def test_same_ids_in_another_set_are_fine() -> None:
    run_import("id,prompt\na,one\n", "q.csv", set_name="first")
    run_import("id,prompt\na,one\n", "q.csv", set_name="second")
    assert Question.objects.count() == 2


def test_import_command_reports_errors_and_imports(tmp_path: Path) -> None:
    from django.core.management import CommandError, call_command

    good = tmp_path / "good.jsonl"
    good.write_text(KOREAN_FILES["q.jsonl"], encoding="utf-8")
    call_command("import_questions", str(good), "--set", "cli")
    assert Question.objects.filter(question_set__name="cli").count() == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("id,prompt\nz,\n", encoding="utf-8")
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_questions", str(bad), "--set", "cli")
    assert Question.objects.filter(question_set__name="cli").count() == 1


def test_rewording_a_question_drops_its_answers_for_regeneration() -> None:
    run_import("id,prompt\na,one\nb,two\n", "q.csv")
    a = Question.objects.get(external_id="a")
    b = Question.objects.get(external_id="b")
    stale = factories.AnswerFactory(question=a)
    kept = factories.AnswerFactory(question=b)
    run_import("id,prompt,category\na,ONE reworded,x\nb,two,x\n", "q.csv", mode="update")
    assert not Answer.objects.filter(pk=stale.pk).exists()
    assert Answer.objects.filter(pk=kept.pk).exists(), "only the category changed for b"


def test_a_question_already_in_battles_cannot_be_reworded() -> None:
    run_import("id,prompt\na,one\n", "q.csv")
    question = Question.objects.get(external_id="a")
    factories.BattleFactory(question=question)
    errors = refused("id,prompt\na,something else\n", "q.csv", mode="update")
    assert errors == [
        "line 2: id 'a' was already shown in battles; its prompt and turns can no longer "
        "change (import it under a new id)"
    ]
    assert Question.objects.get(external_id="a").text == "one"
