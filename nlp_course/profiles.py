"""Scale profiles: one switch that sets how big everything in the course is.

A profile is a small, printable record, in the spirit of nanoGPT's config files: a dozen numbers and
names that every notebook reads in its knobs cell. The same code then runs at three scales:

- ``toy``: any CPU, offline. Data from the course's own files in ``data/`` and Python code from the
  interpreter's standard library. Each notebook well under two minutes on two cores; CI uses it.
- ``colab``: one T4-class GPU (16 GB, fp16 because a T4 has no bf16), online. Hub datasets,
  streamed where large. ELECTRA-small / GPT-2-small sized models.
- ``full``: several GPUs launched with ``accelerate launch`` or ``torchrun``. Paper-sized settings.
- ``rehearsal``: the ``colab`` profile's Hub sources and code paths at toy sizes, on a CPU. CI runs every
  notebook with it against a local stand-in Hub (``tools/rehearse.py``); an instructor can run it against
  the real Hub to dry-run the Colab path of a notebook in a minute or two.

The Hub ids come from the manifest, ``nlp_course.hub_assets``.

``setup_notebook()`` is the one call a notebook makes after its install cell: it seeds, picks the
device and precision, quiets the libraries and prints a summary. It keeps the environment out of
sight (as nlp-with-transformers' ``setup_chapter()`` does), never the lesson.

Taught in: 01_nlp_concepts (set-up and knobs cells).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from nlp_course.errors import UnknownProfileError
from nlp_course.hub_assets import asset
from nlp_course.runtime import (
    TPU_NOTE,
    detect_device,
    format_table,
    hub_available,
    library_versions,
    quiet_logging,
    seed_everything,
    tpu_available,
)

ENV_VAR = "NLP_COURSE_PROFILE"


@dataclass(frozen=True)
class Profile:
    """Everything that changes with the scale of a run. Print it to see it as a table."""

    name: str
    description: str
    # Data: a course name (files in data/), a local path, or a Hub id ("owner/name").
    corpus_es: str
    corpus_es_config: str | None
    reviews_es: str
    reviews_es_config: str | None
    reviews_en: str
    code_corpus: str  # "stdlib" = Python files of the running interpreter
    streaming: bool  # stream Hub datasets instead of downloading them whole
    max_documents: int | None  # cap on documents read from a corpus (None: all)
    tokenizer_documents: int | None  # documents (or code files) the course tokenizers are trained on
    # Tokenizers
    vocab_size: int
    code_vocab_size: int
    # Models (encoder and decoder sizes used by the pretraining chapters)
    hidden_size: int
    num_layers: int
    num_heads: int
    seq_length: int
    # Training
    batch_size: int
    grad_accumulation: int
    max_steps: int
    learning_rate: float
    eval_steps: int
    # Filled in by setup_notebook() from the machine actually running the code (get_profile() alone
    # leaves the CPU defaults: a profile names a scale, not a machine)
    device: str = "cpu"
    precision: str = "fp32"  # "fp32", "fp16" or "bf16"

    @property
    def fp16(self) -> bool:
        """For ``TrainingArguments(fp16=...)``."""
        return self.precision == "fp16"

    @property
    def bf16(self) -> bool:
        """For ``TrainingArguments(bf16=...)``."""
        return self.precision == "bf16"

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.grad_accumulation * self.seq_length

    def as_rows(self) -> list[tuple[str, str]]:
        return [(f.name, repr(getattr(self, f.name))) for f in dataclasses.fields(self)]

    def __str__(self) -> str:
        rows = self.as_rows()
        width = max(len(k) for k, _ in rows)
        return "\n".join([f"Profile {self.name!r}"] + [f"  {k:<{width}}  {v}" for k, v in rows])


# Hub datasets shared by every profile that uses the Hub (ids, configs: the manifest)
_HUB_SOURCES = dict(
    corpus_es=asset("corpus_es").repo_id,  # Spanish Wikipedia
    corpus_es_config=asset("corpus_es").config,
    reviews_es=asset("reviews_es").repo_id,  # Spanish tweets, 3 classes (neutral too)
    reviews_es_config=asset("reviews_es").config,
    reviews_en=asset("reviews_en").repo_id,  # the slides' rotten_tomatoes, 2 classes
)

PROFILES: dict[str, Profile] = {
    "toy": Profile(
        name="toy",
        description="any CPU, offline, course files in data/ and the standard library; about a minute a notebook",
        corpus_es="corpus_es",
        corpus_es_config=None,
        reviews_es="reviews_es",
        reviews_es_config=None,
        reviews_en="reviews_en",
        code_corpus="stdlib",
        streaming=False,
        max_documents=None,
        tokenizer_documents=None,
        vocab_size=2_000,
        code_vocab_size=4_000,
        hidden_size=128,
        num_layers=2,
        num_heads=2,
        seq_length=128,
        batch_size=16,
        grad_accumulation=1,
        max_steps=120,
        learning_rate=1e-3,
        eval_steps=40,
    ),
    "colab": Profile(
        name="colab",
        description="one T4-class GPU (16 GB, fp16), Hub datasets streamed; about 45 min per pretraining notebook",
        **_HUB_SOURCES,
        code_corpus=asset("code").repo_id,
        streaming=True,
        max_documents=200_000,
        tokenizer_documents=20_000,  # a tokenizer needs a representative sample, not the whole corpus
        vocab_size=32_000,
        code_vocab_size=32_768,
        hidden_size=256,  # ELECTRA-small / a small GPT-2
        num_layers=12,
        num_heads=4,
        seq_length=256,
        batch_size=32,
        grad_accumulation=4,
        # 2,500 steps of 32 x 4 x 256 tokens: 82 M tokens, about 9.5e15 FLOPs for either 18 M-parameter
        # model of notebooks 04 and 06; about 20 minutes at the 8 TFLOP/s assumed for a T4 (runtime.T4_TFLOPS)
        max_steps=2_500,
        learning_rate=5e-4,
        eval_steps=500,
    ),
    "full": Profile(
        name="full",
        description="several GPUs with accelerate launch or torchrun; paper-sized settings, hours to days",
        **_HUB_SOURCES,
        code_corpus=asset("code_full").repo_id,
        streaming=True,
        max_documents=None,
        tokenizer_documents=200_000,  # CodeParrot trained its tokenizer on 200,000 files
        vocab_size=50_265,  # RoBERTa / BERTIN
        code_vocab_size=32_768,  # CodeParrot
        hidden_size=768,
        num_layers=12,
        num_heads=12,
        seq_length=512,
        batch_size=64,
        grad_accumulation=8,
        max_steps=100_000,
        learning_rate=3e-4,  # the slide's run_mlm value
        eval_steps=2_500,
    ),
    "rehearsal": Profile(
        name="rehearsal",
        description="colab's Hub sources and code paths at toy sizes, on a CPU: a dry run of the Colab path",
        **_HUB_SOURCES,
        code_corpus=asset("code").repo_id,
        streaming=True,
        max_documents=400,
        tokenizer_documents=200,
        vocab_size=1_000,
        code_vocab_size=1_000,
        hidden_size=64,
        num_layers=2,
        num_heads=2,
        seq_length=64,
        batch_size=8,
        grad_accumulation=2,
        max_steps=6,
        learning_rate=1e-3,
        eval_steps=3,
    ),
}


def detect_profile_name() -> str:
    """``colab`` when a CUDA GPU and the Hub are both reachable, else ``toy``.

    ``full`` is never chosen automatically: a run of hours should be asked for by name.
    """
    import torch

    if torch.cuda.is_available() and hub_available():
        return "colab"
    return "toy"


def get_profile(name: str | None = None) -> Profile:
    """Return the profile to use: the argument, else ``$NLP_COURSE_PROFILE``, else detection.

    >>> get_profile("toy").name
    'toy'
    """
    source = "argument"
    if name is None:
        name = os.environ.get(ENV_VAR) or None
        source = f"${ENV_VAR}"
    if name is None:
        return PROFILES[detect_profile_name()]
    key = name.strip().lower()
    if key not in PROFILES:
        valid = ", ".join(repr(k) for k in PROFILES)
        raise UnknownProfileError(
            f"Unknown profile {name!r} (from the {source}). Valid profiles: {valid}. "
            f"Use get_profile('toy') or set {ENV_VAR}=toy for a CPU with no network."
        )
    return PROFILES[key]


def setup_notebook(profile: str | Profile | None = None, seed: int = 42, quiet: bool = True, show: bool = True) -> Profile:
    """Seed, pick device and precision, quiet the libraries, print a summary; return the profile.

    ``profile`` is a name (``"toy"``, ``"colab"``, ``"full"``), a ``Profile``, or ``None`` for
    ``$NLP_COURSE_PROFILE`` or detection. The returned profile carries ``device`` and
    ``precision`` (``profile.fp16`` and ``profile.bf16`` feed ``TrainingArguments``).
    """
    chosen = profile if isinstance(profile, Profile) else get_profile(profile)
    if quiet:
        quiet_logging()
    seed_everything(seed)
    info = detect_device()
    chosen = dataclasses.replace(chosen, device=info.device, precision=info.precision)
    if show:
        rows = list(library_versions().items())
        rows += [
            ("device", info.name),
            ("precision", info.precision),
            ("Hub reachable", "yes" if hub_available() else "no (offline)"),
            ("seed", str(seed)),
            ("profile", f"{chosen.name}: {chosen.description}"),
        ]
        print(format_table(rows))
    if tpu_available():
        print(TPU_NOTE)
    return chosen
