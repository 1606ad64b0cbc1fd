"""The HTTP prediction service (front end): ONNX Runtime models from the registry, with request
logging, feedback, metrics, hot reload and API-key auth. Never imports torch.
"""

from keelml.serve.app import create_app
from keelml.serve.config import ServeConfig
from keelml.serve.inputs import FeatureLookup, RequestError
from keelml.serve.model import InputField, LoadedModel, ModelSchema, ModelSource, ServableModel

__all__ = [
    "FeatureLookup",
    "InputField",
    "LoadedModel",
    "ModelSchema",
    "ModelSource",
    "RequestError",
    "ServableModel",
    "ServeConfig",
    "create_app",
]
