"""Accuracy, an ``evaluate`` metric module that loads offline (the course's copy of the Hub's ``accuracy``).

Loaded by ``evaluate.load`` as a standalone script: it imports no course module.
"""

import datasets
import evaluate
from sklearn.metrics import accuracy_score

_DESCRIPTION = """
Accuracy: the share of predictions equal to their reference, (TP + TN) / (TP + TN + FP + FN).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted labels (a list of 0/1 lists with the "multilabel" configuration).
    references (`list` of `int`): true labels, in the same shape.
    normalize (`bool`): the share of correct predictions (default) or, with False, their (weighted) count.
    sample_weight (`list` of `float`): a weight for each example. Defaults to None.
    labels, pos_label, average, zero_division: accepted and ignored, so that ``evaluate.combine`` can pass the
        arguments of f1, precision and recall to every module.

Returns:
    accuracy (`float`): between 0 and 1 (or the count, with normalize=False). Higher is better.

Example (``nlp_course.evaluation.load_metric(name)`` finds the folder):
    >>> accuracy = evaluate.load(".../metric_modules/accuracy")
    >>> accuracy.compute(references=[0, 1, 2, 0, 1, 2], predictions=[0, 1, 1, 2, 1, 0])
    {'accuracy': 0.5}
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
class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=_features(self.config_name),
            reference_urls=[SKLEARN_DOCS + "sklearn.metrics.accuracy_score.html"],
        )

    def _compute(self, predictions, references, normalize=True, sample_weight=None,
                 labels=None, pos_label=None, average=None, zero_division=None):
        score = accuracy_score(references, predictions, normalize=normalize, sample_weight=sample_weight)
        return {"accuracy": float(score)}
