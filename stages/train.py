"""DVC stage `train`: Train the chosen method; write data/model/ and the curves in plots/train/."""
from genlib.pipeline.train import train_stage
from genlib.pipeline.runner import stage_main

if __name__ == "__main__":
    stage_main("train", train_stage)
