"""DVC stage `evaluate`: Compare samples with held-out data; write metrics/eval.json."""
from genlib.pipeline.evaluate import evaluate_stage
from genlib.pipeline.runner import stage_main

if __name__ == "__main__":
    stage_main("evaluate", evaluate_stage)
