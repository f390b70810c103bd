"""Source kinds: the contract (`kinds.contract`), the field mapping, and one package per kind."""
