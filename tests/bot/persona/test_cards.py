"""Reading Tavern cards: V1 JSON, V2 PNG, V3 PNG, V3 JSON (written byte by byte), limits and errors."""
import base64
import json
import struct
import zlib

import pytest

from bot.persona import card_png
from bot.persona.cards import MAX_PNG_BYTES, CardError, read_card, write_card_png
from tests.support.tavern_cards import (SIGNATURE, png_card, png_chunk, read_png_chunks, text_chunk, text_payloads,
                                        tiny_image_chunks, v1_card, v2_card, v3_card)


def test_v1_json_card():
    card = read_card(json.dumps(v1_card()).encode(), "mara.json")
    assert card.spec == "chara_card_v1" and card.source == "json" and card.image is None
    assert card.name == "Captain Mara" and card.text("first_mes").startswith("*{{char}} looks up")


def test_v2_png_card_reads_chara_and_keeps_the_image_without_the_card():
    data = png_card({"chara": v2_card()})
    card = read_card(data, "mara.png")
    assert card.spec == "chara_card_v2" and card.source == "png:chara"
    assert card.raw == v2_card(), "the JSON object exactly as written"
    kinds = [k for k, _ in read_png_chunks(card.image)]
    assert kinds == [b"IHDR", b"IDAT", b"IEND"], "the avatar is the image without its tEXt card chunk"


def test_v3_png_card_prefers_ccv3_over_chara():
    old = v2_card(name="Old Name")
    data = png_card({"chara": old, "ccv3": v3_card()})
    card = read_card(data, "mara.png")
    assert card.spec == "chara_card_v3" and card.source == "png:ccv3" and card.name == "Captain Mara"
    assert card.data["nickname"] == "Cap'n" and card.data["assets"][0]["uri"] == "ccdefault:"


def test_v3_json_card_with_bom():
    card = read_card(b"\xef\xbb\xbf" + json.dumps(v3_card()).encode(), "mara.json")
    assert card.spec == "chara_card_v3" and card.lorebook.entries[1].keys == ("Kraken",)


def test_unreadable_ccv3_falls_back_to_chara_with_a_warning():
    card = read_card(png_card({"ccv3": "!!not base64!!", "chara": v2_card()}), "mara.png")
    assert card.spec == "chara_card_v2" and "ccv3" in card.warnings[0]


@pytest.mark.parametrize("make, message", [
    (lambda: png_card({"chara": "%%%"}), "mara.png: tEXt chunk 'chara': not valid base64"),
    (lambda: png_card({"chara": base64.b64encode(b"{nope")}), "tEXt chunk 'chara': not valid JSON"),
    (lambda: b"{\"name\": ", "mara.png: not valid JSON"),
    (lambda: SIGNATURE + b"".join(tiny_image_chunks()) + png_chunk(b"IEND", b""), "holds no character card"),
    (lambda: json.dumps({"spec": "chara_card_v9", "data": {"name": "x"}}).encode(), "spec: unknown card spec 'chara_card_v9'"),
    (lambda: json.dumps({"data": {"name": "x"}}).encode(), "spec: missing"),
    (lambda: json.dumps(v2_card(description="x" * 20_001)).encode(), "data.description: 20,001 characters (the limit is 20,000)"),
    (lambda: json.dumps(v2_card(alternate_greetings=["hi"] * 201)).encode(), "data.alternate_greetings: 201 greetings (the limit is 200)"),
    (lambda: json.dumps(v2_card(tags="sea")).encode(), "data.tags: expected a list of strings"),
    (lambda: json.dumps(v2_card(first_mes=3)).encode(), "data.first_mes: expected a string (got int)"),
    (lambda: json.dumps(v2_card(name="  ")).encode(), "data.name: required"),
    (lambda: json.dumps(v2_card(character_book={"entries": [{"keys": "x", "content": "y"}]})).encode(),
     "data.character_book.entries[0].keys: expected a list of strings"),
    (lambda: json.dumps(v2_card(character_book={"entries": [{"keys": ["("], "content": "y", "use_regex": True}]})).encode(),
     "not a valid regular expression"),
    (lambda: b"\xff\xfe garbage", "neither a PNG card nor UTF-8 JSON"),
    (lambda: json.dumps([1, 2]).encode(), "a card must be a JSON object"),
    (lambda: b'{"name": "x\\ud800y"}', "name: not valid Unicode (a lone surrogate at character 1)"),
])
def test_errors_name_the_file_and_the_field(make, message):
    with pytest.raises(CardError) as err:
        read_card(make(), "mara.png")
    assert message in str(err.value)


def test_long_string_inside_the_lorebook_is_named_by_path():
    book = {"entries": [{"keys": ["a"], "content": "y" * 20_001}]}
    with pytest.raises(CardError, match=r"data\.character_book\.entries\[0\]\.content: 20,001 characters"):
        read_card(json.dumps(v2_card(character_book=book)).encode(), "c.json")


def test_png_over_20_mb_is_refused_before_parsing():
    big = png_card({"chara": v2_card()})
    big = big[:-12] + png_chunk(b"zzPd", b"\0" * (MAX_PNG_BYTES + 1 - len(big))) + big[-12:]
    assert len(big) > MAX_PNG_BYTES
    with pytest.raises(CardError, match=r"mara.png: the PNG is 20\.0 MB \(the limit is 20 MB\)"):
        read_card(big, "mara.png")


def test_corrupt_png_chunk_is_reported_with_its_offset():
    data = bytearray(png_card({"chara": v2_card()}))
    data[40] ^= 0xFF                                     # inside IDAT: its CRC no longer matches
    with pytest.raises(CardError, match=r"wrong CRC"):
        read_card(bytes(data), "mara.png")
    with pytest.raises(CardError, match=r"truncated PNG"):
        read_card(png_card({"chara": v2_card()})[:60], "mara.png")


def test_written_png_has_the_spec_chunk_layout_and_valid_crcs():
    card = v3_card()
    data = write_card_png(card, card_png.placeholder_png("mara"))
    chunks = read_png_chunks(data)                       # asserts every CRC and the final IEND
    kinds = [k for k, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND"
    assert kinds[-3:] == [b"tEXt", b"tEXt", b"IEND"], "card chunks sit just before IEND"
    width, height, depth, colour = struct.unpack(">IIBB", chunks[0][1][:10])
    assert (width, height, depth, colour) == (64, 64, 8, 2)
    raw = zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
    assert len(raw) == 64 * (1 + 64 * 3), "one filter byte and 64 RGB pixels per scanline"
    payloads = text_payloads(data)
    assert payloads["chara"]["spec"] == "chara_card_v2" and payloads["chara"]["spec_version"] == "2.0"
    assert payloads["ccv3"]["spec"] == "chara_card_v3" and payloads["ccv3"]["spec_version"] == "3.0"
    assert payloads["chara"]["data"] == payloads["ccv3"]["data"] == card["data"]
    # Writing again over a card replaces its chunks rather than adding more.
    again = write_card_png(card, data)
    assert [k for k, _ in read_png_chunks(again)].count(b"tEXt") == 2


def test_text_chunk_helper_matches_the_product_reader():
    data = SIGNATURE + b"".join(tiny_image_chunks()) + text_chunk("chara", v1_card()) + png_chunk(b"IEND", b"")
    assert card_png.text_chunks(data)["chara"] == base64.b64encode(json.dumps(v1_card()).encode()).decode()


def test_compressed_and_international_text_chunks_are_read():
    payload = base64.b64encode(json.dumps(v2_card()).encode())
    ztxt = png_chunk(b"zTXt", b"chara\x00\x00" + zlib.compress(payload))
    data = SIGNATURE + b"".join(tiny_image_chunks()) + ztxt + png_chunk(b"IEND", b"")
    assert read_card(data, "z.png").name == "Captain Mara"
    itxt = png_chunk(b"iTXt", b"ccv3\x00\x01\x00en\x00\x00" + zlib.compress(base64.b64encode(json.dumps(v3_card()).encode())))
    data = SIGNATURE + b"".join(tiny_image_chunks()) + itxt + png_chunk(b"IEND", b"")
    assert read_card(data, "i.png").spec == "chara_card_v3"
    bomb = png_chunk(b"zTXt", b"chara\x00\x00" + zlib.compress(b"A" * (21 * 1024 * 1024)))
    with pytest.raises(CardError, match="expands past 20 MB"):
        read_card(SIGNATURE + b"".join(tiny_image_chunks()) + bomb + png_chunk(b"IEND", b""), "bomb.png")


def test_wrapped_and_unpadded_base64_is_accepted():
    payload = base64.b64encode(json.dumps(v1_card()).encode()).decode().rstrip("=")
    wrapped = "\n".join(payload[i:i + 76] for i in range(0, len(payload), 76))
    assert read_card(png_card({"chara": wrapped}), "w.png").name == "Captain Mara"


def test_old_v1_field_names():
    old = {"char_name": "Mara", "char_persona": "A captain.", "world_scenario": "A tavern.", "char_greeting": "Evening!",
           "example_dialogue": "<START>\nYou: hi\nMara: hello"}
    card = read_card(json.dumps(old).encode(), "old.json")
    assert (card.name, card.text("description"), card.text("first_mes")) == ("Mara", "A captain.", "Evening!")


def test_deeply_nested_json_is_refused_cleanly():
    deep = b'{"name": "x", "extensions": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(CardError, match="nested too deeply"):
        read_card(deep, "deep.json")


@pytest.mark.parametrize("key", [r"(a+)+$", r"(\w+\s?)*x", r"(x*){2,}", "a" * 201])
def test_regex_keys_that_can_backtrack_exponentially_are_refused(key):
    book = {"entries": [{"keys": [key], "content": "y", "use_regex": True}]}
    with pytest.raises(CardError, match="exponential time"):
        read_card(json.dumps(v2_card(character_book=book)).encode(), "c.json")


# -- adversarial input: any bytes give a Card or a CardError, never another exception -----------

from hypothesis import HealthCheck, given, settings as hsettings, strategies as st  # noqa: E402

_VALID = png_card({"chara": v2_card(), "ccv3": v3_card()})
_json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                            max_leaves=20)


@hsettings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 255)), min_size=1, max_size=6),
       st.integers(8, len(_VALID)))
def test_mutated_png_cards_never_crash(flips, cut):
    data = bytearray(_VALID[:cut])
    for at, value in flips:
        if at < len(data):
            data[at] = value
    try:
        read_card(bytes(data), "fuzz.png")
    except CardError:
        pass


@hsettings(max_examples=80, deadline=None)
@given(st.dictionaries(st.sampled_from(["spec", "data", "name", "first_mes", "tags", "character_book", "extensions",
                                        "alternate_greetings", "mes_example", "char_name"]), _json_values, max_size=6),
       st.dictionaries(st.sampled_from(["name", "description", "tags", "character_book", "extensions", "nickname",
                                        "alternate_greetings", "system_prompt"]), _json_values, max_size=6))
def test_arbitrary_json_cards_never_crash(top, data):
    import tempfile
    from pathlib import Path

    from bot.persona.card_files import import_card

    for obj in (top, {"spec": "chara_card_v2", "data": data}, {"spec": "chara_card_v3", "data": {**data, "name": "x"}}):
        content = json.dumps(obj).encode()
        try:
            read_card(content, "fuzz.json")
        except CardError:
            continue
        with tempfile.TemporaryDirectory() as root:   # the whole import: mapping, TOML, validation
            try:
                import_card(content, "fuzz.json", dirs=[Path(root)], dest_root=Path(root), name="fuzz")
            except CardError:
                pass
