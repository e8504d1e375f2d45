"""The Renode host: our CPython models on Renode's system bus through pyrenode3 (pythonnet).

Nothing here is imported unless ENGINE=renode is asked for; :func:`availability.missing_reason`
says what is missing on machines without Renode.
"""
