"""DVC stage `generate`: Sample from the trained model into data/samples/ and plots/samples.png."""
from genlib.cli import stage_main
from genlib.pipeline import generate_stage

if __name__ == "__main__":
    stage_main(generate_stage)
