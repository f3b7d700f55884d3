"""Card macros: {{char}} at import, {{user}} at serving time, in every spelling cards use."""
from bot.persona.macros import has_user_macro, resolve


def test_char_is_resolved_and_user_kept_for_serving():
    text = "{{char}} greets {{user}}. {{Char}} and <BOT> wave at <USER> and {{ user }}."
    once = resolve(text, char="Mara")
    assert once == "Mara greets {{user}}. Mara and Mara wave at {{user}} and {{user}}."
    assert has_user_macro(once)
    assert resolve(once, user="Ana") == "Mara greets Ana. Mara and Mara wave at Ana and Ana."


def test_names_with_backslashes_or_group_references_are_inserted_literally():
    assert resolve("Hi {{user}}", user=r"A\1 \g<0>") == r"Hi A\1 \g<0>"


def test_other_braces_are_left_alone():
    assert resolve("{{random:a,b}} {char} {{original}}", char="X", user="Y") == "{{random:a,b}} {char} {{original}}"
