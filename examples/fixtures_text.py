#!/usr/bin/env python3
"""Generate mlambda-runtime's text fixtures: scikit-learn text pipelines exported by skl2onnx
(StringNormalizer, Tokenizer, TfIdfVectorizer), with onnxruntime's outputs on the same rows.

Same layout and manifest as examples/fixtures_tabular.py (whose writer this reuses), into
runtime/tests/fixtures/text/. Rows are what a client sends: free text with accents, emoji, CJK, empty
strings, leading and trailing spaces and upper case, seeded so a re-run reproduces every file.

skl2onnx tokenizes with its own regular expression ([a-zA-Z0-9_]+), not scikit-learn's, so on text
beyond ASCII words the exported model is not scikit-learn's model: the reference is onnxruntime on the
same .onnx (compare_sklearn is false, and the manifest notes the measured difference).

onnxruntime's StringNormalizer needs the en_US.UTF-8 locale (Debian: `apt-get install locales`, enable
en_US.UTF-8 in /etc/locale.gen, `locale-gen`). The generated files are committed; CI does not run this.

Usage: /work/main/.venv/bin/python examples/fixtures_text.py [--out-dir DIR]
"""

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fixtures_tabular as ft  # noqa: E402

OUT = os.path.join(HERE, "..", "runtime", "tests", "fixtures", "text")
SEED = 20261207
N_TRAIN = 900
N_ROWS = 240

INTENTS = {
    "refund": ["refund", "money", "back", "charged", "twice", "return", "order", "payment", "cancel"],
    "login": ["login", "password", "reset", "account", "locked", "cannot", "sign", "access", "code"],
    "praise": ["great", "thanks", "love", "fast", "helpful", "service", "amazing", "support", "happy"],
}
FILLER = ["the", "my", "please", "app", "is", "not", "a", "I", "to", "it", "again", "today", "help"]
# What clients really send besides plain words: accents, emoji, CJK, odd spacing and case.
ODD = [
    "",
    "   ",
    "   Refund   PLEASE   ",
    "REFUND MY ORDER NOW",
    "café naïve été Ångström",
    "ÉTÉ CAFÉ",
    "🎉🎉🎉",
    "love it 😍👍",
    "日本語のテキスト",
    "パスワードを忘れました login",
    "Straße groß ΣΊΣΥΦΟΣ",
    "İstanbul ıi",
    "tab\tseparated\nnew line",
    "x" * 3000,
    "refund " * 400,
]


def ticket(rng, intent):
    words = list(rng.choice(INTENTS[intent], size=rng.integers(2, 6))) + list(
        rng.choice(FILLER, size=rng.integers(0, 5))
    )
    rng.shuffle(words)
    text = " ".join(words)
    r = rng.random()
    if r < 0.1:
        text = text.upper()
    elif r < 0.2:
        text = text.capitalize() + "!"
    return text


def corpus(n, seed, odd=True):
    rng = np.random.default_rng(seed)
    names = list(INTENTS)
    y = rng.integers(0, len(names), size=n)
    texts = [ticket(rng, names[i]) for i in y]
    if odd:
        for i, s in enumerate(ODD):
            texts[(i * 13) % n] = s
    return texts, np.array([names[i] for i in y], dtype=object)


def tfidf_lr(w, vers):
    from skl2onnx.common.data_types import StringTensorType
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    x_tr, y_tr = corpus(N_TRAIN, SEED, odd=False)
    x_te, _ = corpus(N_ROWS, SEED + 1)
    pipe = Pipeline([("tfidf", TfidfVectorizer(ngram_range=(1, 2))), ("est", LogisticRegression(max_iter=1000))])
    pipe.fit(x_tr, y_tr)
    onx = ft.skl_export(pipe, [("text", StringTensorType([None, 1]))], {id(pipe.named_steps["est"]): {"zipmap": False}})
    feed = {"text": np.array(x_te, dtype=object).reshape(-1, 1)}
    rows = [{"text": t} for t in x_te]
    w.add(
        "text_tfidf_lr", pipe, onx, rows, feed, x_te, list(pipe.classes_), compare_sklearn=False, features=None,
        note=(
            "TfidfVectorizer(ngram_range=(1, 2)) + LogisticRegression on one free-text field, three intents with "
            f"string labels; zipmap=False; rows with accents, emoji, CJK, empty and long text; {vers}."
        ),
    )


def counts_nb(w, vers):
    from skl2onnx.common.data_types import StringTensorType
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.pipeline import Pipeline

    x_tr, y_tr = corpus(N_TRAIN, SEED + 2, odd=False)
    x_te, _ = corpus(N_ROWS, SEED + 3)
    spam = (y_tr == "refund").astype(np.int64)
    pipe = Pipeline([("counts", CountVectorizer(lowercase=False, binary=True)), ("est", MultinomialNB())])
    pipe.fit(x_tr, spam)
    onx = ft.skl_export(pipe, [("text", StringTensorType([None, 1]))])
    feed = {"text": np.array(x_te, dtype=object).reshape(-1, 1)}
    rows = [{"text": t} for t in x_te]
    w.add(
        "text_counts_nb", pipe, onx, rows, feed, x_te, list(pipe.classes_), compare_sklearn=False, features=None,
        note=(
            "CountVectorizer(lowercase=False, binary=True) + MultinomialNB, int64 labels, default export (ZipMap): "
            f"case kept, counts clipped to 1; {vers}."
        ),
    )


def mixed(w, vers):
    import pandas as pd
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    def frame(n, seed):
        rng = np.random.default_rng(seed)
        texts, intents = corpus(n, seed, odd=seed != SEED + 4)
        df = pd.DataFrame(
            {
                "text": texts,
                "tenure": rng.integers(0, 72, size=n).astype(np.float32),
                "plan": rng.choice(["basic", "plus", "pro"], size=n).astype(object),
            }
        )
        churn = ((intents == "refund") & (df["tenure"].to_numpy() < 24)).astype(np.int64)
        return df, churn

    train, y_tr = frame(N_TRAIN, SEED + 4)
    test, _ = frame(N_ROWS, SEED + 5)
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("txt", TfidfVectorizer(), "text"),
                        ("num", StandardScaler(), ["tenure"]),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
                    ]
                ),
            ),
            ("est", LogisticRegression(max_iter=1000)),
        ]
    )
    pipe.fit(train, y_tr)
    inputs = [
        ("text", StringTensorType([None, 1])),
        ("tenure", FloatTensorType([None, 1])),
        ("plan", StringTensorType([None, 1])),
    ]
    scaler = pipe.named_steps["prep"].named_transformers_["num"]
    onx = ft.skl_export(pipe, inputs, {id(scaler): {"div": "div"}, id(pipe.named_steps["est"]): {"zipmap": False}})
    feed = {
        "text": test["text"].to_numpy(object).reshape(-1, 1),
        "tenure": test["tenure"].to_numpy(np.float32).reshape(-1, 1),
        "plan": test["plan"].to_numpy(object).reshape(-1, 1),
    }
    rows = test.to_dict(orient="records")
    w.add(
        "text_ct_mixed", pipe, onx, rows, feed, test, list(pipe.classes_), compare_sklearn=False, features=None,
        note=(
            "ColumnTransformer(TfidfVectorizer on text, StandardScaler on tenure, OneHotEncoder on plan) + "
            f"LogisticRegression, one graph input per column, zipmap=False; {vers}."
        ),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default=OUT)
    args = parser.parse_args()
    vers = ft.versions()
    w = ft.Writer(os.path.abspath(args.out_dir))
    tfidf_lr(w, vers)
    counts_nb(w, vers)
    mixed(w, vers)
    w.finish()


if __name__ == "__main__":
    main()
