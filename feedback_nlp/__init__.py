"""feedback_nlp: train, compare and ship the NLP models that read e-commerce customer feedback.

Why a package with mapped folders: users look for `lightning_modules/`, `datamodules/`,
`callbacks/` and `configs/` at the top of the repository, while an installed environment must
not gain generic top-level names such as `common` or `metrics`. pyproject.toml maps each
top-level folder to `feedback_nlp.<folder>`; this folder holds only the command-line entries.
"""

__version__ = "0.3.0"
