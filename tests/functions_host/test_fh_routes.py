"""Route templates as the Functions host reads them (ASP.NET syntax subset)."""

from __future__ import annotations

import pytest

from local.functions_host import RouteTemplate, RouteTemplateError


def test_literals_match_case_insensitively_with_optional_trailing_slash() -> None:
    """Literal segments ignore case and a trailing slash, but not extra segments."""
    template = RouteTemplate("updates/status")
    assert template.match("/updates/status") == {}
    assert template.match("/UPDATES/Status/") == {}
    assert template.match("/updates/status/extra") is None
    assert template.match("/updates") is None


def test_parameters_are_percent_decoded() -> None:
    """{name} captures one segment, percent-decoded (an encoded slash stays inside the value)."""
    template = RouteTemplate("/updates/{instanceId}")
    assert template.match("/updates/abc%20d%2Fe") == {"instanceId": "abc d/e"}
    assert template.match("/updates/") is None
    assert template.match("/updates/a/b") is None


@pytest.mark.parametrize(
    ("template", "good", "bad"),
    [
        ("n/{v:int}", "-12", "1.5"),
        ("n/{v:long}", "9000000000", "x"),
        ("n/{v:bool}", "TRUE", "yes"),
        ("n/{v:guid}", "0f8fad5b-d9cb-469f-a165-70867728950e", "0f8fad5b"),
        ("n/{v:alpha}", "abcXYZ", "abc1"),
        ("n/{v:double}", "1.5", "one"),
        ("n/{v:minlength(3)}", "abc", "ab"),
        ("n/{v:maxlength(2)}", "ab", "abc"),
        ("n/{v:length(2,3)}", "abc", "abcd"),
        ("n/{v:range(1,5)}", "5", "6"),
        ("n/{v:min(2)}", "2", "1"),
        ("n/{v:max(2)}", "2", "3"),
        ("n/{v:regex(^cat-[0-9]+$)}", "cat-12", "dog-1"),
        ("n/{v:int:min(10)}", "10", "9"),
    ],
)
def test_inline_constraints(template: str, good: str, bad: str) -> None:
    """Each supported inline constraint accepts a matching value and rejects another."""
    compiled = RouteTemplate(template)
    assert compiled.match(f"/n/{good}") == {"v": good}
    assert compiled.match(f"/n/{bad}") is None


def test_optional_default_catch_all_and_complex_segments() -> None:
    """{x?} may be missing, {x=d} defaults, {*rest} takes the rest, {a}.{b} splits a segment."""
    assert RouteTemplate("items/{id?}").match("/items") == {}
    assert RouteTemplate("items/{id?}").match("/items/7") == {"id": "7"}
    assert RouteTemplate("items/{page=1}").match("/items") == {"page": "1"}
    assert RouteTemplate("files/{*rest}").match("/files/a/b/c") == {"rest": "a/b/c"}
    assert RouteTemplate("files/{**rest}").match("/files") == {}
    assert RouteTemplate("img/{name}.{ext}").match("/img/photo.large.png") == {
        "name": "photo.large",
        "ext": "png",
    }


@pytest.mark.parametrize(
    "template",
    [
        "a/{x:banana}",
        "a/{x",
        "a/x}",
        "a/{*rest}/b",
        "a/{x}/{X}",
        "a//b",
        "a/{1x}",
        "a/{x?}.txt",
        "a/{x:regex(()}",
    ],
)
def test_invalid_templates_are_refused(template: str) -> None:
    """Templates the Functions host would refuse raise RouteTemplateError at start."""
    with pytest.raises(RouteTemplateError):
        RouteTemplate(template)


def test_shape_ignores_parameter_names_but_keeps_constraints() -> None:
    """Two templates collide when they differ only by parameter names, not by constraints."""
    assert RouteTemplate("u/{a}").shape == RouteTemplate("U/{b}").shape
    assert RouteTemplate("u/{a:int}").shape != RouteTemplate("u/{a:alpha}").shape
    assert RouteTemplate("u/{a}").precedence < RouteTemplate("u/x").precedence
    assert RouteTemplate("u/{*a}").precedence < RouteTemplate("u/{a}").precedence
