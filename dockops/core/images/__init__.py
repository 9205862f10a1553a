"""Images on the engine: list, rmi, commit/tag/history, layers, search, pull/push."""
