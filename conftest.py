"""Test-wide settings: the notebooks that nbval runs execute in the toy profile, offline.

Set here rather than in the test command so that `python -m pytest` alone does the right thing on
any machine. The kernels nbval starts inherit this environment.
"""

import os

os.environ.setdefault("NLP_COURSE_PROFILE", "toy")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")
