"""Intent and sentiment classifiers, a library: data files, encoders (nlu.e5 converts the multilingual one),
training, calibration, out-of-scope rules, evaluation, prediction.

It imports no framework and no other package of the project (tests/test_layering.py keeps it so): the
Django side, which labels visitor messages and trains a store's registered models, is inference's
(inference.labelling, inference.nlu_services and the NLU management commands).
"""

OUT_OF_SCOPE = "out_of_scope"
SENTIMENT_LABELS = ("negative", "neutral", "positive")
