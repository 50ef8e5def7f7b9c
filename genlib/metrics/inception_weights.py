"""Where the Inception-v3 FID weights come from, without importing torch-fidelity.

The config check names these when ``eval.inception_weights`` is not a file; importing
torch-fidelity there would make every stage's code depend on it. ``tests/test_image_metrics.py``
checks that the URL is torch-fidelity's own.
"""
URL_INCEPTION_V3 = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
INCEPTION_FILE = URL_INCEPTION_V3.rsplit("/", 1)[-1]
INCEPTION_WEIGHTS_ALLOWED = (
    f"a local file with torch-fidelity's Inception-v3 FID weights ({INCEPTION_FILE}, from {URL_INCEPTION_V3}), "
    "or null to download them into torch hub's cache on a machine with internet access"
)
