"""The generation aggregate: pre-generated answers, live turns and their progress.

`backend` is the only module of `arena` that imports `models_backend`.
"""
