"""DVC stage `evaluate`: Compare samples with held-out data; write metrics/eval.json."""
from genlib.cli import stage_main
from genlib.pipeline import evaluate_stage

if __name__ == "__main__":
    stage_main(evaluate_stage)
