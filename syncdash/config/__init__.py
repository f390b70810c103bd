"""Config loading: YAML with line numbers, ${VAR} secrets, and validated models."""

from syncdash.config.load import find_config_file, load_config
from syncdash.config.models import Config, FieldSpec, SourceConfig

__all__ = ["Config", "FieldSpec", "SourceConfig", "find_config_file", "load_config"]
