"""JSON files: reading a JSON object with errors that name the file, and the JSON round trip of
the fitted feature objects (``to_dict``/``from_dict`` -> text and atomic files)."""
import json

from .atomic import atomic_write


def read_json_object(path, what):
    """The JSON object in the file ``path`` (a UTF-8 byte-order mark is skipped); ``ValueError``
    naming ``what`` and the path when it cannot be read, is not JSON or not an object."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            obj = json.load(f)
    except OSError as err:
        raise ValueError(f"{what} {str(path)!r} cannot be read: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{what} {str(path)!r} is not valid JSON: {err}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{what} {str(path)!r} must hold a JSON object, got {type(obj).__name__}")
    return obj


class JsonRoundTrip:
    """``to_json``/``from_json``/``save``/``load`` for a class with ``to_dict``/``from_dict``."""

    def to_json(self, indent=None):
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text):
        return cls.from_dict(json.loads(text))

    def save(self, path):
        """Write the JSON atomically: a temporary file in the same directory, then rename."""
        text = self.to_json(indent=1)
        atomic_write(path, lambda f: f.write(text))

    @classmethod
    def load(cls, path):
        with open(path, encoding="utf-8") as f:
            return cls.from_json(f.read())
