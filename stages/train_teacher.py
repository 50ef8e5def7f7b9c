"""DVC stage `train_teacher`: Train the model the method learns from (ScoreGAN's score model) into data/teacher."""
from genlib.pipeline.train_teacher import train_teacher_stage
from genlib.pipeline.runner import stage_main

if __name__ == "__main__":
    stage_main("train_teacher", train_teacher_stage)
