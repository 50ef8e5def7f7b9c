"""DVC stage `prepare_data`: Draw the seeded train and test sets into data/prepared/."""
from genlib.pipeline.prepare import prepare_data
from genlib.pipeline.runner import stage_main

if __name__ == "__main__":
    stage_main("prepare_data", prepare_data)
