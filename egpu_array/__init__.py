"""egpu_array: an Array API (2025.12) namespace whose arrays live on an external GPU."""
from ._errors import *  # noqa: F401,F403
