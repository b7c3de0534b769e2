"""Reference for LogisticRegressionOnAgNewsTests (Debian python3-sklearn 1.2.1).

Bag-of-words counts: tokens = re.findall('[a-z0-9]+', text.lower()), vocabulary = tokens in >= 2 training texts
(min_df=2). Train on train_subset.csv, evaluate on test.csv (text = title + " " + description).
Run from the repository root: python3 tests/Sharpformer.Tests/Classical/agnews_bow_reference.py ../shared/data/ag_news
"""
import csv, re, sys
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression

root = sys.argv[1]
train = list(csv.reader(open(f"{root}/train_subset.csv", newline="")))[1:]
test = list(csv.reader(open(f"{root}/test.csv", newline="")))
xt = [r[1] for r in train]; yt = [int(r[0]) for r in train]
xe = [r[1] + " " + r[2] for r in test]; ye = [int(r[0]) - 1 for r in test]
vec = CountVectorizer(tokenizer=lambda s: re.findall(r"[a-z0-9]+", s.lower()), lowercase=False, min_df=2, token_pattern=None)
Xt = vec.fit_transform(xt); Xe = vec.transform(xe)
print("vocabulary", len(vec.vocabulary_), "train nnz", Xt.nnz)
for C, it in [(1.0, 100), (0.1, 100), (0.1, 5000)]:
    m = LogisticRegression(C=C, max_iter=it).fit(Xt, yt)
    print(f"C={C} max_iter={it} n_iter={m.n_iter_.tolist()} train_acc={m.score(Xt, yt)!r} test_acc={m.score(Xe, ye)!r}")

from sklearn.feature_extraction.text import TfidfTransformer
tf = TfidfTransformer().fit(Xt)
for C in [1.0, 10.0]:
    m = LogisticRegression(C=C, max_iter=1000).fit(tf.transform(Xt), yt)
    print(f"tfidf C={C} n_iter={m.n_iter_.tolist()} test_acc={m.score(tf.transform(Xe), ye)!r}")
