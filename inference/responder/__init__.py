"""The seq2seq responder: writes a bot reply from the conversation, the intent and the
retrieved knowledge. Django-free; `inference.responder_services` is the Django side."""
from .generate import GenerationSettings, MicroBatcher, Reply, Responder, pick_device
from .inputs import build_source
from .metrics import reply_metrics, rouge_l
from .train import ResponderTrainConfig, TrainPair, train_responder

__all__ = [
    "GenerationSettings", "MicroBatcher", "Reply", "Responder", "ResponderTrainConfig", "TrainPair",
    "build_source", "pick_device", "reply_metrics", "rouge_l", "train_responder",
]
