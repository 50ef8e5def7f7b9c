"""One line per image metric, for the report (the image counterpart of ``sample_metrics.METRIC_DOCS``)."""
from __future__ import annotations

import math

from genlib.metrics.class_balance import CONFIDENCE_WARNING, KL_PSEUDO_COUNT, LOW_CONFIDENCE, MIN_EXPECTED

_CLF = "the penultimate features of the data set's own genlib classifier (not comparable with published FIDs)"
_INC = "Inception-v3 2048-d pool features (torch-fidelity's inception-v3-compat, the TensorFlow FID network)"


def _fidelity_docs(suffix: str, space: str) -> dict[str, str]:
    return {
        f"fid{suffix}": f"FID (Heusel et al. 2017) on {space}; lower is better",
        f"kid{suffix}": f"KID (Binkowski et al. 2018): unbiased MMD^2, cubic polynomial kernel, mean over random subsets, on {space}; ~0 is best, can be slightly negative",
        f"kid{suffix}_std": f"standard deviation of KID over its random subsets, on {space}",
        f"precision{suffix}": f"improved precision (Kynkaanniemi et al. 2019, k=3): fraction of generated images inside the reference k-NN manifold of {space}; higher is better",
        f"recall{suffix}": f"improved recall (Kynkaanniemi et al. 2019, k=3): fraction of reference images inside the generated k-NN manifold of {space}; higher is better",
    }


_FAITHFUL = "a generator with exactly the training shares"
_REFUSED = f"NaN (refused) where the class expects fewer than {MIN_EXPECTED} generated images"
_RARE = "the rare classes (long-tailed sets only: the third of the classes with the smallest training share)"

CLASS_BALANCE_DOCS: dict[str, str] = {
    "class_tv": "total variation distance between the generated (classifier-predicted) and the training class distributions; 0 is best, but compare with class_tv_faithful",
    "class_tv_faithful": f"expected class_tv of {_FAITHFUL} at this sample size (normal approximation): the noise floor of class_tv",
    "class_kl": f"KL(train || generated) of the class distributions, generated counts smoothed by {KL_PSEUDO_COUNT} per class; 0 is best",
    "class_min_expected": "generated images the rarest training class expects (eval.nsamples x its training share)",
    "class_samples_needed": f"eval.nsamples at which every class expects {MIN_EXPECTED} images, so that each coverage is measured",
    "class_worst_coverage": f"smallest generated/training share ratio over the classes (0 = a class never generated); 1 is best; NaN (refused) unless every class expects {MIN_EXPECTED} images",
    "rare_share_gen": f"generated share of {_RARE}",
    "rare_share_train": f"training share of {_RARE}",
    "rare_share_sd": f"standard deviation of rare_share_gen for {_FAITHFUL}",
    "rare_coverage": f"rare_share_gen / rare_share_train; 1 is best, below 1 = rare classes under-produced; {_REFUSED.replace('the class expects', 'they expect')}",
    "rare_coverage_sd": f"standard deviation of rare_coverage for {_FAITHFUL}",
    "low_confidence_share": f"share of generated images the classifier labels with probability below {LOW_CONFIDENCE} (guesses: the class balance counts them all the same)",
    "low_confidence_share_ref": f"the same share on the reference images: what the classifier does on real ones",
}

CLASSIFIER_DOCS: dict[str, str] = {
    "classifier_test_accuracy": "accuracy of the metrics classifier on the held-out images",
    "n_nonfinite": "generated images with a NaN or infinite pixel (stored as black before every metric)",
}


def image_metric_docs(num_classes: int) -> dict[str, str]:
    """Docs of every image metric key, with the per-class keys of ``num_classes`` classes spelt out."""
    docs = {**_fidelity_docs("_clf", _CLF), **_fidelity_docs("", _INC), **CLASS_BALANCE_DOCS, **CLASSIFIER_DOCS}
    for k in range(num_classes):
        docs[f"class_share_gen/{k}"] = f"share of generated images the classifier labels {k}"
        docs[f"class_share_train/{k}"] = f"share of training images labelled {k}"
        docs[f"class_share_sd/{k}"] = f"standard deviation of class_share_gen/{k} for {_FAITHFUL}"
        docs[f"class_coverage/{k}"] = f"class_share_gen/{k} / class_share_train/{k}; 1 is best; {_REFUSED}"
        docs[f"class_coverage_sd/{k}"] = f"standard deviation of class_coverage/{k} for {_FAITHFUL}"
    return docs


def image_warnings(metrics: dict) -> list[str]:
    """What the report says before the table: class-balance numbers that the sample size or the
    classifier's confidence leave unreliable."""
    notes = []
    low = metrics.get("low_confidence_share")
    if low is not None and low > CONFIDENCE_WARNING:
        ref = metrics.get("low_confidence_share_ref", math.nan)
        notes.append(
            f"The classifier labels {low:.0%} of the samples with probability below {LOW_CONFIDENCE} "
            f"({ref:.0%} of the reference images): the class balance counts these guesses as classes."
        )
    expected = metrics.get("class_min_expected")
    if expected is not None and expected < MIN_EXPECTED:
        notes.append(
            f"The rarest class expects {expected:.1f} of the samples, below {MIN_EXPECTED}: the coverage of such "
            f"classes is refused (NaN); eval.nsamples >= {int(metrics['class_samples_needed'])} measures every class."
        )
    return notes
