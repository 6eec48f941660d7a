"""002 §2.3 sentence position embedding; it lives in `feedback_nlp.nets.sentence_position`."""
from feedback_nlp.nets.sentence_position import SentencePositionEmbedding, sinusoidal_table

__all__ = ["SentencePositionEmbedding", "sinusoidal_table"]
