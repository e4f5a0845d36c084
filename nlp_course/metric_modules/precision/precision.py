"""Precision, an ``evaluate`` metric module that loads offline (the course's copy of the Hub's ``precision``).

Loaded by ``evaluate.load`` as a standalone script: it imports no course module.
"""

import datasets
import evaluate
import numpy
from sklearn.metrics import precision_score

_DESCRIPTION = """
Precision: the share of predicted positives that are true positives, TP / (TP + FP).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted labels (a list of 0/1 lists with the "multilabel" configuration).
    references (`list` of `int`): true labels, in the same shape.
    labels (`list` of `int`): the labels averaged over when `average` is not "binary", and their order when
        it is None. A label absent from the data counts as a 0 in a macro average. Defaults to every label
        seen, sorted.
    pos_label (`int`): the positive class when `average` is "binary". Defaults to 1.
    average (`str` or None): "binary" (default: the score of `pos_label` alone, for two classes),
        "micro" (counts of true and false positives and negatives summed over the labels), "macro"
        (unweighted mean of the labels' scores), "weighted" (mean weighted by each label's number of true
        examples), "samples" (multilabel only), or None (one score per label).
    sample_weight (`list` of `float`): a weight for each example. Defaults to None.
    zero_division ("warn", 0, 1 or nan): the value of an undefined score (no predicted positives).
        Defaults to "warn", which returns 0 with a warning.

Returns:
    precision (`float`, or an array of floats with average=None): between 0 and 1. Higher is better.

Example (``nlp_course.evaluation.load_metric(name)`` finds the folder):
    >>> precision = evaluate.load(".../metric_modules/precision")
    >>> precision.compute(references=[0, 1, 0, 1, 0], predictions=[0, 0, 1, 1, 0])
    {'precision': 0.5}
"""

_CITATION = """
@article{scikit-learn,
  title={Scikit-learn: Machine Learning in {P}ython},
  author={Pedregosa, F. and Varoquaux, G. and Gramfort, A. and Michel, V. and Thirion, B. and Grisel, O.
          and Blondel, M. and Prettenhofer, P. and Weiss, R. and Dubourg, V. and Vanderplas, J. and Passos, A.
          and Cournapeau, D. and Brucher, M. and Perrot, M. and Duchesnay, E.},
  journal={Journal of Machine Learning Research},
  volume={12},
  pages={2825--2830},
  year={2011}
}
"""

SKLEARN_DOCS = "https://scikit-learn.org/stable/modules/generated/"


def _features(config_name):
    label = datasets.Value("int32")
    if config_name == "multilabel":
        label = datasets.Sequence(label)
    return datasets.Features({"predictions": label, "references": label})


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Precision(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=_features(self.config_name),
            reference_urls=[SKLEARN_DOCS + "sklearn.metrics.precision_score.html"],
        )

    def _compute(self, predictions, references, labels=None, pos_label=1, average="binary",
                 sample_weight=None, zero_division="warn"):
        score = precision_score(references, predictions, labels=labels, pos_label=pos_label, average=average,
                                sample_weight=sample_weight, zero_division=zero_division)
        return {"precision": float(score) if numpy.ndim(score) == 0 else score}
