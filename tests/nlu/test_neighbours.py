import numpy as np

from nlu.neighbours import (
    neighbours_choose,
    neighbours_fit,
    neighbours_top,
    neighbours_vote,
    probs_mix,
)


def test_nearest_examples_come_first_with_their_labels():
    index = neighbours_fit(np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]]), np.array([0, 1, 2]))
    sims, labels = neighbours_top(np.array([[0.9, 0.1]]), index, 2)
    assert labels.tolist() == [[0, 2]]
    assert sims[0, 0] > sims[0, 1]
    sims, labels = neighbours_top(np.array([[0.9, 0.1]]), index, 10)  # more than there are
    assert labels.shape == (1, 3)


def test_vote_is_a_distribution_that_sharpens_with_a_lower_temperature():
    sims, labels = np.array([[0.9, 0.8, 0.7]]), np.array([[1, 0, 0]])
    soft, sharp = neighbours_vote(sims, labels, 3, 1.0), neighbours_vote(sims, labels, 3, 0.01)
    assert np.allclose(soft.sum(1), 1) and np.allclose(sharp.sum(1), 1)
    assert soft[0].argmax() == 0 and sharp[0].argmax() == 1  # two weak votes vs one strong one
    assert soft[0, 2] == 0


def test_weight_zero_keeps_the_classifier_and_choice_fixes_what_the_head_gets_wrong():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=200)
    probs = np.full((200, 3), 0.2)
    probs[np.arange(200), (y + 1) % 3] = 0.6  # the head is always wrong
    sims = np.sort(rng.uniform(0.5, 0.9, size=(200, 20)), axis=1)[:, ::-1]
    labels = np.repeat(y[:, None], 20, axis=1)  # the neighbours are always right
    assert probs_mix(probs, sims, labels, 5, 0.05, 0.0) is probs
    choice = neighbours_choose(probs, sims, labels, y)
    assert choice["weight"] >= 0.5 and choice["val_accuracy"] == 1.0


def test_choice_keeps_the_classifier_alone_when_neighbours_only_add_noise():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, size=200)
    probs = np.full((200, 3), 0.05)
    probs[np.arange(200), y] = 0.9
    sims = np.sort(rng.uniform(0.5, 0.9, size=(200, 20)), axis=1)[:, ::-1]
    labels = rng.integers(0, 3, size=(200, 20))
    assert neighbours_choose(probs, sims, labels, y)["weight"] == 0.0
