"""Companion package of the course "NLP de 0 a 100 con Hugging Face".

It holds what would otherwise be repeated from notebook to notebook: the scale profile, device and
precision, the data sources, and helpers that a notebook has already taught. The lessons
themselves stay in the notebooks.
"""

from nlp_course.errors import UnknownProfileError
from nlp_course.profiles import PROFILES, Profile, get_profile, setup_notebook
from nlp_course.runtime import REPO_URL, DeviceInfo, choose_precision, detect_device

__version__ = "0.1.0"

__all__ = [
    "PROFILES",
    "Profile",
    "UnknownProfileError",
    "get_profile",
    "REPO_URL",
    "DeviceInfo",
    "choose_precision",
    "detect_device",
    "setup_notebook",
    "__version__",
]
