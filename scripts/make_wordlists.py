"""Generate the return-code word lists (chatserver/crypto/words/<lang>.txt).

The server never imports this script or its inputs: it reads the committed
lists. Rerun it only to change a list, and review the diff word by word.

Inputs (none are needed at run time):

- word frequencies from ``wordfreq`` 3.1.1 (``pip install -e '.[wordlists]'``;
  code Apache-2.0, data CC BY-SA 4.0, so the generated lists are CC BY-SA 4.0
  too; chatserver/crypto/words/README.md credits the sources);
- a spelling dictionary, used only to keep real, lower-case dictionary words
  and so drop proper names, slang, misspellings and foreign words: Debian's
  ``wswedish`` (/usr/share/dict/swedish) and ``wamerican``
  (/usr/share/dict/american-english);
- the reviewed blocklists beside this script, scripts/wordlists/<lang>-blocklist.txt:
  words unsuitable for a 13-year-old (sex, violence, death, drugs, insults,
  religion, body, illness, family conflict), function words that make a code
  hard to remember, and words read through by hand and rejected.

Filters, in order, over the most frequent words first:

1. letters of the language's alphabet only, 3-8 letters, lower case;
2. in the dictionary in lower case (a word the dictionary knows only
   capitalised is a name);
3. not on the blocklist;
4. no two words share their first four letters, their stem (the word less an
   inflection ending, ``stem``), or start one another, so plural/singular and
   other inflected pairs (``hund``/``hundar``, ``bilar``/``bilen``,
   ``city``/``cities``) never both appear;
5. neither in a list built before it (``ORDER``: Swedish first) nor the start
   of a word there or started by one (no ``albums`` beside Swedish ``album``),
   so the lists are disjoint and every code's words belong to one language;
6. the first ``SIZE`` survivors, so every word is among the language's most
   common ones.

Usage: python scripts/make_wordlists.py [--check]
``--check`` regenerates in memory and fails if a committed list differs.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "chatserver" / "crypto" / "words"
BLOCK = Path(__file__).resolve().parent / "wordlists"
SIZE = 2048  # 2^11: six words give 66 bits
SCAN = 60_000  # how far down the frequency list to look

# Built in this order; each list leaves out the words of those before it.
ORDER = ("sv", "en")
# Inflection endings, longest first: two words with the same stem are two
# forms of one word to a reader, so only the more frequent one is kept.
ENDINGS = {
    "sv": ("arna", "erna", "orna", "heten", "ande", "ende", "are", "ade", "ar", "er", "or",
           "en", "et", "na", "ne", "de", "te", "da", "a", "e", "n", "t", "s"),
    "en": ("ies", "ied", "ing", "est", "es", "ed", "er", "ly", "s", "y"),
}
LANGS = {
    "sv": {"alphabet": "a-zåäö", "dict": "/usr/share/dict/swedish", "encoding": "latin-1"},
    "en": {"alphabet": "a-z", "dict": "/usr/share/dict/american-english", "encoding": "utf-8"},
}


def blocklist(lang: str) -> tuple[set[str], tuple[str, ...]]:
    """The blocked words, and the blocked beginnings (entries ending in "*",
    e.g. ``död*`` for död, döda, döden, dödlig ...)."""
    words: set[str] = set()
    for line in (BLOCK / f"{lang}-blocklist.txt").read_text("utf-8").splitlines():
        words.update(line.split("#", 1)[0].split())
    beginnings = tuple(sorted(w[:-1] for w in words if w.endswith("*")))
    return {w for w in words if not w.endswith("*")}, beginnings


def stem(word: str, lang: str) -> str:
    """The word less its longest inflection ending, keeping three letters."""
    for ending in ENDINGS[lang]:
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            return word[: -len(ending)]
    return word


def dictionary(path: str, encoding: str) -> set[str]:
    return {w.strip() for w in Path(path).read_text(encoding).splitlines()}


def build(lang: str, taken: frozenset[str] = frozenset()) -> list[str]:
    from wordfreq import top_n_list  # only the generator needs wordfreq

    spec = LANGS[lang]
    shape = re.compile(f"^[{spec['alphabet']}]{{3,8}}$")
    known = dictionary(spec["dict"], spec["encoding"])
    blocked, beginnings = blocklist(lang)
    chosen: list[str] = []
    prefixes: set[str] = set()
    kept_stems: set[str] = set()
    taken_starts = {t[:k] for t in taken for k in range(3, len(t) + 1)}
    for word in top_n_list(lang, SCAN, wordlist="best"):
        if not shape.match(word) or word not in known or word in blocked \
                or word in taken_starts or word.startswith(beginnings) \
                or any(word[:k] in taken for k in range(3, len(word))):
            continue
        if word[:4] in prefixes or stem(word, lang) in kept_stems:
            continue
        if any(c.startswith(word) or word.startswith(c) for c in chosen):
            continue
        chosen.append(word)
        prefixes.add(word[:4])
        kept_stems.add(stem(word, lang))
        if len(chosen) == SIZE:
            return chosen
    raise SystemExit(f"{lang}: only {len(chosen)} words pass the filters")


def render(lang: str, words: list[str]) -> str:
    return "\n".join(sorted(words)) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    status = 0
    taken: frozenset[str] = frozenset()
    for lang in ORDER:
        words = build(lang, taken)
        taken |= set(words)
        text = render(lang, words)
        path = OUT / f"{lang}.txt"
        if args.check:
            if path.read_text("utf-8") != text:
                print(f"{path} differs from what the generator makes", file=sys.stderr)
                status = 1
        else:
            path.write_text(text, "utf-8")
            print(f"{path}: {SIZE} words")
    return status


if __name__ == "__main__":
    sys.exit(main())
