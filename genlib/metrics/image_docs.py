"""One line per image metric, for the report (the image counterpart of ``sample_metrics.METRIC_DOCS``)."""
from __future__ import annotations

from genlib.metrics.class_balance import KL_PSEUDO_COUNT

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


CLASS_BALANCE_DOCS: dict[str, str] = {
    "class_tv": "total variation distance between the generated (classifier-predicted) and the training class distributions; 0 is best",
    "class_kl": f"KL(train || generated) of the class distributions, generated counts smoothed by {KL_PSEUDO_COUNT} per class; 0 is best",
    "class_worst_coverage": "smallest generated/training share ratio over the classes (0 = a class never generated); 1 is best",
    "rare_share_gen": "generated share of the rare classes (the third of the classes with the smallest training share)",
    "rare_share_train": "training share of the rare classes (the third of the classes with the smallest training share)",
    "rare_coverage": "rare_share_gen / rare_share_train; 1 is best, below 1 = rare classes under-produced",
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
        docs[f"class_coverage/{k}"] = f"class_share_gen/{k} / class_share_train/{k}; 1 is best"
    return docs
