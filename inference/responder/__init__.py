"""The seq2seq responder: writes a bot reply from the recent conversation, the predicted
intent and the knowledge retrieved for the message. Django-free; the Django side (training
a tenant's responder, evaluating it, the per-process loaded model) is
`inference.responder_services`.

    responder = Responder.load(path)                      # CUDA (bf16/fp16) when present, else CPU
    reply = responder.reply(history, intent, knowledge, settings=tenant.generation)
    reply.text, reply.score, reply.tokens, reply.latency_ms

`history` is (sender, text) turns, oldest first, ending with the visitor message to answer.
"""
from inference.responder.generate import GenerationSettings, MicroBatcher, Reply, Responder, pick_device
from inference.responder.inputs import build_source
from inference.responder.metrics import reply_metrics, rouge_l
from inference.responder.train import ResponderTrainConfig, TrainPair, train_responder

__all__ = [
    "GenerationSettings", "MicroBatcher", "Reply", "Responder", "ResponderTrainConfig", "TrainPair",
    "build_source", "pick_device", "reply_metrics", "rouge_l", "train_responder",
]
