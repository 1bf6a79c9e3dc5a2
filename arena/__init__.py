"""Arena: a self-hosted, Chatbot-Arena-style human preference evaluation platform.

Importing this package loads nothing: `arena.ranking` stays importable without Django. The
Celery app (`arena.celery`) is loaded when Django starts (`ArenaConfig.ready`), so that
`shared_task` binds to it in every Django process; `celery -A arena` finds it by itself.
"""
