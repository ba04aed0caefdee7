"""Model fields shared by the apps."""

import json

from django.core.serializers.json import DjangoJSONEncoder
from fernet_fields import EncryptedTextField


class EncryptedJSONField(EncryptedTextField):
    """A JSON document stored Fernet-encrypted (fernet_fields has no JSON field).

    For documents that may carry personal data, such as an alert's payload when a data
    subject consented to sharing their identity. Like every encrypted field it cannot be
    filtered on.
    """

    def get_prep_value(self, value):
        if value is None:
            return None
        return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False)

    def to_python(self, value):
        if isinstance(value, str):
            return json.loads(value)
        return value

    def value_to_string(self, obj) -> str:
        return self.get_prep_value(self.value_from_object(obj)) or ""
