"""Serving: load an export folder, decode records, predict rows, and serve them over HTTP.

Why its own package: a server must start from an export alone, without the training stack.
Nothing here imports Lightning, a LightningModule or a DataModule (tests/test_serving_imports.py
imports every module with Lightning blocked); the networks come from `feedback_nlp.nets`.
"""
