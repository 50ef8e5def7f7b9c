"""DVC stage `train`: Train the chosen method; write data/model/ and the curves in plots/train/."""
from genlib.cli import stage_main
from genlib.pipeline import train_stage

if __name__ == "__main__":
    stage_main(train_stage)
