"""Flows (`flows:` in the config): steps run one after another as one run."""
