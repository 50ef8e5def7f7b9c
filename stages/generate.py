"""DVC stage `generate`: Sample from the trained model into data/samples/ and plots/samples.png."""
from genlib.pipeline.generate import generate_stage
from genlib.pipeline.runner import stage_main

if __name__ == "__main__":
    stage_main("generate", generate_stage)
