"""Questions the bot could not answer, grouped by meaning for the managers' "what to fix first".

The worker side owns the sentence encoder, so the grouping runs here (a Celery task, or the
`unanswered_clusters` command) and stores its result with chatbot.review.fixes.clusters_store: a JSON file
under MODELS_DIR that the web process reads. Embeddings are the knowledge base's own (the shared
retrieval encoder, order numbers and the like stripped); clustering is agglomerative, average linkage
on cosine distance, cut at a distance threshold, so the number of groups need not be known.
"""
import logging
from datetime import date

import numpy as np
from django.utils import timezone

from chatbot.review import fixes
from chatbot.review.insights import Period
from chatbot.models import Tenant

from inference.retrieval import retrieval_text, sentence_encoder

log = logging.getLogger(__name__)

# Average cosine distance under which questions are taken to ask the same thing. With all-MiniLM-L6-v2, six
# wordings of "do you ship to Canada?" lie 0.21 apart on average (0.33 at most), while the nearest different
# question ("can I order by phone?") is 0.36 from one of them and merges into their group from 0.55 on.
DISTANCE_THRESHOLD = 0.45
EXAMPLES = 5


def cluster_labels(vectors: np.ndarray, threshold: float = DISTANCE_THRESHOLD) -> np.ndarray:
    """A group number for each row of L2-normalised `vectors`."""
    from sklearn.cluster import AgglomerativeClustering

    if len(vectors) < 2:
        return np.zeros(len(vectors), dtype=int)
    model = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                    distance_threshold=threshold)
    return model.fit_predict(vectors)


def group(questions: list[dict], vectors: np.ndarray, threshold: float = DISTANCE_THRESHOLD) -> list[dict]:
    """The groups of two or more questions, biggest first, each named by its most typical question (the one
    closest on average to the others) and shown by the questions closest to it."""
    labels = cluster_labels(vectors, threshold)
    out = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < 2:
            continue
        similarity = vectors[members] @ vectors[members].T
        order = members[np.argsort(-similarity.mean(axis=1), kind="stable")]
        typical = questions[order[0]]
        out.append({
            "label": typical["text"][:200],
            "size": int(len(members)),
            "conversations": len({questions[i]["conversation_id"] for i in members}),
            "examples": [{"id": questions[i]["id"], "conversation": questions[i]["conversation_id"],
                          "text": questions[i]["text"][:300]} for i in order[:EXAMPLES]],
            "message_ids": [int(questions[i]["id"]) for i in members],
        })
    out.sort(key=lambda c: (-c["size"], c["label"]))
    return out


def unanswered_clusters(tenant_id: int, period: Period, threshold: float = DISTANCE_THRESHOLD,
                        limit: int = fixes.CLUSTER_LIMIT) -> dict:
    """Group the tenant's unanswered questions of `period` (the newest `limit`), store and return the result."""
    started = timezone.now()
    questions = fixes.unanswered_questions(tenant_id, period, limit)
    encoder = sentence_encoder(tenant_id)
    vectors = encoder.encode([retrieval_text(q["text"]) for q in questions]) if questions else np.zeros((0, 1))
    # A distance on the rescaled scores of the store's base (inference.bases): 1 - (cos - f) / (1 - f).
    clusters = group(questions, vectors, threshold * (1 - encoder.score_floor))
    result = {
        "tenant": tenant_id, "from": period.start.isoformat(), "to": period.end.isoformat(),
        "computed_at": timezone.now().isoformat(), "threshold": threshold, "questions": len(questions),
        "grouped": sum(c["size"] for c in clusters), "clusters": clusters,
        "seconds": round((timezone.now() - started).total_seconds(), 2),
    }
    fixes.clusters_store(tenant_id, result)
    log.info("tenant %s: %d unanswered questions in %d groups", tenant_id, len(questions), len(clusters))
    return result


def unanswered_clusters_run(tenant_id: int, start: str, end: str) -> int:
    """Recompute a tenant's groups (running it twice only writes the same file twice); returns their count."""
    if not Tenant.objects.filter(pk=tenant_id).exists():
        return 0
    period = Period(date.fromisoformat(start), date.fromisoformat(end))
    return len(unanswered_clusters(tenant_id, period)["clusters"])
