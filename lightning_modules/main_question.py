"""002 §2.4 main-question rules; they live in `feedback_nlp.nets.main_question` (shared with serving)."""
from feedback_nlp.nets.main_question import RULES, is_main_question, normalize, pick, pick_rule1, pick_rule2, rule_accuracy

__all__ = ["RULES", "is_main_question", "normalize", "pick", "pick_rule1", "pick_rule2", "rule_accuracy"]
