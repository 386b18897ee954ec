"""Tables -> DeepFM inputs.

Typed feature columns (one module per kind: ``numeric``, ``categorical`` / ``hashed``,
``sequence``), fitted together as a ``FeatureSpec`` that a ``DatasetSchema`` builds from a
schema file; and the classic ``FeatureDictionary`` / ``DataParser`` of the Basic-DeepFM-model
reference (``dictionary``), numeric and categorical columns only.
"""
from .base import KINDS, Column
from .categorical import Categorical, Hashed
from .dictionary import DataParser, FeatureDictionary, feature_fields, read_header
from .keys import canonical_key, canonical_keys, hash_keys
from .numeric import Numeric
from .schema import DatasetSchema, SchemaError
from .sequence import Sequence
from .spec import FeatureArrays, FeatureSpec

__all__ = ["KINDS", "Column", "Numeric", "Categorical", "Hashed", "Sequence", "FeatureSpec", "FeatureArrays",
           "DatasetSchema", "SchemaError", "FeatureDictionary", "DataParser", "feature_fields", "read_header",
           "canonical_key", "canonical_keys", "hash_keys"]
