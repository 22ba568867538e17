"""Intent and sentiment classifiers: data files, training, calibration, evaluation, prediction.

The pure-ML modules (data, encoder, classifier, calibration, train, evaluate, predict) need no
Django; `services`, `runtime` and the management commands are the Django side.
"""

OUT_OF_SCOPE = "out_of_scope"
SENTIMENT_LABELS = ("negative", "neutral", "positive")
