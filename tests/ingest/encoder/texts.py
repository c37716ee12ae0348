"""Texts shared by the encoder tests: adversarial strings, random fuzz and a SciFact sample."""

from __future__ import annotations

import json
import random
import zipfile
from pathlib import Path

BEIR_DIR = Path(__file__).resolve().parents[4] / "shared" / "beir"

LONG_WORD = "pneumonoultramicroscopicsilicovolcanoconiosis" * 3  # > max_input_chars_per_word (100)
VARIED = [
    "",
    " ",
    "\t\n  \r\n",
    "Hello, World!",
    "The QUICK brown fox — jumps over the lazy dog...",
    "naïve café résumé Ångström Øresund São Paulo façade coöperate",
    "e\u0301 combining acute, a\u0308\u0323 stacked marks, \u0301 leading mark",
    "中文分词测试：这是一个句子。日本語のテキスト、カタカナ。한국어 문장입니다.",
    "emoji 🎉🚀 👩‍👩‍👧 ❤️ flags 🇫🇷 and ☃ snowman",
    "punctuation runs!!!??? ...,,,;;;::: ((([[[{{{}}}]]]))) --- ___ ~~~ @@@ ### $$$ %%% ^^^ &&& ***",
    "«quotes» „German“ “curly” ‘single’ ‹angle› 「括弧」 ¿Qué? ¡Sí! § ¶ † ‡ • ‰ ′ ″",
    "control\x00chars\x01in\x07the\x08middle\x7f and\x1b[31mansi\x1b[0m",
    "odd\x0bvertical\x0ctab \x1cfile\x1dgroup\x1erecord\x1funit sep \x85nel",
    "unicode spaces:\xa0nbsp\u2000en\u2003em\u2009thin\u200bzw\u202fnnbsp\u205fmm\u3000ideo\u2028ls\u2029ps",
    "zero\u200dwidth\u200cjoiners and soft\xadhyphen and bom\ufeffmark and \ufffd replacement",
    "ΣΊΣΥΦΟΣ final sigma ΟΔΟΣ, İstanbul DİYARBAKIR, straße STRASSE, ﬁne ﬂow ﬀ, ǅungla",
    "ＦＵＬＬＷＩＤＴＨ ｌｅｔｔｅｒｓ １２３ and ⅫⅣ roman ① circled ㈱",
    "Arabic: مرحبا بالعالم. Hebrew: שלום עולם! Devanagari: नमस्ते दुनिया। Thai: สวัสดีชาวโลก",
    "Kawi 𑼄𑽁𑼅 musical 𝅘𝅥𝅮 𝅗𝅥 𝆹𝅥𝅯 and 𝅘𝅥𝅥𝅭 Vietnamese 𖿰𖿱 math 𝐀𝐁𝐂 𝔸𝔹",
    "special tokens [MASK] [CLS] x[SEP]y [PAD][UNK] [mask] [ MASK ] [MASK",
    "Mixed [Case] With Brackets And UPPER words, ümlaut Über",
    f"a very long word {LONG_WORD} and {LONG_WORD[:99]} and {LONG_WORD[:101]}",
    "URLs https://example.com/path?q=1&x=y#frag, e-mail a.b@c.org, ids BRCA1/2 p53 IL-6 10.1000/xyz123",
    "numbers 3.14159 1,000,000 −42 ±0.5 1e-10 50% 2×3 ½ ¾ ²³ µg/mL °C",
    "tokens unlikely in vocab: ꙮ ᚠᛇᚻ 𓀀 ⵣ ߷ ᎠᏍᎦ",
    "\ud7ff\ue000 private use \U000f0000 and noncharacters \ufdd0\uffff",
    " ".join(["the cell biology of p53 signalling"] * 150),
]


def fuzz_texts(n: int, seed: int) -> list[str]:
    """Random texts over a pool mixing ASCII, accents, marks, CJK, emoji, controls and spaces."""
    rng = random.Random(seed)
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        " \t\n\r\x0b\x0c\x1c\x85\xa0\u2003\u3000",
        "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~¡¿«»—–…·",
        "àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿĀāĂăĄąİıŒœŠšŸŽž",
        "\u0300\u0301\u0308\u0323\u093e\u094d\u0e31\U0001d165\U0001d16d\U00011f41",
        "中文字符日本語한국어ㄱ",
        "🎉🚀❤️👩‍👧🇫🇷\u200d\ufe0f",
        "\x00\x01\x7f\u200b\u200c\u00ad\ufeff\ufffd",
        "ΣσςΑΩ",
    ]
    out = []
    for _ in range(n):
        length = rng.randint(0, 80)
        out.append("".join(rng.choice(rng.choice(pools)) for _ in range(length)))
    return out


def read_beir_sample(count: int = 300) -> list[str]:
    """The first `count` SciFact documents as `title + " " + text`."""
    with zipfile.ZipFile(BEIR_DIR / "scifact.zip") as zf, zf.open("scifact/corpus.jsonl") as fh:
        docs = [json.loads(line) for _, line in zip(range(count), fh, strict=False)]
    return [(d["title"] + " " + d["text"]).strip() for d in docs]
